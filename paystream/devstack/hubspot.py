"""A local HubSpot CRM v3 stand-in: the calls paystream makes, as HubSpot documents them.

Routes: ``POST /crm/v3/objects/contacts/batch/upsert`` and ``.../batch/read`` (by a unique
``idProperty``), ``POST /crm/v3/properties/contacts`` and ``.../groups`` (409 when the
name exists), ``GET /crm/v3/properties/contacts/{name}``. Bearer auth (401 with HubSpot's
error body), 400 ``VALIDATION_ERROR`` for unknown properties, bad options and duplicate ids
in one batch, 429 with HubSpot's rate-limit body (a rolling limit, 190 per 10 s by default)
and any injected fault (see ``paystream.devstack._http_standin``).

    python -m paystream.devstack.hubspot --port 8091 --token standin-token
"""

from __future__ import annotations

import argparse
import itertools
import time
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from paystream.devstack._http_standin import Standin, serve_forever

DEFAULT_TOKEN = "standin-hubspot-token"  # noqa: S105 - a stand-in's own, never a real token
#: properties every HubSpot portal has
BUILTIN = ("email", "firstname", "lastname", "phone", "company", "hs_object_id")
#: the custom properties ``paystream crm-setup`` creates (pre-created unless told otherwise)
PAYSTREAM_PROPERTIES: dict[str, dict[str, Any]] = {
    "stripe_customer_id": {"type": "string", "hasUniqueValue": True},
    "billing_state": {
        "type": "enumeration",
        "options": [
            {"value": v, "label": v}
            for v in (
                "onboarding_pending",
                "active",
                "payment_failed",
                "paused",
                "refunded",
                "canceled",
            )
        ],
    },
    "billing_state_changed_at": {"type": "datetime"},
    "paystream_user_id": {"type": "string"},
}


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error(status: int, category: str, message: str, **extra: Any) -> web.Response:
    body = {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
        **extra,
    }
    return web.json_response(body, status=status)


def _valid_datetime(value: str) -> bool:
    if value.isdigit():
        return True
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


class HubSpotStandin(Standin):
    """Contacts keyed by HubSpot id, findable by any unique property."""

    error_bodies = {
        429: {
            "status": "error",
            "message": "You have reached your ten_secondly_rolling limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": "00000000-0000-0000-0000-000000000429",
            "policyName": "TEN_SECONDLY_ROLLING",
        },
        500: {"status": "error", "message": "internal error", "category": "INTERNAL_ERROR"},
        502: {"status": "error", "message": "bad gateway", "category": "INTERNAL_ERROR"},
        503: {"status": "error", "message": "service unavailable", "category": "INTERNAL_ERROR"},
        400: {"status": "error", "message": "invalid input", "category": "VALIDATION_ERROR"},
    }

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        with_properties: bool = True,
        rate_limit: int = 190,
        rate_period_s: float = 10.0,
    ) -> None:
        super().__init__()
        self.token = token
        self.with_properties = with_properties
        self.rate_limit = rate_limit
        self.rate_period_s = rate_period_s
        self._ids = itertools.count(1001)
        self._sent: deque[float] = deque()
        self.reset_state()
        self.route("POST", "/crm/v3/objects/contacts/batch/upsert", self.batch_upsert)
        self.route("POST", "/crm/v3/objects/contacts/batch/read", self.batch_read)
        self.route("POST", "/crm/v3/properties/contacts", self.create_property)
        self.route("POST", "/crm/v3/properties/contacts/groups", self.create_group)
        self.route("GET", "/crm/v3/properties/contacts/{name}", self.get_property)

    def reset_state(self) -> None:
        self.properties: dict[str, dict[str, Any]] = {n: {"type": "string"} for n in BUILTIN}
        self.properties["email"]["hasUniqueValue"] = True
        if self.with_properties:
            self.properties.update({k: dict(v) for k, v in PAYSTREAM_PROPERTIES.items()})
        self.groups: set[str] = {"contactinformation"}
        self.contacts: dict[str, dict[str, Any]] = {}
        #: (unique property, value) → contact id: lookups stay O(1) with many contacts
        self._unique: dict[tuple[str, str], str] = {}
        #: every property write, in order: (customer id or contact id, properties)
        self.writes: list[tuple[str, dict[str, str]]] = []

    def state(self) -> Any:
        return {"contacts": list(self.contacts.values()), "properties": sorted(self.properties)}

    def contact_by(self, prop: str, value: str) -> dict[str, Any] | None:
        with self.lock:
            if self.properties.get(prop, {}).get("hasUniqueValue"):
                return self._find(prop, value)
            for contact in self.contacts.values():
                if contact["properties"].get(prop) == value:
                    return contact
        return None

    def _find(self, unique_prop: str, value: str) -> dict[str, Any] | None:
        hs_id = self._unique.get((unique_prop, value))
        return self.contacts.get(hs_id) if hs_id is not None else None

    def _set_properties(self, contact: dict[str, Any], props: dict[str, str]) -> None:
        """Update a contact's properties and the unique-value index."""
        held = contact["properties"]
        for name, value in props.items():
            if self.properties.get(name, {}).get("hasUniqueValue"):
                old = held.get(name)
                if old is not None and self._unique.get((name, old)) == contact["id"]:
                    del self._unique[(name, old)]
                self._unique[(name, value)] = contact["id"]
        held.update(props)

    # ------------------------------------------------------------------ auth and limits
    def authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization", "") == f"Bearer {self.token}"

    def unauthorized(self) -> web.Response:
        return _error(
            401,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found. This API supports OAuth 2.0 authentication"
            " and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
        )

    def _rate_limited(self) -> web.Response | None:
        now = time.monotonic()
        while self._sent and self._sent[0] <= now - self.rate_period_s:
            self._sent.popleft()
        if len(self._sent) >= self.rate_limit:
            wait = max(1, round(self._sent[0] + self.rate_period_s - now + 0.5))
            response = web.json_response(self.error_bodies[429], status=429)
            response.headers["Retry-After"] = str(wait)
            return response
        self._sent.append(now)
        return None

    # ------------------------------------------------------------------ contacts
    def _check_properties(self, props: Any) -> str | None:
        if not isinstance(props, dict):
            return "properties must be an object"
        for name, value in props.items():
            spec = self.properties.get(name)
            if spec is None:
                return f'Property "{name}" does not exist'
            if not isinstance(value, str):
                return f'Property "{name}" must be a string value'
            if spec["type"] == "enumeration" and value not in {
                o["value"] for o in spec.get("options", [])
            }:
                return f'{value} was not one of the allowed options for "{name}"'
            if spec["type"] == "datetime" and value and not _valid_datetime(value):
                return f'{value} is not a valid datetime for "{name}"'
        return None

    async def batch_upsert(self, _request: web.Request, body: Any) -> web.Response:
        limited = self._rate_limited()
        if limited is not None:
            return limited
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list) or not inputs or len(inputs) > 100:
            return _error(400, "VALIDATION_ERROR", "inputs must hold between 1 and 100 items")
        seen: set[tuple[str, str]] = set()
        for item in inputs:
            if not isinstance(item, dict) or "id" not in item or "idProperty" not in item:
                return _error(400, "VALIDATION_ERROR", "every input needs id and idProperty")
            id_prop = str(item["idProperty"])
            spec = self.properties.get(id_prop)
            if spec is None or not spec.get("hasUniqueValue"):
                return _error(
                    400, "VALIDATION_ERROR", f"{id_prop} is not a unique identifier property"
                )
            problem = self._check_properties(item.get("properties", {}))
            if problem:
                return _error(400, "VALIDATION_ERROR", problem)
            pair = (id_prop, str(item["id"]))
            if pair in seen:
                return _error(400, "VALIDATION_ERROR", "Duplicate IDs found in batch input")
            seen.add(pair)
        started = _now_iso()
        results = []
        for item in inputs:
            id_prop, ident = str(item["idProperty"]), str(item["id"])
            props = {str(k): str(v) for k, v in (item.get("properties") or {}).items()}
            contact = self._find(id_prop, ident)
            now = _now_iso()
            is_new = contact is None
            if contact is None:
                hs_id = str(next(self._ids))
                contact = {
                    "id": hs_id,
                    "properties": {id_prop: ident, "hs_object_id": hs_id},
                    "createdAt": now,
                    "updatedAt": now,
                    "archived": False,
                }
                self.contacts[hs_id] = contact
                self._set_properties(contact, {id_prop: ident})
            self._set_properties(contact, props)
            contact["updatedAt"] = now
            self.writes.append((ident, props))
            results.append({**contact, "properties": dict(contact["properties"]), "new": is_new})
        return web.json_response(
            {
                "status": "COMPLETE",
                "results": results,
                "startedAt": started,
                "completedAt": _now_iso(),
            }
        )

    async def batch_read(self, _request: web.Request, body: Any) -> web.Response:
        limited = self._rate_limited()
        if limited is not None:
            return limited
        if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
            return _error(400, "VALIDATION_ERROR", "inputs is required")
        id_prop = str(body.get("idProperty") or "hs_object_id")
        wanted = [str(p) for p in body.get("properties") or []]
        found, missing = [], []
        for item in body["inputs"]:
            ident = str(item.get("id")) if isinstance(item, dict) else ""
            if id_prop == "hs_object_id":
                contact = self.contacts.get(ident)
            else:
                contact = self._find(id_prop, ident)
            if contact is None:
                missing.append(ident)
                continue
            props = {k: contact["properties"].get(k) for k in wanted}
            props["hs_object_id"] = contact["id"]
            found.append({**contact, "properties": props})
        answer: dict[str, Any] = {
            "status": "COMPLETE",
            "results": found,
            "startedAt": _now_iso(),
            "completedAt": _now_iso(),
        }
        if missing:
            answer["numErrors"] = 1
            answer["errors"] = [
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "message": "Could not get some CONTACT objects, they may be deleted or not"
                    " exist. Check that ids are valid.",
                    "context": {"ids": missing},
                }
            ]
            return web.json_response(answer, status=207)
        return web.json_response(answer)

    # ------------------------------------------------------------------ properties
    async def create_property(self, _request: web.Request, body: Any) -> web.Response:
        if not isinstance(body, dict):
            return _error(400, "VALIDATION_ERROR", "body must be an object")
        for required in ("name", "label", "type", "fieldType", "groupName"):
            if not body.get(required):
                return _error(400, "VALIDATION_ERROR", f"{required} is required")
        name = str(body["name"])
        if name in self.properties:
            return _error(409, "OBJECT_ALREADY_EXISTS", f"Property named '{name}' already exists.")
        if body["groupName"] not in self.groups:
            return _error(400, "VALIDATION_ERROR", f"group {body['groupName']} does not exist")
        if body["type"] == "enumeration" and not body.get("options"):
            return _error(400, "VALIDATION_ERROR", "enumeration properties need options")
        self.properties[name] = {
            "type": body["type"],
            "hasUniqueValue": bool(body.get("hasUniqueValue")),
            "options": body.get("options", []),
        }
        now = _now_iso()
        return web.json_response(
            {**body, "createdAt": now, "updatedAt": now, "archived": False}, status=201
        )

    async def create_group(self, _request: web.Request, body: Any) -> web.Response:
        if not isinstance(body, dict) or not body.get("name") or not body.get("label"):
            return _error(400, "VALIDATION_ERROR", "name and label are required")
        if body["name"] in self.groups:
            return _error(
                409, "OBJECT_ALREADY_EXISTS", f"Property group '{body['name']}' already exists."
            )
        self.groups.add(str(body["name"]))
        return web.json_response({**body, "archived": False}, status=201)

    async def get_property(self, request: web.Request, _body: Any) -> web.Response:
        name = request.match_info["name"]
        spec = self.properties.get(name)
        if spec is None:
            return _error(404, "OBJECT_NOT_FOUND", f"Property {name} does not exist")
        return web.json_response({"name": name, **spec})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="local HubSpot CRM stand-in")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default: loopback)")
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    parser.add_argument("--no-properties", action="store_true", help="start without crm-setup")
    parser.add_argument("--rate-limit", type=int, default=190, help="requests per period")
    parser.add_argument("--rate-period", type=float, default=10.0, help="seconds")
    args = parser.parse_args(argv)
    serve_forever(
        HubSpotStandin(
            args.token,
            with_properties=not args.no_properties,
            rate_limit=args.rate_limit,
            rate_period_s=args.rate_period,
        ),
        args.port,
        args.host,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
