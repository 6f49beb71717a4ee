"""HubSpot CRM v3 client: contact batch upsert/read by ``stripe_customer_id``, properties.

Only the calls the CRM sink and ``paystream crm-setup`` make; one instance per sink thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pydantic import SecretStr

from sinks._http import HttpAnswer, Throttle, check, request_json
from sinks.errors import PermanentSinkError
from sinks.retry import BAD_REQUEST, parse_retry_after

UPSERT_PATH = "/crm/v3/objects/contacts/batch/upsert"
READ_PATH = "/crm/v3/objects/contacts/batch/read"
PROPERTIES_PATH = "/crm/v3/properties/contacts"
GROUPS_PATH = "/crm/v3/properties/contacts/groups"


class HubSpotClient:
    """Bearer-token client; every request passes the client-side rate limit first."""

    def __init__(
        self,
        base_url: str,
        token: SecretStr,
        timeout_s: float,
        throttle: Throttle | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.timeout_s = timeout_s
        self.throttle = throttle
        self.clock = clock
        self.requests_sent = 0

    def _post(self, path: str, body: Any) -> HttpAnswer:
        if self.throttle is not None:
            self.throttle.acquire()
        self.requests_sent += 1
        return request_json(
            "POST",
            self.base_url + path,
            body,
            {"Authorization": f"Bearer {self._token.get_secret_value()}"},
            self.timeout_s,
        )

    def _checked(self, path: str, body: Any, what: str) -> dict[str, Any]:
        answer = self._post(path, body)
        check(answer, what, parse_retry_after(answer.headers.get("retry-after"), self.clock()))
        return answer.body if isinstance(answer.body, dict) else {}

    def batch_upsert(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /crm/v3/objects/contacts/batch/upsert``; a 207 with errors is permanent."""
        answer = self._post(UPSERT_PATH, body)
        retry_after = parse_retry_after(answer.headers.get("retry-after"), self.clock())
        check(answer, "HubSpot batch upsert", retry_after)
        result = answer.body if isinstance(answer.body, dict) else {}
        if answer.status == 207 or result.get("numErrors"):
            errors = result.get("errors") or [{}]
            message = str(errors[0].get("message", "some inputs were refused"))[:160]
            raise PermanentSinkError(BAD_REQUEST, f"HubSpot batch upsert answered 207: {message}")
        return result

    def batch_read(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /crm/v3/objects/contacts/batch/read``; unknown contacts are simply absent."""
        return self._checked(READ_PATH, body, "HubSpot batch read")

    def create(self, path: str, body: dict[str, Any], what: str) -> str:
        """Create a property or group: ``created``, or ``exists`` on 409 (idempotent)."""
        answer = self._post(path, body)
        if answer.status == 409:
            return "exists"
        check(answer, what, parse_retry_after(answer.headers.get("retry-after"), self.clock()))
        return "created"
