"""The Avro single-object codec: round trips, fingerprints, evolution, bad input."""

from __future__ import annotations

import contextlib
import io
import json
from importlib import resources
from typing import Any

import pytest
from fastavro import schemaless_reader, schemaless_writer
from fastavro.schema import parse_schema
from fastavro.utils import generate_many
from hypothesis import given
from hypothesis import strategies as st

from schemas.codec import (
    MARKER,
    AvroCodec,
    SchemaError,
    UnknownSchemaError,
    default_codec,
    schema_fingerprint,
)

CODEC = default_codec()


@pytest.mark.parametrize("name", CODEC.names)
def test_every_schema_round_trips_generated_records(name: str) -> None:
    for record in generate_many(CODEC.schema(name), 20):
        data = CODEC.encode(name, record)
        assert data[:2] == MARKER
        found, decoded = CODEC.decode(data)
        assert found == name
        assert decoded == record


def test_fingerprint_matches_the_avro_specification_example() -> None:
    # CRC-64-AVRO of the canonical form '"string"', little-endian, as the Java library
    # writes it in single-object headers.
    assert schema_fingerprint("string").hex() == "c70345637248018f"


def test_header_is_marker_then_fingerprint_of_the_writer_schema() -> None:
    data = CODEC.encode("app_event", _app_event())
    assert data[2:10] == schema_fingerprint(CODEC.schema("app_event"))


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", SchemaError),
        (b"{}", SchemaError),
        (b"\xc3\x01" + b"\x00" * 8 + b"abc", UnknownSchemaError),
        (b"\xc3\x02" + b"\x00" * 20, SchemaError),
    ],
)
def test_bad_bytes_raise_schema_errors(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        CODEC.decode(data)


def test_truncated_body_is_a_schema_error_not_a_crash() -> None:
    data = CODEC.encode("app_event", _app_event())
    with pytest.raises(SchemaError):
        CODEC.decode(data[:14])


def test_decode_as_checks_the_schema_name() -> None:
    data = CODEC.encode("app_event", _app_event())
    assert CODEC.decode_as("app_event", data)["event_id"] == "evt_1"
    with pytest.raises(SchemaError):
        CODEC.decode_as("crm_command", data)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise_anything_but_schema_errors(data: bytes) -> None:
    with contextlib.suppress(SchemaError):
        CODEC.decode(data)


def _history() -> list[tuple[str, str]]:
    root = resources.files("schemas") / "history"
    found = []
    for folder in root.iterdir():
        if folder.is_dir():
            found += [
                (folder.name, old.name) for old in folder.iterdir() if old.name.endswith(".avsc")
            ]
    return sorted(found)


def test_every_current_schema_has_a_recorded_first_version() -> None:
    assert {name for name, _ in _history()} == set(CODEC.names)


@pytest.mark.parametrize(("name", "version"), _history())
def test_current_schema_reads_every_earlier_version(name: str, version: str) -> None:
    """Backward compatibility: data written with any recorded version decodes with today's."""
    text = (resources.files("schemas") / "history" / name / version).read_text()
    old_schema: Any = parse_schema(json.loads(text))
    old_codec_header = MARKER + schema_fingerprint(old_schema)
    for record in generate_many(old_schema, 20):
        buf = io.BytesIO()
        schemaless_writer(buf, old_schema, record)
        found, decoded = CODEC.decode(old_codec_header + buf.getvalue())
        assert found == name
        for field, value in record.items():
            assert decoded[field] == value


def test_codec_refuses_an_incompatible_change() -> None:
    """The evolution check can fail: a new required field without default breaks old data."""
    current = dict(CODEC.schema("app_event"))
    broken = dict(current, fields=[*current["fields"], {"name": "plan", "type": "string"}])
    buf = io.BytesIO()
    schemaless_writer(buf, current, _app_event())
    buf.seek(0)
    with pytest.raises(Exception, match="plan"):
        schemaless_reader(buf, current, parse_schema(broken))


def _app_event() -> dict[str, Any]:
    return {
        "event_id": "evt_1",
        "type": "onboarding.completed",
        "created": 1_700_000_000,
        "customer_id": "cus_1",
        "user_id": "u1",
        "received_at_ms": 1_700_000_000_123,
        "correlation_id": "req-1",
    }


def test_codec_instances_agree() -> None:
    assert AvroCodec().encode("app_event", _app_event()) == CODEC.encode("app_event", _app_event())
