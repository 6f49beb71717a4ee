"""Hypothesis strategies for the ``Stripe-Signature`` header grammar (unit and integration).

``t=<timestamp>,v1=<hex>[,v0=...]``: each part drawn from well-formed, borderline and
hostile values (non-ASCII, control-free Unicode, huge numbers, empty, repeated keys), so
the fuzzer reaches the HMAC comparison instead of stopping at the first parse error.
"""

from __future__ import annotations

import time

from hypothesis import strategies as st
from hypothesis.strategies import DrawFn, composite

from paystream.signing import signature

#: Header values aiohttp can carry: no control characters, surrogates or line breaks.
header_chars = st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"))
hex_digest = st.text("0123456789abcdef", min_size=64, max_size=64)


@composite
def signature_headers(draw: DrawFn, body: bytes, secret: str) -> str:
    """A ``Stripe-Signature`` value that follows the grammar with hostile parts."""
    now = int(time.time())
    timestamp = draw(
        st.sampled_from([str(now), str(now - 10_000), "", "-1", "0", "9" * 40, "1e9", " 1", "١٢٣"])
        | st.integers().map(str)
        | st.text(header_chars, max_size=12)
    )
    good = signature(body, secret, now)
    v1 = draw(
        st.sampled_from(
            [good, good.upper(), good[:-1] + "é", "é" * 64, "", "\uff46" * 64, good + "\u00a0"]
        )
        | hex_digest
        | st.text(header_chars, max_size=80)
    )
    items = [f"t={timestamp}", f"v1={v1}"]
    items += draw(
        st.lists(
            st.sampled_from(["v0=abc", "v1=", "t=", "x", "=", "v1==", ",", "t=1=2"])
            | st.builds(
                lambda k, v: f"{k}={v}",
                st.sampled_from(["t", "v1", "v0", "é"]),
                st.text(header_chars, max_size=20),
            ),
            max_size=3,
        )
    )
    order = draw(st.permutations(items))
    separator = draw(st.sampled_from([",", ", ", ",,", ";"]))
    return separator.join(order)
