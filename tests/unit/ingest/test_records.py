"""ingest.records: the flat Avro encoder writes exactly the bytes schemas.codec writes."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.records import (
    RecordEncoders,
    flat_encoder,
    flat_fields,
    record_encoder,
    zigzag_long,
)
from schemas.codec import APP_EVENT, STRIPE_EVENT, default_codec

CODEC = default_codec()
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)
LONG = st.integers(-(2**63), 2**63 - 1)
VALUES = {"string": TEXT, "long": LONG, "boolean": st.booleans()}


def records_of(name: str) -> st.SearchStrategy[dict[str, Any]]:
    fields = flat_fields(CODEC.schema(name))
    assert fields is not None
    return st.fixed_dictionaries(
        {
            field: (st.none() | VALUES[kind]) if nullable else VALUES[kind]
            for field, kind, nullable in fields
        }
    )


@pytest.mark.parametrize("name", [STRIPE_EVENT, APP_EVENT])
def test_ingest_records_get_the_flat_encoder(name: str) -> None:
    # the speed-up is not silently lost to the fallback when a schema changes
    assert flat_encoder(CODEC, name) is not None


@settings(max_examples=150)
@given(data=st.data())
@pytest.mark.parametrize("name", [STRIPE_EVENT, APP_EVENT])
def test_flat_encoder_writes_the_codecs_bytes(name: str, data: st.DataObject) -> None:
    record = data.draw(records_of(name))
    encoded = RecordEncoders(CODEC, (name,)).encode(name, record)
    assert encoded == CODEC.encode(name, record)
    assert CODEC.decode_as(name, encoded) == record


def test_a_6_kb_body_is_written_as_the_codec_writes_it() -> None:
    record = {
        "event_id": "evt_1",
        "type": "invoice.paid",
        "created": 1_700_000_000,
        "livemode": True,
        "api_version": None,
        "customer_id": "cus_A",
        "received_at_ms": 1_700_000_000_123,
        "correlation_id": "c" * 128,
        "source": "webhook",
        "raw": '{"x": "' + "é" * 3000 + '"}',
    }
    assert record_encoder(CODEC, STRIPE_EVENT)(record) == CODEC.encode(STRIPE_EVENT, record)


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, b"\x00"),
        (-1, b"\x01"),
        (1, b"\x02"),
        (63, b"\x7e"),
        (64, b"\x80\x01"),
        (127, b"\xfe\x01"),
        (128, b"\x80\x02"),
        (8191, b"\xfe\x7f"),
        (8192, b"\x80\x80\x01"),
        (-8193, b"\x81\x80\x01"),
        (-(2**63), b"\xff" * 9 + b"\x01"),
        (2**63 - 1, b"\xfe" + b"\xff" * 8 + b"\x01"),
    ],
)
def test_zigzag_long_is_avros_long(n: int, expected: bytes) -> None:
    # the Avro 1.11 specification's examples (0, -1, 1, 63 → 7e, 64 → 80 01) and the ends
    assert zigzag_long(n) == expected


@pytest.mark.parametrize(
    ("avro_type", "flat"),
    [
        ("string", True),
        ("long", True),
        ("int", True),
        ("boolean", True),
        (["null", "string"], True),
        (["null", "long"], True),
        (["string", "null"], False),  # branch order decides the index: not this module's
        (["null", "string", "long"], False),
        (["null", ["null", "string"]], False),
        ("bytes", False),
        ("double", False),
        ({"type": "enum", "name": "E", "symbols": ["A"]}, False),
        ({"type": "array", "items": "string"}, False),
        ({"type": "record", "name": "R", "fields": []}, False),
    ],
)
def test_only_flat_fields_are_written_here(avro_type: Any, flat: bool) -> None:
    schema = {"type": "record", "name": "T", "fields": [{"name": "f", "type": avro_type}]}
    assert (flat_fields(schema) is not None) is flat


def test_a_schema_that_is_not_flat_gets_the_codec() -> None:
    nested = next(n for n in CODEC.names if flat_fields(CODEC.schema(n)) is None)
    assert flat_encoder(CODEC, nested) is None
    assert record_encoder(CODEC, nested).func == CODEC.encode  # type: ignore[attr-defined]
