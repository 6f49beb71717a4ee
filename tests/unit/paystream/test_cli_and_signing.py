"""The command line's contract and the sender-side signature helper."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from paystream import cli
from paystream.signing import sign_header


def test_a_command_whose_issue_has_not_landed_says_so_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(cli.COMMANDS, "admin", ("paystream._not_a_module", "x"))
    assert cli.main(["admin"]) == 2
    assert "not yet available" in capsys.readouterr().err


def test_a_bad_setting_exits_2_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STRIPE_MODE", "nope")
    assert cli.main(["topics"]) == 2
    err = capsys.readouterr().err
    assert (
        err.strip()
        == "paystream topics: invalid setting STRIPE_MODE: Input should be 'test' or 'live'"
    )


def test_an_unexpected_error_is_one_line_without_a_stack_trace(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def boom(argv: list[str]) -> int:
        raise RuntimeError("secret-value")

    monkeypatch.setattr(cli, "_resolve", lambda command: boom)
    assert cli.main(["status"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "paystream status: unexpected error (RuntimeError)"
    assert "secret-value" not in err and "Traceback" not in err


def test_unknown_command_is_refused() -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["frobnicate"])
    assert info.value.code == 2


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
