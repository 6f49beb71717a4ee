"""A local Zendesk Support stand-in: ticket creation as Zendesk documents it.

``POST /api/v2/tickets`` with API-token basic auth (``{email}/token:{token}``; 401
``Couldn't authenticate you``), 422 ``RecordInvalid`` without a comment body, 400 on a body
that is not JSON, and ``Idempotency-Key`` honoured like Zendesk: the same key with the same
body answers the original ticket again (``x-idempotency-lookup: hit``), the same key with a
different body is refused with 400 ``IdempotentRequestError``. ``GET /api/v2/tickets/{id}``
and ``GET /api/v2/tickets?external_id=...`` read tickets back. 429 carries ``Retry-After``.
Faults are injected as in ``paystream.devstack._http_standin``.

    python -m paystream.devstack.zendesk --port 8092 --email agent@example.com --token standin-token
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import itertools
import json
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from paystream.devstack._http_standin import Standin, serve_forever

DEFAULT_EMAIL = "agent@example.com"
DEFAULT_TOKEN = "standin-zendesk-token"  # noqa: S105 - a stand-in's own, never a real token


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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

    def __init__(self, email: str = DEFAULT_EMAIL, token: str = DEFAULT_TOKEN) -> None:
        super().__init__()
        self.email = email
        self.token = token
        self._ids = itertools.count(1)
        self.reset_state()
        self.route("POST", "/api/v2/tickets", self.create_ticket)
        self.route("POST", "/api/v2/tickets.json", self.create_ticket)
        self.route("GET", "/api/v2/tickets", self.list_tickets)
        self.route("GET", "/api/v2/tickets/{id}", self.show_ticket)

    def reset_state(self) -> None:
        self.tickets: dict[int, dict[str, Any]] = {}
        self.idempotency: dict[str, tuple[str, int, dict[str, Any]]] = {}
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

    # ------------------------------------------------------------------ tickets
    async def create_ticket(self, request: web.Request, body: Any) -> web.Response:
        key = request.headers.get("Idempotency-Key")
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        if key:
            stored = self.idempotency.get(key)
            if stored is not None:
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
        ticket = body.get("ticket") if isinstance(body, dict) else None
        if not isinstance(ticket, dict):
            return web.json_response(
                {
                    "error": "RecordInvalid",
                    "description": "Record validation errors",
                    "details": {"base": [{"description": "ticket is required"}]},
                },
                status=422,
            )
        comment = ticket.get("comment") or {}
        text = comment.get("body") if isinstance(comment, dict) else None
        if not text:
            return web.json_response(
                {
                    "error": "RecordInvalid",
                    "description": "Record validation errors",
                    "details": {"description": [{"description": "Description: cannot be blank"}]},
                },
                status=422,
            )
        ticket_id = next(self._ids)
        now = _now()
        created = {
            "id": ticket_id,
            "url": f"{request.scheme}://{request.host}/api/v2/tickets/{ticket_id}.json",
            "external_id": ticket.get("external_id"),
            "subject": ticket.get("subject"),
            "raw_subject": ticket.get("subject"),
            "description": text,
            "priority": ticket.get("priority"),
            "status": "new",
            "type": ticket.get("type"),
            "tags": sorted(set(ticket.get("tags") or [])),
            "comment_public": comment.get("public", True),
            "created_at": now,
            "updated_at": now,
        }
        self.tickets[ticket_id] = created
        answer = {"ticket": created, "audit": {"ticket_id": ticket_id, "created_at": now}}
        if key:
            self.idempotency[key] = (digest, 201, answer)
        headers = {"Location": created["url"]}
        if key:
            headers["x-idempotency-lookup"] = "miss"
        return web.json_response(answer, status=201, headers=headers)

    async def show_ticket(self, request: web.Request, _body: Any) -> web.Response:
        raw = request.match_info["id"].removesuffix(".json")
        ticket = self.tickets.get(int(raw)) if raw.isdigit() else None
        if ticket is None:
            return web.json_response(
                {"error": "RecordNotFound", "description": "Not found"}, status=404
            )
        return web.json_response({"ticket": ticket})

    async def list_tickets(self, request: web.Request, _body: Any) -> web.Response:
        external = request.query.get("external_id")
        found = [
            t for t in self.tickets.values() if external is None or t["external_id"] == external
        ]
        return web.json_response({"tickets": found, "count": len(found), "next_page": None})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="local Zendesk Support stand-in")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default: loopback)")
    parser.add_argument("--email", default=DEFAULT_EMAIL)
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    args = parser.parse_args(argv)
    serve_forever(ZendeskStandin(args.email, args.token), args.port, args.host)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
