"""HubSpot CRM v3 client: contact batch read/upsert/update and contact properties.

Only the calls the CRM sink and ``paystream crm-setup`` make; one instance per sink thread,
on one keep-alive HTTP client (``sinks._http``).

Rate limits (https://developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines,
"API usage guidelines"): a 429 names its ``policyName`` and carries no ``Retry-After``.
``DAILY`` means no call succeeds before midnight in the account's time zone, so it raises
``DailyLimitReached`` with the wait until then; a ten-secondly limit waits the window the
``X-HubSpot-RateLimit-Interval-Milliseconds`` header gives (10 s when absent).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
from pydantic import SecretStr

from sinks._http import HttpAnswer, HttpClient, Throttle, check, error_category
from sinks.errors import DailyLimitReached, PermanentSinkError, RetryableSinkError
from sinks.retry import (
    BAD_REQUEST,
    DAILY_LIMIT,
    RATE_LIMITED,
    next_daily_reset,
    parse_retry_after,
)

UPSERT_PATH = "/crm/v3/objects/contacts/batch/upsert"
UPDATE_PATH = "/crm/v3/objects/contacts/batch/update"
READ_PATH = "/crm/v3/objects/contacts/batch/read"
PROPERTIES_PATH = "/crm/v3/properties/contacts"
GROUPS_PATH = "/crm/v3/properties/contacts/groups"

#: reason code of an upsert refused because a contact with the email exists (a race with
#: whoever created it after our read): retried, the next attempt reads it and links it
CONTACT_CONFLICT = "contact_conflict"

#: documented plan limits (usage guidelines above): requests per 10 s per app
PLAN_LIMITS_PER_10S = {"free": 100, "starter": 100, "professional": 190, "enterprise": 190}


def is_conflict(status: int, body: Any) -> bool:
    """A whole-batch ``409 CONFLICT`` or a 207 whose errors include one ("already exists")."""
    if status == 409:
        return True
    if status != 207 or not isinstance(body, dict):
        return False
    for error in body.get("errors") or []:
        if not isinstance(error, dict):
            continue
        text = str(error.get("message", "")).lower()
        if error.get("category") == "CONFLICT" or "already exists" in text:
            return True
    return False


def is_missing(status: int, body: Any) -> bool:
    """A 404, or a 207 whose errors all say ``OBJECT_NOT_FOUND`` (ids HubSpot has no more)."""
    if status == 404:
        return True
    if status != 207 or not isinstance(body, dict):
        return False
    errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
    return bool(errors) and all(e.get("category") == "OBJECT_NOT_FOUND" for e in errors)


class HubSpotClient:
    """Bearer-token client; every request passes the client-side rate limit first."""

    def __init__(
        self,
        base_url: str,
        token: SecretStr,
        timeout_s: float,
        throttle: Throttle | None = None,
        clock: Callable[[], float] = time.time,
        time_zone: str = "UTC",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.http = HttpClient(
            base_url,
            timeout_s,
            {"Authorization": f"Bearer {token.get_secret_value()}"},
            throttle,
            transport,
        )
        self.clock = clock
        self.time_zone = time_zone

    @property
    def requests_sent(self) -> int:
        return self.http.requests_sent

    def close(self) -> None:
        self.http.close()

    def _rate_limit(self, answer: HttpAnswer) -> None:
        """Raise for a 429: DAILY waits for the account's midnight, others a window."""
        if answer.status != 429:
            return
        body = answer.body if isinstance(answer.body, dict) else {}
        policy = str(body.get("policyName") or "").upper()
        if policy == "DAILY":
            now = self.clock()
            wait = next_daily_reset(now, self.time_zone) - now
            raise DailyLimitReached(DAILY_LIMIT, "HubSpot daily API limit reached", wait)
        retry_after = parse_retry_after(answer.headers.get("retry-after"), self.clock())
        if retry_after is None:
            interval = answer.headers.get("x-hubspot-ratelimit-interval-milliseconds", "")
            retry_after = int(interval) / 1000 if interval.isdigit() else None
        raise RetryableSinkError(
            RATE_LIMITED, f"HubSpot answered 429 ({policy or 'no policy'})", retry_after
        )

    def _post(self, path: str, body: Any) -> HttpAnswer:
        answer = self.http.request("POST", path, body=body)
        self._rate_limit(answer)
        return answer

    def batch_upsert(self, inputs: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """``POST .../contacts/batch/upsert``; a conflict (409 or in a 207) is retryable."""
        answer = self._post(UPSERT_PATH, {"inputs": list(inputs)})
        return self._written(answer, "HubSpot batch upsert")

    def batch_update(self, inputs: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """``POST .../contacts/batch/update`` by contact id (linking an existing contact)."""
        answer = self._post(UPDATE_PATH, {"inputs": list(inputs)})
        return self._written(answer, "HubSpot batch update")

    def update_known(self, inputs: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
        """``batch/update`` by remembered contact ids; ``None`` when HubSpot has one no more.

        A 404, or a 207 whose every error is ``OBJECT_NOT_FOUND`` (a merged or deleted
        contact), tells the caller to forget the ids and take the path by reads instead.
        """
        answer = self._post(UPDATE_PATH, {"inputs": list(inputs)})
        if is_missing(answer.status, answer.body):
            return None
        return self._written(answer, "HubSpot batch update")

    @staticmethod
    def _written(answer: HttpAnswer, what: str) -> dict[str, Any]:
        if is_conflict(answer.status, answer.body):
            raise RetryableSinkError(CONTACT_CONFLICT, f"{what}: a contact already has the email")
        check(answer, what, None)
        result = answer.body if isinstance(answer.body, dict) else {}
        if answer.status == 207 or result.get("numErrors"):
            errors = result.get("errors") or [{}]
            # the category only: the message quotes the refused input (the email, too)
            category = error_category(errors[0]) or "some inputs were refused"
            raise PermanentSinkError(BAD_REQUEST, f"{what} answered 207 ({category})")
        return result

    def batch_read(
        self, id_property: str, ids: Sequence[str], properties: Sequence[str]
    ) -> dict[str, Any]:
        """``POST .../contacts/batch/read`` by a unique property; unknown ids are absent."""
        body = {
            "idProperty": id_property,
            "properties": list(properties),
            "inputs": [{"id": i} for i in ids],
        }
        answer = self._post(READ_PATH, body)
        check(answer, "HubSpot batch read", None)
        return answer.body if isinstance(answer.body, dict) else {}

    def create(self, path: str, body: dict[str, Any], what: str) -> str:
        """Create a property or group: ``created``, or ``exists`` on 409."""
        answer = self._post(path, body)
        if answer.status == 409:
            return "exists"
        check(answer, what, None)
        return "created"

    def get_property(self, name: str) -> dict[str, Any]:
        """``GET /crm/v3/properties/contacts/{name}``."""
        answer = self.http.request("GET", f"{PROPERTIES_PATH}/{name}")
        self._rate_limit(answer)
        check(answer, f"HubSpot property {name}", None)
        return answer.body if isinstance(answer.body, dict) else {}
