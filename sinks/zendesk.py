"""Zendesk Support client: find a ticket by ``external_id``, create one with an
``Idempotency-Key``.

Zendesk keeps an idempotency key for two hours only, and the same key with a different
body is refused with ``400 IdempotentRequestError``
(https://developer.zendesk.com/api-reference/ticketing/introduction/#idempotency). A retry
after that window — an answer lost after the ticket was made, a long back-off, a restart
hours later, an exception-queue retry the next day — would make a second ticket. So a
ticket is first looked up by its ``external_id`` with ``GET /api/v2/tickets?external_id=``
("List Tickets", https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/#list-tickets;
not the search API, whose index lags), and ``IdempotentRequestError`` means "it exists:
look it up". A ticket counts as created only with ``201 Created`` and its id.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from sinks._http import HttpAnswer, HttpClient, Throttle, check
from sinks.errors import PermanentSinkError, RetryableSinkError
from sinks.retry import UNEXPECTED_ANSWER, parse_retry_after

TICKETS_PATH = "/api/v2/tickets"
#: a 400 saying the key was used with another body: the ticket exists
IDEMPOTENT_REQUEST_ERROR = "IdempotentRequestError"
#: retryable: Zendesk refused the key as used, yet no ticket carries it (yet)
KEY_USED_NO_TICKET = "idempotency_key_used"


@dataclass(frozen=True)
class TicketCreated:
    """The ticket Zendesk holds for a key and how we learnt it."""

    ticket_id: int
    #: ``created`` (201), ``replayed`` (201 from Zendesk's key store) or ``found`` (lookup)
    how: str


def _ticket_id(body: Any) -> int | None:
    ticket = body.get("ticket") if isinstance(body, dict) else None
    ticket_id = ticket.get("id") if isinstance(ticket, dict) else None
    return ticket_id if isinstance(ticket_id, int) and not isinstance(ticket_id, bool) else None


class ZendeskClient:
    """API-token basic auth (``{email}/token:{token}``); every request passes the rate limit."""

    def __init__(
        self,
        base_url: str,
        email: str,
        token: SecretStr,
        timeout_s: float,
        throttle: Throttle | None = None,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
        max_pages: int = 20,
    ) -> None:
        auth = base64.b64encode(f"{email}/token:{token.get_secret_value()}".encode()).decode()
        self.http = HttpClient(
            base_url, timeout_s, {"Authorization": f"Basic {auth}"}, throttle, transport
        )
        self.clock = clock
        self.max_pages = max_pages
        self._origin = urlsplit(self.http.base_url)[:2]

    @property
    def requests_sent(self) -> int:
        return self.http.requests_sent

    def close(self) -> None:
        self.http.close()

    def _check(self, answer: HttpAnswer, what: str) -> None:
        check(answer, what, parse_retry_after(answer.headers.get("retry-after"), self.clock()))

    def find_ticket(self, external_id: str) -> int | None:
        """The id of a ticket with this ``external_id`` (oldest first), following pages."""
        answer = self.http.request("GET", TICKETS_PATH, params={"external_id": external_id})
        for _ in range(self.max_pages):
            self._check(answer, "Zendesk list tickets")
            body = answer.body if isinstance(answer.body, dict) else {}
            for ticket in body.get("tickets") or []:
                if isinstance(ticket, dict) and ticket.get("external_id") == external_id:
                    ticket_id = ticket.get("id")
                    if isinstance(ticket_id, int):
                        return ticket_id
            next_page = body.get("next_page") or (body.get("links") or {}).get("next")
            more = (body.get("meta") or {}).get("has_more", True)
            if not isinstance(next_page, str) or not next_page or not more:
                return None
            if urlsplit(next_page)[:2] != self._origin:  # never send credentials elsewhere
                raise PermanentSinkError(UNEXPECTED_ANSWER, "Zendesk next_page on another host")
            answer = self.http.request("GET", next_page)
        raise RetryableSinkError(UNEXPECTED_ANSWER, "Zendesk list tickets: too many pages")

    def create_ticket(self, idempotency_key: str, body: dict[str, Any]) -> TicketCreated:
        """Look the key up as ``external_id``; create the ticket only when none has it."""
        found = self.find_ticket(idempotency_key)
        if found is not None:
            return TicketCreated(found, "found")
        answer = self.http.request(
            "POST", TICKETS_PATH, body=body, headers={"Idempotency-Key": idempotency_key}
        )
        refused = answer.body if answer.status == 400 and isinstance(answer.body, dict) else {}
        if refused.get("error") == IDEMPOTENT_REQUEST_ERROR:
            found = self.find_ticket(idempotency_key)
            if found is not None:
                return TicketCreated(found, "found")
            raise RetryableSinkError(
                KEY_USED_NO_TICKET, "Zendesk knows the key but lists no ticket with it"
            )
        self._check(answer, "Zendesk create ticket")
        ticket_id = _ticket_id(answer.body)
        if answer.status != 201 or ticket_id is None:
            raise PermanentSinkError(
                UNEXPECTED_ANSWER,
                f"Zendesk create ticket answered {answer.status} without a created ticket id",
            )
        hit = answer.headers.get("x-idempotency-lookup", "").lower() == "hit"
        return TicketCreated(ticket_id, "replayed" if hit else "created")
