"""The sender-side signature helper: Stripe's scheme, one or several secrets."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from paystream.signing import sign_header


@pytest.mark.parametrize("secrets", [["whsec_a"], ["whsec_a", "whsec_b"]])
def test_sign_header_matches_stripes_scheme(secrets: list[str]) -> None:
    body = b'{"id": "evt_1"}'
    header = sign_header(body, secrets, timestamp=1_700_000_000)
    parts = header.split(",")
    assert parts[0] == "t=1700000000"
    expected = [
        "v1=" + hmac.new(s.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
        for s in secrets
    ]
    assert parts[1:] == expected
