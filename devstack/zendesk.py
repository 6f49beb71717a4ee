"""A local Zendesk Support stand-in: ticket creation as Zendesk documents it.

``POST /api/v2/tickets`` with API-token basic auth (``{email}/token:{token}``; 401
``Couldn't authenticate you``), 422 ``RecordInvalid`` without a comment body, 400 on a body
that is not JSON, and ``Idempotency-Key`` honoured like Zendesk ("Idempotency",
https://developer.zendesk.com/api-reference/ticketing/introduction/#idempotency): the same
key with the same body answers the original ticket again (``x-idempotency-lookup: hit``),
the same key with a different body is refused with 400 ``IdempotentRequestError``, and a
key is forgotten two hours after its first use — on the stand-in's clock, which tests move
with ``advance``. ``GET /api/v2/tickets/{id}`` and ``GET /api/v2/tickets?external_id=...``
("List Tickets": external ids need not be unique, so several tickets may come back) read
tickets back, paginated with ``per_page``/``page`` and ``next_page`` ("Pagination",
https://developer.zendesk.com/api-reference/introduction/pagination/). Over
``rate_limit`` requests a minute the answer is 429 with ``Retry-After`` ("Rate limits",
https://developer.zendesk.com/api-reference/introduction/rate-limits/). Faults are injected
as in ``devstack._http_standin``, including answers lost after the ticket was
made (``drop_answers``).

    python -m devstack.zendesk --port 8092 --email agent@example.com --token standin-token
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import itertools
import json
from collections import deque
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from devstack._http_standin import Standin, serve_forever

DEFAULT_EMAIL = "agent@example.com"
DEFAULT_TOKEN = "standin-zendesk-token"  # noqa: S105 - a stand-in's own, never a real token
#: "Idempotency keys expire after two hours" (Zendesk Ticketing API introduction)
IDEMPOTENCY_TTL_S = 2 * 3600.0
#: List Tickets: at most 100 per page (Zendesk pagination)
MAX_PER_PAGE = 100


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _record_invalid(field: str, description: str) -> dict[str, Any]:
    return {
        "error": "RecordInvalid",
        "description": "Record validation errors",
        "details": {field: [{"description": description}]},
    }


def _invalid_ticket(ticket: Any) -> dict[str, Any] | None:
    """The 422 body Zendesk answers a ticket it refuses (no ticket, a blank description, a
    requester without an email); None for a ticket it creates."""
    if not isinstance(ticket, dict):
        return _record_invalid("base", "ticket is required")
    comment = ticket.get("comment") or {}
    if not (comment.get("body") if isinstance(comment, dict) else None):
        return _record_invalid("description", "Description: cannot be blank")
    requester = ticket.get("requester")
    if requester is not None and (
        not isinstance(requester, dict) or "@" not in str(requester.get("email", ""))
    ):
        return _record_invalid("requester", "Requester: email is invalid")
    return None


class ZendeskStandin(Standin):
    """Tickets by id; an idempotency store of key → (body digest, status, answer)."""

    error_bodies = {
        429: {
            "error": "APIRateLimitExceeded",
            "description": "Number of allowed API requests per minute exceeded",
        },
        500: {"error": "InternalServerError", "description": "Something went wrong"},
        502: {"error": "BadGateway", "description": "Bad gateway"},
        503: {"error": "ServiceUnavailable", "description": "Service temporarily unavailable"},
        400: {"error": "BadRequest", "description": "Bad request"},
    }

    def __init__(
        self, email: str = DEFAULT_EMAIL, token: str = DEFAULT_TOKEN, rate_limit: int = 0
    ) -> None:
        super().__init__()
        self.email = email
        self.token = token
        #: requests per minute before a 429 (0: no limit)
        self.rate_limit = rate_limit
        #: page size when the client names none (tests shrink it to see pagination)
        self.per_page = MAX_PER_PAGE
        self._sent: deque[float] = deque()
        self._ids = itertools.count(1)
        self.reset_state()
        self.route("POST", "/api/v2/tickets", self.create_ticket)
        self.route("POST", "/api/v2/tickets.json", self.create_ticket)
        self.route("GET", "/api/v2/tickets", self.list_tickets)
        self.route("GET", "/api/v2/tickets/{id}", self.show_ticket)
        self.route("GET", "/api/v2/users/me", self.show_self)
        self.route("GET", "/api/v2/users/me.json", self.show_self)
        #: the authenticated user's role and whether the account is active ("Users" API,
        #: https://developer.zendesk.com/api-reference/ticketing/users/users/: roles
        #: ``end-user``, ``agent``, ``admin``; ``active`` false once the user is deleted)
        self.role = "agent"
        self.active = True
        #: "suspended": the user's tickets are suspended too (same page)
        self.suspended = False

    def reset_state(self) -> None:
        self.tickets: dict[int, dict[str, Any]] = {}
        #: key → (body digest, status, answer, first used at on the stand-in's clock)
        self.idempotency: dict[str, tuple[str, int, dict[str, Any], float]] = {}
        #: how many create requests were answered from the idempotency store
        self.replays = 0

    def state(self) -> Any:
        return {"tickets": list(self.tickets.values()), "replays": self.replays}

    def ticket_list(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.tickets.values())

    # ------------------------------------------------------------------ auth
    def authorized(self, request: web.Request) -> bool:
        expected = base64.b64encode(f"{self.email}/token:{self.token}".encode()).decode()
        return request.headers.get("Authorization", "") == f"Basic {expected}"

    def unauthorized(self) -> web.Response:
        return web.json_response({"error": "Couldn't authenticate you"}, status=401)

    def bad_json(self) -> web.Response:
        return web.json_response(
            {"error": "Unprocessable Entity", "description": "Invalid JSON"}, status=400
        )

    def _rate_limited(self) -> web.Response | None:
        if not self.rate_limit:
            return None
        now = self.now_s()
        while self._sent and self._sent[0] <= now - 60:
            self._sent.popleft()
        if len(self._sent) >= self.rate_limit:
            wait = max(1, round(self._sent[0] + 60 - now + 0.5))
            return web.json_response(
                self.error_bodies[429], status=429, headers={"Retry-After": str(wait)}
            )
        self._sent.append(now)
        return None

    # ------------------------------------------------------------------ tickets
    async def create_ticket(self, request: web.Request, body: Any) -> web.Response:
        limited = self._rate_limited()
        if limited is not None:
            return limited
        key = request.headers.get("Idempotency-Key")
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        replayed = self._replayed(key, digest) if key else None
        if replayed is not None:
            return replayed
        ticket = body.get("ticket") if isinstance(body, dict) else None
        refused = _invalid_ticket(ticket)
        if refused is not None or not isinstance(ticket, dict):
            return web.json_response(refused, status=422)
        created = self._created(request, ticket)
        now = created["created_at"]
        answer = {"ticket": created, "audit": {"ticket_id": created["id"], "created_at": now}}
        if key:
            self.idempotency[key] = (digest, 201, answer, self.now_s())
        headers = {"Location": created["url"]}
        if key:
            headers["x-idempotency-lookup"] = "miss"
        return web.json_response(answer, status=201, headers=headers)

    def _replayed(self, key: str, digest: str) -> web.Response | None:
        """The stored answer to a request made again with its idempotency key (a 400 when
        its parameters differ); None when the key is new or its answer expired."""
        stored = self.idempotency.get(key)
        if stored is not None and self.now_s() - stored[3] >= IDEMPOTENCY_TTL_S:
            del self.idempotency[key]  # expired: the key is new again
            stored = None
        if stored is None:
            return None
        if stored[0] != digest:
            return web.json_response(
                {
                    "error": "IdempotentRequestError",
                    "description": "Request parameters do not match the original"
                    " request with this idempotency key",
                },
                status=400,
            )
        self.replays += 1
        return web.json_response(
            stored[2], status=stored[1], headers={"x-idempotency-lookup": "hit"}
        )

    def _created(self, request: web.Request, ticket: dict[str, Any]) -> dict[str, Any]:
        """Store a new ticket from a valid request's ``ticket``; the ticket as answered."""
        ticket_id = next(self._ids)
        now = _iso(self.now_s())
        comment = ticket.get("comment") or {}
        requester = ticket.get("requester")
        created = {
            "id": ticket_id,
            "url": f"{request.scheme}://{request.host}/api/v2/tickets/{ticket_id}.json",
            "external_id": ticket.get("external_id"),
            "subject": ticket.get("subject"),
            "raw_subject": ticket.get("subject"),
            "description": comment.get("body"),
            "priority": ticket.get("priority"),
            "status": "new",
            "type": ticket.get("type"),
            "tags": sorted(set(ticket.get("tags") or [])),
            "comment_public": comment.get("public", True),
            "requester_email": requester.get("email") if isinstance(requester, dict) else None,
            "created_at": now,
            "updated_at": now,
        }
        self.tickets[ticket_id] = created
        return created

    async def show_self(self, _request: web.Request, _body: Any) -> web.Response:
        """``GET /api/v2/users/me`` ("Show Self", Users API page above): the user the
        credentials authenticate (bad ones were already answered 401 ``Couldn't
        authenticate you``)."""
        return web.json_response(
            {
                "user": {
                    "id": 9001,
                    "name": "paystream agent",
                    "email": self.email,
                    "role": self.role,
                    "active": self.active,
                    "suspended": self.suspended,
                    "verified": True,
                }
            }
        )

    async def show_ticket(self, request: web.Request, _body: Any) -> web.Response:
        raw = request.match_info["id"].removesuffix(".json")
        ticket = self.tickets.get(int(raw)) if raw.isdigit() else None
        if ticket is None:
            return web.json_response(
                {"error": "RecordNotFound", "description": "Not found"}, status=404
            )
        return web.json_response({"ticket": ticket})

    async def list_tickets(self, request: web.Request, _body: Any) -> web.Response:
        limited = self._rate_limited()
        if limited is not None:
            return limited
        external = request.query.get("external_id")
        try:
            per_page = min(
                MAX_PER_PAGE, max(1, int(request.query.get("per_page", str(self.per_page))))
            )
            page = max(1, int(request.query.get("page", "1")))
        except ValueError:
            return web.json_response({"error": "InvalidPaginationParameter"}, status=400)
        found = [
            t for t in self.tickets.values() if external is None or t["external_id"] == external
        ]
        chunk = found[(page - 1) * per_page : page * per_page]
        next_page = None
        if page * per_page < len(found):
            query = dict(request.query, page=str(page + 1), per_page=str(per_page))
            next_page = str(request.url.with_query(query))
        return web.json_response({"tickets": chunk, "count": len(found), "next_page": next_page})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="local Zendesk Support stand-in")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default: loopback)")
    parser.add_argument("--email", default=DEFAULT_EMAIL)
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    parser.add_argument("--rate-limit", type=int, default=0, help="requests per minute")
    args = parser.parse_args(argv)
    serve_forever(ZendeskStandin(args.email, args.token, args.rate_limit), args.port, args.host)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
