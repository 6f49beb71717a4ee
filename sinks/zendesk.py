"""Zendesk Support client: create one ticket with an ``Idempotency-Key``."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from sinks._http import Throttle, check, request_json
from sinks.retry import parse_retry_after

TICKETS_PATH = "/api/v2/tickets"


@dataclass(frozen=True)
class TicketCreated:
    """The ticket Zendesk holds for a key; ``replayed`` when it answered from its key store."""

    ticket_id: int | None
    replayed: bool


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
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._auth = SecretStr(
            base64.b64encode(f"{email}/token:{token.get_secret_value()}".encode()).decode()
        )
        self.timeout_s = timeout_s
        self.throttle = throttle
        self.clock = clock
        self.requests_sent = 0

    def create_ticket(self, idempotency_key: str, body: dict[str, Any]) -> TicketCreated:
        """``POST /api/v2/tickets``; the same key and body always yield the same ticket."""
        if self.throttle is not None:
            self.throttle.acquire()
        self.requests_sent += 1
        answer = request_json(
            "POST",
            self.base_url + TICKETS_PATH,
            body,
            {
                "Authorization": f"Basic {self._auth.get_secret_value()}",
                "Idempotency-Key": idempotency_key,
            },
            self.timeout_s,
        )
        check(
            answer,
            "Zendesk create ticket",
            parse_retry_after(answer.headers.get("retry-after"), self.clock()),
        )
        ticket = (answer.body or {}).get("ticket") if isinstance(answer.body, dict) else None
        ticket_id = ticket.get("id") if isinstance(ticket, dict) else None
        return TicketCreated(
            ticket_id if isinstance(ticket_id, int) else None,
            answer.headers.get("x-idempotency-lookup", "").lower() == "hit",
        )
