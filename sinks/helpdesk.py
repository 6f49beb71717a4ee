"""The helpdesk sink: ``sink.helpdesk`` commands → one Zendesk ticket each.

Each call first looks the key up as the ticket's ``external_id`` (``GET
/api/v2/tickets?external_id=``) and creates the ticket only when none carries it, with
``Idempotency-Key: <command key>`` and a body that is a pure function of the command. So a
retry within Zendesk's two-hour key window or days later (an exception-queue retry) never
makes a second ticket; a ticket found is delivered with reason ``ticket_exists``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sinks import ticket_text
from sinks.errors import PermanentSinkError
from sinks.outcomes import COALESCED
from sinks.retry import INVALID_COMMAND, is_safe_id
from sinks.runner import Call, Command, decode_as
from sinks.zendesk import ZendeskClient

#: reason code of a command whose ticket Zendesk already had (found by external_id)
TICKET_EXISTS = "ticket_exists"


class HelpdeskAdapter:
    """Plans one ticket per distinct key and creates it through a Zendesk client."""

    sink = "helpdesk"
    schema = "helpdesk_command"

    def __init__(self, client: ZendeskClient | None, set_requester: bool = True) -> None:
        self.client = client
        self.set_requester = set_requester

    def close(self) -> None:
        if self.client is not None:
            self.client.close()

    def decode(self, raw: bytes) -> Command:
        return decode_as(self.schema, raw)

    def plan(self, commands: Sequence[Command]) -> list[Call]:
        by_key: dict[str, list[int]] = {}
        for i, command in enumerate(commands):
            by_key.setdefault(str(command["idempotency_key"]), []).append(i)
        calls = []
        for key, indexes in by_key.items():
            body = ticket_text.ticket_body(commands[indexes[0]], requester=self.set_requester)
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
        if not is_safe_id(key):
            raise PermanentSinkError(INVALID_COMMAND, "idempotency key is not a printable ASCII id")
        created = self.client.create_ticket(key, body)
        return {i: TICKET_EXISTS for i in call.indexes} if created.how == "found" else {}
