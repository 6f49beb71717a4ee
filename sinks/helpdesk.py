"""The helpdesk sink: ``sink.helpdesk`` commands → one Zendesk ticket each.

Each call carries ``Idempotency-Key: <command key>`` and ``external_id`` = the key, with a
body that is a pure function of the command: a replay after a crash is the same request,
which Zendesk answers with the ticket it already created.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sinks import mapping
from sinks.outcomes import COALESCED
from sinks.runner import Call, Command, decode_as
from sinks.zendesk import ZendeskClient


class HelpdeskAdapter:
    """Plans one ticket per distinct key and creates it through a Zendesk client."""

    sink = "helpdesk"
    schema = "helpdesk_command"

    def __init__(self, client: ZendeskClient | None) -> None:
        self.client = client

    def decode(self, raw: bytes) -> Command:
        return decode_as(self.schema, raw)

    def plan(self, commands: Sequence[Command]) -> list[Call]:
        by_key: dict[str, list[int]] = {}
        for i, command in enumerate(commands):
            by_key.setdefault(str(command["idempotency_key"]), []).append(i)
        calls = []
        for key, indexes in by_key.items():
            body = mapping.ticket_body(commands[indexes[0]])
            calls.append(
                Call(
                    indexes=tuple(indexes),
                    payload=(key, body),
                    notes={i: COALESCED for i in indexes[1:]},
                )
            )
        return calls

    def split(self, call: Call) -> list[Call]:
        return [call]

    def send(self, call: Call) -> Mapping[int, str]:
        if self.client is None:
            raise RuntimeError("helpdesk writes need a Zendesk client")
        key: str
        body: dict[str, Any]
        key, body = call.payload
        self.client.create_ticket(key, body)
        return {}
