"""Sessions, CSRF tokens, the login throttle and cookie flags: tables and properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from admin.security import Sessions, login_throttle, token_matches

TOKEN = "a-long-admin-token-0123456789"


def test_a_session_cookie_round_trips_and_expires() -> None:
    sessions = Sessions(TOKEN, max_age_s=3600)
    cookie = sessions.issue(now_s=1_000, nonce="n0nce")
    assert sessions.nonce(cookie, 1_000) == "n0nce"
    assert sessions.nonce(cookie, 4_600) == "n0nce"
    assert sessions.nonce(cookie, 4_601) is None  # expired
    assert sessions.nonce(cookie, 999) is None  # from the future


@pytest.mark.parametrize(
    "mangle",
    [
        lambda c: c[:-1] + ("A" if c[-1] != "A" else "B"),  # mac changed
        lambda c: "2000" + c[c.index(".") :],  # issued time changed
        lambda c: c.replace("n0nce", "other"),  # nonce changed
        lambda c: c + ".x",
        lambda c: "",
        lambda c: "x" * 500,
        lambda c: "abc.def.ghi",
    ],
)
def test_a_forged_or_changed_cookie_is_refused(mangle: object) -> None:
    sessions = Sessions(TOKEN)
    cookie = sessions.issue(now_s=1_000, nonce="n0nce")
    assert sessions.nonce(mangle(cookie), 1_100) is None  # type: ignore[operator]


def test_another_token_signs_everybody_out() -> None:
    cookie = Sessions(TOKEN).issue(1_000)
    assert Sessions(TOKEN + "x").nonce(cookie, 1_000) is None
    # ... while another replica with the same token accepts it
    assert Sessions(TOKEN).nonce(cookie, 1_000) is not None


def test_csrf_token_belongs_to_its_session() -> None:
    sessions = Sessions(TOKEN)
    token = sessions.csrf_token("n1")
    assert sessions.csrf_ok("n1", token)
    assert not sessions.csrf_ok("n2", token)
    assert not sessions.csrf_ok("n1", "")
    assert not sessions.csrf_ok("n1", None)
    assert not sessions.csrf_ok(None, token)
    assert not Sessions(TOKEN + "x").csrf_ok("n1", token)
    assert token not in sessions.issue(1, nonce="n1")  # not readable from the cookie


@given(st.text(max_size=40), st.text(max_size=40))
def test_token_matches_is_equality(a: str, b: str) -> None:
    assert token_matches(a, b) == (a == b)


def test_login_throttle_is_per_client_only() -> None:
    t = login_throttle(3)  # 3 at once, then one every 20 s
    for i in range(3):
        assert t.retry_after("1.1.1.1", i) == 0
        t.failed("1.1.1.1", i)
    assert 0 < t.retry_after("1.1.1.1", 10) <= 20  # one attempt refills every 20 s
    assert t.retry_after("2.2.2.2", 10) == 0  # another client is not punished
    assert t.retry_after("1.1.1.1", 22.5) == 0
    for i in range(200):  # a spray from many addresses locks out none but themselves
        for _ in range(3):
            t.failed(f"10.0.0.{i}", 61)
    assert t.retry_after("10.0.0.7", 62) > 0
    assert t.retry_after("7.7.7.7", 62) == 0
    assert t.retry_after("1.1.1.1", 62) == 0


@given(st.lists(st.tuples(st.sampled_from("abc"), st.floats(0, 300)), max_size=60))
def test_a_client_is_refused_only_for_its_own_failures(
    failures: list[tuple[str, float]],
) -> None:
    """Whatever the others did, a client is throttled exactly as if it were alone."""
    together = login_throttle(3)
    for client, at in sorted(failures, key=lambda f: f[1]):
        together.failed(client, at)
    for client in "abcd":
        alone = login_throttle(3)
        for c, at in sorted(failures, key=lambda f: f[1]):
            if c == client:
                alone.failed(c, at)
        assert together.retry_after(client, 301.0) == alone.retry_after(client, 301.0)
