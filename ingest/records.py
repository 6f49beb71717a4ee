"""The Avro bytes of ingest's records, written without fastavro's per-call work (pure).

Ingest's two records (``schemas/stripe_event.avsc``, ``schemas/app_event.avsc``) are flat:
strings, longs, booleans and ``["null", string]``. For such a schema the single-object
encoding is the header (marker and fingerprint), then each field in order: a string as its
zig-zag varint length and its UTF-8 bytes, a long as a zig-zag varint, a boolean as one
byte, a union as the branch's index (a long) and the branch's value (Avro 1.11
specification, "Binary Encoding"). ``schemas.codec`` stays the reference: an encoder is
built only for a schema made of those types alone, and only when it wrote the very bytes
the codec writes for sample records; any other schema (a field of another type, a union of
another shape) gets the codec itself. ``tests/unit/ingest/test_records.py`` compares both
on generated records.

Why: fastavro's ``schemaless_writer`` costs ≈ 5 µs per record in call overhead (resolving
the parsed schema, a buffer per call) against ≈ 2.5 µs here, on a path where ingest's event
loop spends ≈ 170 µs per webhook (docs/ingest.md, "Performance").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from schemas.codec import MARKER, AvroCodec, schema_fingerprint

#: One record's Avro single-object bytes.
Encoder = Callable[[Mapping[str, Any]], bytes]

_STRING, _LONG, _BOOLEAN = "string", "long", "boolean"
#: Avro's primitive names → what ``_write`` compares by identity (an int is a long's varint)
_PRIMITIVES = {"string": _STRING, "long": _LONG, "int": _LONG, "boolean": _BOOLEAN}
_NULL, _BRANCH_1 = b"\x00", b"\x02"  # union branch 0 (null) and 1, as longs
_FALSE, _TRUE = b"\x00", b"\x01"


def _varint(n: int) -> bytes:
    """An unsigned ``n`` as a little-endian base-128 varint."""
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


#: The zig-zag varints of 0..127 (string lengths below 128, small longs), made once.
_SMALL = tuple(_varint(i << 1) for i in range(128))


def zigzag_long(n: int) -> bytes:
    """An Avro long (or int): zig-zag, then varint; 64-bit, as the specification says."""
    if 0 <= n < 128:
        return _SMALL[n]
    zigzag = (n << 1) ^ (n >> 63)
    if zigzag < 0x80:  # a small negative long
        return bytes((zigzag,))
    if zigzag < 0x4000:  # two bytes: a string of up to 8 KB, the common webhook body
        return bytes(((zigzag & 0x7F) | 0x80, zigzag >> 7))
    return _varint(zigzag)


def _field_kind(avro_type: object) -> tuple[str, bool] | None:
    """(primitive, nullable) of a field this module writes, else None."""
    if isinstance(avro_type, list):
        if len(avro_type) == 2 and avro_type[0] == "null":
            inner = _field_kind(avro_type[1])
            return (inner[0], True) if inner is not None and not inner[1] else None
        return None
    kind = _PRIMITIVES.get(avro_type) if isinstance(avro_type, str) else None
    return None if kind is None else (kind, False)


def flat_fields(schema: Any) -> tuple[tuple[str, str, bool], ...] | None:
    """(name, primitive, nullable) per field of a flat record schema (its fields all
    string, long, int, boolean or ``["null", one of those]``), else None."""
    if not isinstance(schema, dict) or schema.get("type") != "record":
        return None
    fields = []
    for field in schema["fields"]:
        kind = _field_kind(field["type"])
        if kind is None:
            return None
        fields.append((field["name"], *kind))
    return tuple(fields)


def _write(
    header: bytes, fields: tuple[tuple[str, str, bool], ...], record: Mapping[str, Any]
) -> bytes:
    out = [header]
    append = out.append
    for name, kind, nullable in fields:
        value = record[name]
        if nullable:
            if value is None:
                append(_NULL)
                continue
            append(_BRANCH_1)
        if kind is _STRING:
            data = value.encode("utf-8")
            append(zigzag_long(len(data)))
            append(data)
        elif kind is _LONG:
            append(zigzag_long(value))
        else:
            append(_TRUE if value else _FALSE)
    return b"".join(out)


def _samples(fields: tuple[tuple[str, str, bool], ...]) -> list[dict[str, Any]]:
    """Records the built encoder must write as the codec does: every nullable field null,
    then every field set (long and non-ASCII strings, a negative long in an int's range)."""
    values = {_STRING: "x\u00e9" * 70, _LONG: -(2**31), _BOOLEAN: True}
    small = {_STRING: "", _LONG: 3, _BOOLEAN: False}
    return [
        {n: None if nullable else small[kind] for n, kind, nullable in fields},
        {n: values[kind] for n, kind, _ in fields},
    ]


def flat_encoder(codec: AvroCodec, name: str) -> Encoder | None:
    """This module's encoder of schema ``name``: None when the schema is not flat, or when
    the encoder did not write the codec's bytes for the samples."""
    schema = codec.schema(name)
    fields = flat_fields(schema)
    if fields is None:
        return None
    fast: Encoder = partial(_write, MARKER + schema_fingerprint(schema), fields)
    if any(fast(sample) != codec.encode(name, sample) for sample in _samples(fields)):
        return None
    return fast


def record_encoder(codec: AvroCodec, name: str) -> Encoder:
    """The encoder of schema ``name``: ``flat_encoder``'s, else ``codec.encode`` itself."""
    return flat_encoder(codec, name) or partial(codec.encode, name)


class RecordEncoders:
    """``encode(name, record)`` as ``AvroCodec.encode``, through each schema's encoder."""

    def __init__(self, codec: AvroCodec, names: tuple[str, ...]) -> None:
        self._by_name = {name: record_encoder(codec, name) for name in names}

    def encode(self, name: str, record: Mapping[str, Any]) -> bytes:
        return self._by_name[name](record)
