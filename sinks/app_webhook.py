"""The app-webhook sink: ``customer.lifecycle`` → one signed POST per billing-state change
to the product's own endpoint, ``PAYSTREAM_APP_WEBHOOK_URL`` (SPEC §6).

What is sent, its id and its signature are ``sinks.notifications`` (pure); this is the shell:
an adapter on the one sink runner, so it has the runner's retries, back-off, dead letters
(``sink.dlq``, the exception queue) and metrics (``sink="app_webhook"``), and a client on the
sinks' shared HTTP client (``sinks._http``: keep-alive, never redirected; 5xx, 408, 429,
timeouts and connection errors retried, any other 4xx and any 3xx dead-lettered at once).

A change seen twice in one batch is posted once (the other is ``coalesced``); a redelivery
in a later batch is posted again with the same id, and the app deduplicates by it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

import httpx

from paystream.destinations import split_url
from schemas.codec import LIFECYCLE_CHANGE
from sinks._http import HttpClient, check
from sinks.errors import PermanentSinkError
from sinks.notifications import (
    SINK,
    InvalidChange,
    encode,
    is_notification,
    notification,
    notification_id,
    request_headers,
)
from sinks.outcomes import COALESCED
from sinks.retry import INVALID_COMMAND, parse_retry_after
from sinks.runner import Call, Command, decode_as


class AppWebhookClient:
    """POSTs signed notification bodies to one URL, signing each attempt anew."""

    def __init__(
        self,
        url: str,
        secrets: Sequence[str],
        timeout_s: float,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        base, self.path = split_url(url)
        self.http = HttpClient(base, timeout_s, {}, transport=transport)
        self.secrets = list(secrets)
        self.clock = clock

    def close(self) -> None:
        self.http.close()

    def post(self, payload: bytes) -> None:
        """Send one notification; raise the sinks' error class its failure stands for."""
        now = self.clock()
        headers = request_headers(payload, self.secrets, now)
        answer = self.http.request("POST", self.path, content=payload, headers=headers)
        check(answer, "the app webhook", parse_retry_after(answer.headers.get("retry-after"), now))


def _payload(change: Command) -> bytes | InvalidChange:
    try:
        return encode(notification(change))
    except InvalidChange as exc:
        return exc


class AppWebhookAdapter:
    """One call per distinct change; records that change nothing are no notification."""

    sink = SINK
    schema = LIFECYCLE_CHANGE

    def __init__(self, client: AppWebhookClient | None) -> None:
        self.client = client

    def close(self) -> None:
        if self.client is not None:
            self.client.close()

    def decode(self, raw: bytes) -> Command:
        change = decode_as(self.schema, raw)
        return {**change, "idempotency_key": notification_id(change)}

    def plan(self, commands: Sequence[Command]) -> list[Call]:
        by_key: dict[str, list[int]] = {}
        for i, command in enumerate(commands):
            if is_notification(command):
                by_key.setdefault(str(command["idempotency_key"]), []).append(i)
        return [
            Call(
                indexes=tuple(indexes),
                payload=_payload(commands[indexes[0]]),
                notes={i: COALESCED for i in indexes[1:]},
            )
            for indexes in by_key.values()
        ]

    def split(self, call: Call) -> list[Call]:
        return [call]

    def send(self, call: Call) -> Mapping[int, str]:
        if isinstance(call.payload, InvalidChange):
            raise PermanentSinkError(INVALID_COMMAND, str(call.payload))
        if self.client is None:
            raise RuntimeError("app-webhook posts need a client")
        self.client.post(call.payload)
        return {}
