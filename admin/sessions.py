"""Ended admin sessions as plain data: the fold of ``admin.sessions`` and the check.

Signing out writes one record to ``admin.sessions`` (compacted): the session's id (a hash
of its cookie's nonce, so the topic holds nothing a cookie could be rebuilt from) and when
it ended. "Sign out everywhere" writes the id ``*``: every session issued at or before that
moment has ended. Every admin replica reads the whole topic and folds it into a
``SessionTable``; a cookie whose session the table names is refused, on every replica.

The fold keeps maxima only (the latest end of each id, the latest "everywhere"), so it is
commutative and idempotent like the exception queue's (a hypothesis property checks it).
An ended session older than the longest session (``max_age_ms``) would be refused for its
age anyway, so ``prune`` forgets it and the table stays as small as the sign-outs of a day.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: the session id of "sign out everywhere"
EVERYWHERE = "*"


def session_id(nonce: str) -> str:
    """The id a session is ended by: a hash of its nonce (32 hex characters)."""
    return hashlib.sha256(b"paystream-admin-session:" + nonce.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Ended:
    """One ``admin.sessions`` record."""

    session: str
    at_ms: int


@dataclass(frozen=True)
class SessionTable:
    """What every replica knows about ended sessions."""

    #: session id → when it ended (ms)
    ended: Mapping[str, int] = field(default_factory=dict)
    #: sessions issued at or before this moment (ms) have ended; -1: never signed out all
    everywhere_ms: int = -1


def fold(table: SessionTable, records: Iterable[Ended]) -> SessionTable:
    """The table after these records (any order, any repetition: same result)."""
    ended = dict(table.ended)
    everywhere = table.everywhere_ms
    for record in records:
        if record.session == EVERYWHERE:
            everywhere = max(everywhere, record.at_ms)
        else:
            ended[record.session] = max(ended.get(record.session, record.at_ms), record.at_ms)
    return SessionTable(ended, everywhere)


def prune(table: SessionTable, now_ms: int, max_age_ms: int) -> SessionTable:
    """Forget sessions that ended longer ago than a session can last (they are expired)."""
    keep = {k: at for k, at in table.ended.items() if at >= now_ms - max_age_ms}
    if len(keep) == len(table.ended):
        return table
    return SessionTable(keep, table.everywhere_ms)


def is_ended(table: SessionTable, nonce: str, issued_ms: int) -> bool:
    """True when the session of this cookie was signed out (alone or with everybody)."""
    return issued_ms <= table.everywhere_ms or session_id(nonce) in table.ended


def ended_record(ended: Ended) -> dict[str, Any]:
    return {"session": ended.session, "ended_at_ms": ended.at_ms}


def ended_of(record: Mapping[str, Any]) -> Ended:
    """A decoded ``admin_session`` record → ``Ended`` (KeyError/TypeError/ValueError if bad)."""
    session = str(record["session"])
    if session != EVERYWHERE and len(session) != 32:
        raise ValueError("not a session id")
    return Ended(session, int(record["ended_at_ms"]))
