"""ingest.signature: as a table (rotation, several v1, tolerance); stripe's library as oracle."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stripe import WebhookSignature

from ingest.errors import InvalidSignature
from ingest.signature import verify
from paystream.signing import sign_header, signature
from tests.ingest_strategies import signature_headers

# A fixed instant (every check passes now=NOW): the parameters, and so the test ids, are the
# same in every pytest-xdist worker's collection.
NOW = 1_796_000_000
BODY = b'{"id": "evt_1", "object": "event"}'
CURRENT, PREVIOUS = "whsec_current", "whsec_previous"
SECRETS = (CURRENT, PREVIOUS)
TOLERANCE = 300


@pytest.mark.parametrize(
    "header",
    [
        sign_header(BODY, CURRENT, NOW),
        sign_header(BODY, PREVIOUS, NOW),  # rotation: the old secret still works
        sign_header(BODY, ["whsec_other", CURRENT], NOW),  # several v1, one matches
        sign_header(BODY, CURRENT, NOW - TOLERANCE + 5),  # old, but inside tolerance
        sign_header(BODY, CURRENT, NOW + TOLERANCE - 5),  # clock skew inside tolerance
        f"t={NOW},v0=ignored,v1={signature(BODY, CURRENT, NOW)}",
    ],
)
def test_accepts(header: str) -> None:
    assert verify(BODY, header, SECRETS, TOLERANCE, now=NOW) == BODY.decode()


@pytest.mark.parametrize(
    ("body", "header", "secrets"),
    [
        (BODY, None, SECRETS),
        (BODY, "", SECRETS),
        (BODY, sign_header(BODY, CURRENT, NOW), ()),  # no secret configured
        (BODY, sign_header(BODY, "whsec_intruder", NOW), SECRETS),
        (BODY + b" ", sign_header(BODY, CURRENT, NOW), SECRETS),  # body changed
        (BODY, sign_header(BODY, CURRENT, NOW - TOLERANCE - 5), SECRETS),  # too old
        (BODY, sign_header(BODY, CURRENT, NOW + TOLERANCE + 60), SECRETS),  # from the future
        (BODY, sign_header(BODY, CURRENT, NOW).replace("v1=", "v0="), SECRETS),
        (BODY, f"v1={signature(BODY, CURRENT, NOW)}", SECRETS),  # no timestamp
        (BODY, f"t=abc,v1={signature(BODY, CURRENT, NOW)}", SECRETS),
        (BODY, f"t={NOW}", SECRETS),
        (BODY, "t=" + "9" * 5000 + ",v1=00", SECRETS),
        (b"\xff\xfe" + BODY, sign_header(b"\xff\xfe" + BODY, CURRENT, NOW), SECRETS),  # not UTF-8
        (BODY, f"t={NOW},v1=\u00e9", SECRETS),  # non-ASCII v1 (was a TypeError: 500)
        (BODY, f"t={NOW},v1={signature(BODY, CURRENT, NOW)[:-1]}\u00e9", SECRETS),
        (BODY, f"t={NOW},v1={signature(BODY, 'whsec_other', NOW)},v1=\uff46", SECRETS),
        (BODY, f"t=\u0661\u0662,v1={signature(BODY, CURRENT, NOW)}", SECRETS),  # Arabic digits
    ],
)
def test_refuses(body: bytes, header: str | None, secrets: tuple[str, ...]) -> None:
    with pytest.raises(InvalidSignature):
        verify(body, header, secrets, TOLERANCE, now=NOW)


def test_a_signature_is_bound_to_its_timestamp() -> None:
    header = f"t={NOW + 1},v1={signature(BODY, CURRENT, NOW)}"
    with pytest.raises(InvalidSignature):
        verify(BODY, header, SECRETS, TOLERANCE, now=NOW)


@given(payload=st.text(max_size=2000), secret=st.text(min_size=1, max_size=40).filter(str.strip))
def test_any_utf8_payload_signed_with_a_configured_secret_verifies(
    payload: str, secret: str
) -> None:
    body = payload.encode()
    assert verify(body, sign_header(body, secret), (secret,), TOLERANCE) == payload


@given(payload=st.binary(min_size=1, max_size=500), flip=st.integers(min_value=0))
def test_any_changed_byte_breaks_the_signature(payload: bytes, flip: int) -> None:
    header = sign_header(payload, CURRENT)
    index = flip % len(payload)
    changed = payload[:index] + bytes([payload[index] ^ 0x01]) + payload[index + 1 :]
    with pytest.raises(InvalidSignature):
        verify(changed, header, SECRETS, TOLERANCE)


@given(header=st.text(max_size=300), payload=st.binary(max_size=300))
def test_arbitrary_headers_only_ever_raise_invalid_signature(header: str, payload: bytes) -> None:
    with pytest.raises(InvalidSignature):
        verify(payload, header, SECRETS, TOLERANCE)


@given(header=signature_headers(BODY, "whsec_intruder"))
def test_any_header_of_the_grammar_only_ever_raises_invalid_signature(header: str) -> None:
    with pytest.raises(InvalidSignature):
        verify(BODY, header, SECRETS, TOLERANCE, now=NOW)


def _stripe_accepts(body: bytes, header: str, secret: str) -> bool:
    """The stripe library's own check (HMAC only; the tolerance is checked apart)."""
    try:
        return WebhookSignature.verify_header(body.decode(), header, secret, None)
    except Exception:  # SignatureVerificationError, or TypeError on non-ASCII input
        return False


@given(header=signature_headers(BODY, CURRENT) | st.text(max_size=200))
def test_never_accepts_what_the_stripe_library_refuses(header: str) -> None:
    try:
        verify(BODY, header, (CURRENT,), 10**12, now=NOW)
    except InvalidSignature:
        return
    assert _stripe_accepts(BODY, header, CURRENT)


@given(
    payload=st.text(max_size=500),
    keys=st.lists(st.sampled_from([CURRENT, PREVIOUS, "whsec_other"]), min_size=1, max_size=3),
    skew=st.integers(min_value=-TOLERANCE, max_value=TOLERANCE),
)
def test_agrees_with_the_stripe_library_on_headers_as_stripe_sends_them(
    payload: str, keys: list[str], skew: int
) -> None:
    body = payload.encode()
    header = sign_header(body, keys, NOW + skew)
    try:
        verify(body, header, (CURRENT,), TOLERANCE, now=NOW)
        accepted = True
    except InvalidSignature:
        accepted = False
    assert accepted == _stripe_accepts(body, header, CURRENT) == (CURRENT in keys)
