"""A local HubSpot CRM v3 stand-in: the calls paystream makes, as HubSpot documents them.

Routes: ``POST /crm/v3/objects/contacts/batch/upsert``, ``.../batch/update`` and
``.../batch/read`` (by a unique ``idProperty``, ``email`` included), ``POST
/crm/v3/properties/contacts`` and ``.../groups`` (409 when the name exists), ``GET
/crm/v3/properties/contacts/{name}``. Bearer auth (401 with HubSpot's error body), 400
``VALIDATION_ERROR`` for unknown properties, bad options and duplicate ids in one batch,
and any injected fault (see ``devstack._http_standin``). The unkind parts:

* **One contact per email** ("Contacts" guide, https://developers.hubspot.com/docs/api-reference/latest/crm/objects/contacts/guide:
  email is the primary unique identifier; the legacy "Create or update a contact" page,
  https://developers.hubspot.com/docs/methods/contacts/create_or_update, answers 409 when a
  record is updated to an email another record has). A write that would give a contact an
  email (any unique value) another contact holds is ``409 CONFLICT`` "Contact already
  exists. Existing ID: N" for the whole batch — or, with ``multi_status=True``, a 207
  whose ``errors`` name the refused inputs while the others are written ("Batch upsert
  contacts", multi-status errors). Emails compare without regard to case.
* **Leads exist before customers**: ``seed_contact(email=...)`` plants a contact from a
  form or an import, without ``stripe_customer_id``.
* **Rate limits** ("API usage guidelines",
  https://developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines): a 429
  without ``Retry-After``, its body naming ``policyName`` ``TEN_SECONDLY_ROLLING`` (over
  ``rate_limit`` per ``rate_period_s``) or ``DAILY`` (over ``daily_limit`` requests in a
  day that "resets at midnight based on the time zone setting of the account",
  ``time_zone``, on the stand-in's clock), with ``X-HubSpot-RateLimit-*`` headers.
* **Search** (``POST /crm/v3/objects/contacts/search``, "Search" guide; see
  ``add_search_and_token_info``): at most 200 per page, paged with ``after``, its own
  per-second limit (429 ``SECONDLY``), no paging past 10,000 results (400), and at most
  five filter groups of ten filters, twenty-five in all (400; the 2024 changelog).
* **Invalid emails** (HubSpot checks an email's format on every contact create or update,
  https://community.hubspot.com/t5/APIs-Integrations/contacts-integration-invalid-e-mails/td-p/833439:
  RFC 2822, no quotation marks in the local part, a domain ending in a real TLD): ``400
  VALIDATION_ERROR`` whose message quotes the refused email, "Property values were not
  valid: [{..."message":"Email address <email> is invalid","error":"INVALID_EMAIL",
  "name":"email"}]". A TLD counts as real when it is 2-24 letters (or ``xn--``).
* **Token introspection** of a private app (``access-token-info``) names its scopes;
  ``token_expired = True`` makes every call a 401 ``EXPIRED_AUTHENTICATION``.

    python -m devstack.hubspot --port 8091 --token standin-token
"""

from __future__ import annotations

import argparse
import itertools
import re
import time
import uuid
from collections import deque
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from devstack._http_standin import Fault, Standin, serve_forever
from paystream.vocabulary import BILLING_STATES

DEFAULT_TOKEN = "standin-hubspot-token"  # noqa: S105 - a stand-in's own, never a real token
#: properties every HubSpot portal has
BUILTIN = ("email", "firstname", "lastname", "phone", "company", "hs_object_id")
#: the custom properties ``paystream crm-setup`` creates (pre-created unless told otherwise)
PAYSTREAM_PROPERTIES: dict[str, dict[str, Any]] = {
    "stripe_customer_id": {"type": "string", "hasUniqueValue": True},
    "billing_state": {
        "type": "enumeration",
        "options": [{"value": v, "label": v} for v in BILLING_STATES],
    },
    "billing_state_changed_at": {"type": "datetime"},
    "paystream_user_id": {"type": "string"},
}


def _iso(epoch_s: float) -> str:
    return (
        datetime.fromtimestamp(epoch_s, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def _error(status: int, category: str, message: str, **extra: Any) -> web.Response:
    body = {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
        **extra,
    }
    return web.json_response(body, status=status)


_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}")
_DOMAIN = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+(?:[A-Za-z]{2,24}|xn--[A-Za-z0-9-]{1,59})"
)


def _valid_email(value: str) -> bool:
    """HubSpot's format check of an email (see the module docstring), approximated."""
    local, at, domain = value.rpartition("@")
    return (
        bool(at) and _LOCAL.fullmatch(local) is not None and _DOMAIN.fullmatch(domain) is not None
    )


def invalid_email_message(value: str) -> str:
    """HubSpot's 400 message for a refused email: it quotes the email."""
    detail = (
        f'{{"isValid":false,"message":"Email address {value} is invalid",'
        '"error":"INVALID_EMAIL","name":"email"}'
    )
    return f"Property values were not valid: [{detail}]"


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
        daily_limit: int = 625_000,
        time_zone: str = "UTC",
        multi_status: bool = False,
    ) -> None:
        super().__init__()
        self.token = token
        self.with_properties = with_properties
        self.rate_limit = rate_limit
        self.rate_period_s = rate_period_s
        self.daily_limit = daily_limit
        self.time_zone = time_zone
        #: answer conflicts with a 207 per input instead of a whole-batch 409
        self.multi_status = multi_status
        self._ids = itertools.count(1001)
        self._sent: deque[float] = deque()
        self._day: tuple[str, int] = ("", 0)
        #: the private app's scopes (token introspection) and whether the token has expired
        self.scopes: list[str] = list(SINK_SCOPES)
        self.token_expired = False
        #: the search API's own limit, requests per second (answered with a 429)
        self.search_rate_limit = SEARCH_PER_SECOND
        self._searches: deque[float] = deque()
        #: seconds a write takes to reach the search index (0: at once). The search reads an
        #: index that lags behind the records: a contact searched right after a write is
        #: not found, or found as it was (HubSpot/hubspot-api-php#59, "Search API delay
        #: after insert"); batch reads answer from the records themselves.
        self.search_lag_s = 0.0
        self.reset_state()
        self.route("POST", "/crm/v3/objects/contacts/batch/upsert", self.batch_upsert)
        self.route("POST", "/crm/v3/objects/contacts/batch/update", self.batch_update)
        self.route("POST", "/crm/v3/objects/contacts/batch/read", self.batch_read)
        self.route("POST", "/crm/v3/properties/contacts", self.create_property)
        self.route("POST", "/crm/v3/properties/contacts/groups", self.create_group)
        self.route("GET", "/crm/v3/properties/contacts/{name}", self.get_property)
        add_search_and_token_info(self)

    def reset_state(self) -> None:
        self.properties: dict[str, dict[str, Any]] = {n: {"type": "string"} for n in BUILTIN}
        self.properties["email"]["hasUniqueValue"] = True
        if self.with_properties:
            self.properties.update({k: dict(v) for k, v in PAYSTREAM_PROPERTIES.items()})
        self.groups: set[str] = {"contactinformation"}
        self.contacts: dict[str, dict[str, Any]] = {}
        #: (unique property, normalised value) → contact id: lookups stay O(1) with many contacts
        self._unique: dict[tuple[str, str], str] = {}
        #: every property write, in order: (customer id or contact id, properties)
        self.writes: list[tuple[str, dict[str, str]]] = []
        #: contact id → (stand-in time, properties after the write), oldest first
        self._history: dict[str, list[tuple[float, dict[str, Any]]]] = {}

    def state(self) -> Any:
        return {"contacts": list(self.contacts.values()), "properties": sorted(self.properties)}

    def contact_by(self, prop: str, value: str) -> dict[str, Any] | None:
        with self.lock:
            return self._find(prop, value)

    def seed_contact(self, **properties: str) -> str:
        """Plant a contact as a form or an import would (a lead: no stripe_customer_id)."""
        with self.lock:
            return str(self._new_contact({k: str(v) for k, v in properties.items()})["id"])

    def edit_contact(self, hs_id: str, **properties: str) -> None:
        """A person's edit in HubSpot's UI: the properties change, nothing else is checked
        (``crm-repair`` must find what it did)."""
        with self.lock:
            self._write(self.contacts[hs_id], {k: str(v) for k, v in properties.items()})

    def delete_contact(self, hs_id: str) -> None:
        """A person deletes a contact ("Archive a contact", contacts guide: an archived
        contact is in no search and no batch read any more)."""
        with self.lock:
            contact = self.contacts.pop(hs_id)
            for key, holder in list(self._unique.items()):
                if holder == contact["id"]:
                    del self._unique[key]

    def inject_read_answer(self, answer: dict[str, Any], count: int = 1) -> None:
        """Answer the next ``count`` batch reads with ``answer`` (a read that misses what a
        concurrent writer just created)."""
        self.inject(Fault(200, count, path="/batch/read", body=answer))

    def exhaust_daily_limit(self) -> None:
        """Spend today's whole daily allowance (the next request gets the DAILY 429)."""
        with self.lock:
            self._day = (self._today(), self.daily_limit)

    # ------------------------------------------------------------------ store
    @staticmethod
    def _norm(prop: str, value: object) -> str:
        text = str(value)
        return text.strip().lower() if prop == "email" else text

    def _find(self, prop: str, value: str) -> dict[str, Any] | None:
        wanted = self._norm(prop, value)
        if self.properties.get(prop, {}).get("hasUniqueValue"):
            hs_id = self._unique.get((prop, wanted))
            return self.contacts.get(hs_id) if hs_id is not None else None
        for contact in self.contacts.values():
            held = contact["properties"].get(prop)
            if held is not None and self._norm(prop, held) == wanted:
                return contact
        return None

    def _new_contact(self, props: dict[str, str]) -> dict[str, Any]:
        hs_id = str(next(self._ids))
        now = _iso(self.now_s())
        contact = {
            "id": hs_id,
            "properties": {"hs_object_id": hs_id},
            "createdAt": now,
            "updatedAt": now,
            "archived": False,
        }
        self.contacts[hs_id] = contact
        self._write(contact, props)
        return contact

    def _write(self, contact: dict[str, Any], props: dict[str, str]) -> None:
        """Update a contact's properties and the unique-value index."""
        stored = {k: (self._norm(k, v) if k == "email" else v) for k, v in props.items()}
        held = contact["properties"]
        for name, value in stored.items():
            if self.properties.get(name, {}).get("hasUniqueValue"):
                old = held.get(name)
                if old is not None and self._unique.get((name, old)) == contact["id"]:
                    del self._unique[(name, old)]
                if value != "":
                    self._unique[(name, value)] = contact["id"]
        held.update(stored)
        contact["updatedAt"] = _iso(self.now_s())
        history = self._history.setdefault(contact["id"], [])
        history.append((self.now_s(), {**contact, "properties": dict(held)}))
        del history[:-8]  # a few versions are enough for any lag a test sets

    def indexed(self) -> list[dict[str, Any]]:
        """The contacts as the search index holds them: as of ``search_lag_s`` ago."""
        if self.search_lag_s <= 0:
            return list(self.contacts.values())
        horizon = self.now_s() - self.search_lag_s
        found = []
        for hs_id in self.contacts:
            seen = [c for t, c in self._history.get(hs_id, []) if t <= horizon]
            if seen:
                found.append(seen[-1])
        return found

    def _conflict(
        self,
        target: dict[str, Any] | None,
        props: dict[str, str],
        taken: dict[tuple[str, str], str],
    ) -> str | None:
        """The id of another contact already holding one of ``props``' unique values."""
        own = target["id"] if target is not None else None
        for name, value in props.items():
            if not self.properties.get(name, {}).get("hasUniqueValue") or value == "":
                continue
            holder = self._find(name, value)
            if holder is not None and holder["id"] != own:
                return str(holder["id"])
            claimed = taken.get((name, self._norm(name, value)))
            if claimed is not None and claimed != (own or ""):
                return claimed
        return None

    # ------------------------------------------------------------------ auth and limits
    def authorized(self, request: web.Request) -> bool:
        if request.path == TOKEN_INFO_PATH:  # the token travels in the body
            return True
        header = request.headers.get("Authorization", "")
        return header == f"Bearer {self.token}" and not self.token_expired

    def unauthorized(self) -> web.Response:
        if self.token_expired:
            return expired_answer()
        return _error(
            401,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found. This API supports OAuth 2.0 authentication"
            " and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
        )

    def _today(self) -> str:
        return (
            datetime.fromtimestamp(self.now_s(), UTC)
            .astimezone(ZoneInfo(self.time_zone))
            .date()
            .isoformat()
        )

    def _limit_headers(self, remaining: int, daily_remaining: int) -> dict[str, str]:
        return {
            "X-HubSpot-RateLimit-Daily": str(self.daily_limit),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, daily_remaining)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(self.rate_period_s * 1000)),
            "X-HubSpot-RateLimit-Max": str(self.rate_limit),
            "X-HubSpot-RateLimit-Remaining": str(max(0, remaining)),
        }

    def _rate_limited(self) -> web.Response | None:
        """The documented 429s: no Retry-After, the policy in the body, the headers."""
        now = self.now_s()
        today = self._today()
        day, used = self._day if self._day[0] == today else (today, 0)
        while self._sent and self._sent[0] <= now - self.rate_period_s:
            self._sent.popleft()
        if used >= self.daily_limit:
            self._day = (day, used)
            body = {
                **self.error_bodies[429],
                "message": "You have reached your daily limit.",
                "policyName": "DAILY",
            }
            return web.json_response(body, status=429, headers=self._limit_headers(0, 0))
        if len(self._sent) >= self.rate_limit:
            self._day = (day, used)
            headers = self._limit_headers(0, self.daily_limit - used)
            return web.json_response(self.error_bodies[429], status=429, headers=headers)
        self._sent.append(now)
        self._day = (day, used + 1)
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
            if name == "email" and value and not _valid_email(value):
                return invalid_email_message(value)
        return None

    def _answer(self, results: list[dict[str, Any]], errors: list[dict[str, Any]]) -> web.Response:
        answer: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": _iso(self.now_s()),
            "completedAt": _iso(self.now_s()),
        }
        if errors:
            answer["numErrors"] = len(errors)
            answer["errors"] = errors
            return web.json_response(answer, status=207)
        return web.json_response(answer)

    @staticmethod
    def _conflict_error(existing: str, index: int) -> dict[str, Any]:
        return {
            "status": "error",
            "category": "CONFLICT",
            "message": f"Contact already exists. Existing ID: {existing}",
            "context": {"inputIndex": [str(index)]},
        }

    def _apply(
        self, planned: Sequence[tuple[dict[str, Any] | None, dict[str, str], str, str]]
    ) -> web.Response:
        """Write ``(target or None to create, props, id property, id)``; conflicts refused."""
        taken: dict[tuple[str, str], str] = {}
        refused: dict[int, str] = {}
        for i, (target, props, _prop, _ident) in enumerate(planned):
            existing = self._conflict(target, props, taken)
            if existing is not None:
                refused[i] = existing
                continue
            for name, value in props.items():
                if self.properties.get(name, {}).get("hasUniqueValue"):
                    taken[(name, self._norm(name, value))] = target["id"] if target else f"new{i}"
        if refused and not self.multi_status:
            existing = next(iter(refused.values()))
            return _error(409, "CONFLICT", f"Contact already exists. Existing ID: {existing}")
        results, errors = [], []
        for i, (target, props, prop, ident) in enumerate(planned):
            if i in refused:
                errors.append(self._conflict_error(refused[i], i))
                continue
            is_new = target is None
            if target is None:
                target = self._new_contact({prop: ident, **props})
            else:
                self._write(target, props)
            self.writes.append((ident, props))
            results.append({**target, "properties": dict(target["properties"]), "new": is_new})
        return self._answer(results, errors)

    def _batch_inputs(self, body: Any) -> list[Any] | web.Response:
        """A batch write's inputs, or the answer refusing it: the rate limit first, then
        1..100 inputs ("Contacts" batch endpoints: at most 100 inputs per request)."""
        limited = self._rate_limited()
        if limited is not None:
            return limited
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list) or not inputs or len(inputs) > 100:
            return _error(400, "VALIDATION_ERROR", "inputs must hold between 1 and 100 items")
        return inputs

    async def batch_upsert(self, _request: web.Request, body: Any) -> web.Response:
        inputs = self._batch_inputs(body)
        if isinstance(inputs, web.Response):
            return inputs
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
            pair = (id_prop, self._norm(id_prop, item["id"]))
            if pair in seen:
                return _error(400, "VALIDATION_ERROR", "Duplicate IDs found in batch input")
            seen.add(pair)
        planned = []
        for item in inputs:
            id_prop, ident = str(item["idProperty"]), str(item["id"])
            props = {str(k): str(v) for k, v in (item.get("properties") or {}).items()}
            planned.append((self._find(id_prop, ident), props, id_prop, ident))
        return self._apply(planned)

    async def batch_update(self, _request: web.Request, body: Any) -> web.Response:
        inputs = self._batch_inputs(body)
        if isinstance(inputs, web.Response):
            return inputs
        planned = []
        missing = []
        for item in inputs:
            if not isinstance(item, dict) or "id" not in item:
                return _error(400, "VALIDATION_ERROR", "every input needs an id")
            problem = self._check_properties(item.get("properties", {}))
            if problem:
                return _error(400, "VALIDATION_ERROR", problem)
            id_prop = str(item.get("idProperty") or "hs_object_id")
            ident = str(item["id"])
            target = self.contacts.get(ident) if id_prop == "hs_object_id" else None
            target = target or (self._find(id_prop, ident) if id_prop != "hs_object_id" else None)
            if target is None:
                missing.append(ident)
                continue
            props = {str(k): str(v) for k, v in (item.get("properties") or {}).items()}
            planned.append((target, props, id_prop, ident))
        if missing:
            return _error(404, "OBJECT_NOT_FOUND", f"No contact with id {missing[0]}")
        return self._apply(planned)

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
        errors = []
        if missing:
            errors.append(
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "message": "Could not get some CONTACT objects, they may be deleted or not"
                    " exist. Check that ids are valid.",
                    "context": {"ids": missing},
                }
            )
        return self._answer(found, errors)

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
        now = _iso(self.now_s())
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
        """ "Read a property" (properties API): type, hasUniqueValue and options included."""
        name = request.match_info["name"]
        spec = self.properties.get(name)
        if spec is None:
            return _error(404, "OBJECT_NOT_FOUND", f"Property {name} does not exist")
        return web.json_response({"name": name, "hasUniqueValue": False, "options": [], **spec})


# ---------------------------------------------------------------------- search, token info
#: "Search" guide (https://developers.hubspot.com/docs/api-reference/search/guide, "Limitations"):
#: at most 200 objects per page, at most 10,000 results for one query (paging beyond answers
#: 400), and the search endpoints' own limit of five requests per second per token
SEARCH_PATH = "/crm/v3/objects/contacts/search"
SEARCH_MAX_LIMIT = 200
SEARCH_MAX_RESULTS = 10_000
SEARCH_PER_SECOND = 5
SEARCH_MAX_GROUPS = 5
SEARCH_MAX_GROUP_FILTERS = 10
SEARCH_MAX_FILTERS = 25
#: "Private apps" (https://developers.hubspot.com/docs/api/private-apps, "Show private app
#: access token information"): POST {"tokenKey": token} → userId, hubId, appId, scopes
TOKEN_INFO_PATH = "/oauth/v2/private-apps/get/access-token-info"  # noqa: S105 - a path
#: the scopes a private app for paystream is given (the README's setup list)
SINK_SCOPES = (
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "crm.schemas.contacts.read",
    "crm.schemas.contacts.write",
)


def expired_answer() -> web.Response:
    """An expired token: a 401 of category ``EXPIRED_AUTHENTICATION`` ("Authentication",
    https://developers.hubspot.com/docs/api/oauth-quickstart-guide)."""
    return _error(401, "EXPIRED_AUTHENTICATION", "The OAuth token used to make this call expired.")


def _matches(contact: dict[str, Any], flt: dict[str, Any]) -> bool:
    props = contact["properties"]
    name, op = str(flt.get("propertyName")), str(flt.get("operator", "EQ"))
    held = props.get(name)
    if op == "HAS_PROPERTY":
        return held not in (None, "")
    if op == "NOT_HAS_PROPERTY":
        return held in (None, "")
    if held in (None, ""):
        return False
    wanted = str(flt.get("value", ""))
    if name == "hs_object_id":
        left, right = int(held), int(wanted) if wanted.isdigit() else 0
        return {"EQ": left == right, "GT": left > right, "GTE": left >= right,
                "LT": left < right}.get(op, False)  # fmt: skip
    if op == "EQ":  # "EQ" on text compares without regard to case
        return str(held).lower() == wanted.lower()
    return op == "NEQ" and str(held).lower() != wanted.lower()


def _search_body_problem(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "body must be an object"
    limit = body.get("limit", 10)
    if not isinstance(limit, int) or not 1 <= limit <= SEARCH_MAX_LIMIT:
        return f"limit must be between 1 and {SEARCH_MAX_LIMIT}"
    after = str(body.get("after") or "0")
    if not after.isdigit():
        return "after must be a paging cursor from a previous answer"
    groups = body.get("filterGroups") or []
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        return "filterGroups must be a list of objects"
    counts = [len(g.get("filters") or []) for g in groups]
    # "Expanded filtering capabilities" (changelog, https://developers.hubspot.com/changelog/
    # breaking-change-expanded-filtering-capabilities-and-error-messaging-in-hubspots-search-api):
    # at most five filter groups, ten filters in one group, twenty-five in all
    if len(groups) > SEARCH_MAX_GROUPS or any(n > SEARCH_MAX_GROUP_FILTERS for n in counts):
        return f"at most {SEARCH_MAX_GROUPS} filterGroups of {SEARCH_MAX_GROUP_FILTERS} filters"
    if sum(counts) > SEARCH_MAX_FILTERS:
        return f"at most {SEARCH_MAX_FILTERS} filters in one search"
    return None


def _search_answer(contacts: Iterable[dict[str, Any]], body: Any) -> web.Response:
    """One page of a contact search (filters, sort by id, ``after``, ``limit``, properties)."""
    groups = body.get("filterGroups") or []
    found = [
        c
        for c in contacts
        if not groups or any(all(_matches(c, f) for f in g.get("filters") or []) for g in groups)
    ]
    found.sort(key=lambda c: int(c["id"]))
    sorts = body.get("sorts") or []
    if sorts and str(sorts[0].get("direction", "")).upper().startswith("DESC"):
        found.reverse()
    start, limit = int(str(body.get("after") or "0")), int(body.get("limit", 10))
    if start + limit > SEARCH_MAX_RESULTS:
        # "Search" guide: paging past 10,000 results of one query is refused with a 400
        return _error(400, "VALIDATION_ERROR", "Search requests are limited to 10000 results")
    wanted = [str(p) for p in body.get("properties") or ["email", "firstname", "lastname"]]
    page = [
        {
            **c,
            "properties": {
                **{k: c["properties"].get(k) for k in wanted},
                "hs_object_id": c["id"],
                "createdate": c["createdAt"],
                "lastmodifieddate": c["updatedAt"],
            },
        }
        for c in found[start : start + limit]
    ]
    answer: dict[str, Any] = {"total": len(found), "results": page}
    if start + limit < len(found):
        answer["paging"] = {"next": {"after": str(start + limit)}}
    return web.json_response(answer)


def add_search_and_token_info(standin: HubSpotStandin) -> None:
    """Routes of ``paystream crm-repair`` and ``paystream doctor``: contact search and the
    private app's token introspection."""

    def searched() -> web.Response | None:
        now = time.monotonic()
        while standin._searches and standin._searches[0] <= now - 1.0:
            standin._searches.popleft()
        if len(standin._searches) >= standin.search_rate_limit:
            body = {**standin.error_bodies[429], "message": "You have reached your secondly"
                    " limit.", "policyName": "SECONDLY"}  # fmt: skip
            return web.json_response(body, status=429)  # no Retry-After (usage guidelines)
        standin._searches.append(now)
        return standin._rate_limited()

    async def search(_request: web.Request, body: Any) -> web.Response:
        problem = _search_body_problem(body)
        if problem:
            return _error(400, "VALIDATION_ERROR", problem)
        limited = searched()
        if limited is not None:
            return limited
        return _search_answer(standin.indexed(), body)

    async def token_info(_request: web.Request, body: Any) -> web.Response:
        token = body.get("tokenKey") if isinstance(body, dict) else None
        if token != standin.token:
            return standin.unauthorized()
        if standin.token_expired:
            return expired_answer()
        return web.json_response(
            {"userId": 1001, "hubId": 4242, "appId": 77, "scopes": list(standin.scopes)}
        )

    standin.route("POST", SEARCH_PATH, search)
    standin.route("POST", TOKEN_INFO_PATH, token_info)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="local HubSpot CRM stand-in")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default: loopback)")
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    parser.add_argument("--no-properties", action="store_true", help="start without crm-setup")
    parser.add_argument("--rate-limit", type=int, default=190, help="requests per period")
    parser.add_argument("--rate-period", type=float, default=10.0, help="seconds")
    parser.add_argument("--daily-limit", type=int, default=625_000, help="requests per day")
    parser.add_argument("--time-zone", default="UTC", help="the account's time zone")
    args = parser.parse_args(argv)
    serve_forever(
        HubSpotStandin(
            args.token,
            with_properties=not args.no_properties,
            rate_limit=args.rate_limit,
            rate_period_s=args.rate_period,
            daily_limit=args.daily_limit,
            time_zone=args.time_zone,
        ),
        args.port,
        args.host,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
