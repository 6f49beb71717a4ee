"""Avro single-object encoding (marker, CRC-64-AVRO fingerprint, body) with fastavro.

Readers find the writer schema by its fingerprint, so no registry server is needed:
every schema a reader may meet lives in ``schemas/*.avsc`` (the current versions) and
``schemas/history/<name>/*.avsc`` (earlier ones); data written with an older version is
resolved to the current one.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

import fastavro
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

from paystream.errors import PaystreamError

MARKER = b"\xc3\x01"
HEADER_SIZE = 10

#: Schema names as used by producers: the .avsc file stem.
STRIPE_EVENT = "stripe_event"
APP_EVENT = "app_event"
LIFECYCLE_CHANGE = "lifecycle_change"
CRM_COMMAND = "crm_command"
HELPDESK_COMMAND = "helpdesk_command"
SINK_RESULT = "sink_result"
DEAD_LETTER = "dead_letter"
EXCEPTION_STATUS = "exception_status"
ADMIN_SESSION = "admin_session"
CONTACT_ID = "contact_id"


class SchemaError(PaystreamError):
    """Raised when bytes cannot be decoded as a paystream Avro message."""


class UnknownSchemaError(SchemaError):
    """Raised when a message's fingerprint names no schema this reader knows."""


def schema_fingerprint(schema: Any) -> bytes:
    """The 8-byte little-endian CRC-64-AVRO fingerprint of a schema's canonical form."""
    canonical = to_parsing_canonical_form(schema)
    return bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))


def _load(text: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(text)
    return loaded


class AvroCodec:
    """Encodes and decodes every paystream message type; cheap to share, immutable."""

    def __init__(self) -> None:
        root = resources.files("schemas")
        self._writers: dict[str, tuple[bytes, Any]] = {}
        self._readers: dict[bytes, tuple[str, Any, Any]] = {}
        current: dict[str, Any] = {}
        for entry in sorted(root.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".avsc"):
                name = entry.name.removesuffix(".avsc")
                parsed = parse_schema(_load(entry.read_text()))
                current[name] = parsed
                fp = schema_fingerprint(parsed)
                self._writers[name] = (MARKER + fp, parsed)
                self._readers[fp] = (name, parsed, None)
        history = root / "history"
        for name, reader in current.items():
            folder = history / name
            if not folder.is_dir():
                continue
            for old in folder.iterdir():
                if not old.name.endswith(".avsc"):
                    continue
                parsed_old = parse_schema(_load(old.read_text()))
                fp = schema_fingerprint(parsed_old)
                if fp not in self._readers:
                    self._readers[fp] = (name, parsed_old, reader)

    @property
    def names(self) -> list[str]:
        return sorted(self._writers)

    def schema(self, name: str) -> Any:
        return self._writers[name][1]

    def encode(self, name: str, record: Mapping[str, Any]) -> bytes:
        """Single-object encode ``record`` with the current schema ``name``."""
        header, schema = self._writers[name]
        buf = io.BytesIO()
        buf.write(header)
        fastavro.schemaless_writer(buf, schema, record)
        return buf.getvalue()

    def decode(self, data: bytes) -> tuple[str, dict[str, Any]]:
        """Return ``(schema name, record)``; older writer schemas resolve to the current one."""
        if len(data) < HEADER_SIZE or data[:2] != MARKER:
            raise SchemaError("not an Avro single-object message")
        found = self._readers.get(bytes(data[2:HEADER_SIZE]))
        if found is None:
            raise UnknownSchemaError("unknown schema fingerprint " + data[2:HEADER_SIZE].hex())
        name, writer, reader = found
        body = io.BytesIO(data)  # shares the bytes (a slice would copy the ~4 KB body)
        body.seek(HEADER_SIZE)
        try:
            record = fastavro.schemaless_reader(body, writer, reader, return_record_name=False)
        except Exception as exc:  # fastavro raises many types for truncated input
            raise SchemaError(f"cannot decode {name}: {type(exc).__name__}") from None
        if not isinstance(record, dict):
            raise SchemaError(f"{name} is not a record")
        return name, record

    def decode_as(self, name: str, data: bytes) -> dict[str, Any]:
        """Decode and check that the message is of the expected schema."""
        found, record = self.decode(data)
        if found != name:
            raise SchemaError(f"expected {name}, got {found}")
        return record


@cache
def default_codec() -> AvroCodec:
    """One codec per process, built on first use (reads the .avsc files once)."""
    return AvroCodec()
