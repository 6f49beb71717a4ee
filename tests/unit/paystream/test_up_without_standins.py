"""``paystream up`` in an install without the stand-ins (the image): one line, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

import paystream.commands.up
from paystream.cli import main
from tests.unit.settings_env import clean_environment


def test_up_says_in_one_line_that_the_stand_ins_ship_with_the_checkout(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_environment(monkeypatch, tmp_path)
    monkeypatch.setattr(paystream.commands.up, "standins_checkout", lambda: None)
    monkeypatch.setenv("PAYSTREAM_SINK_WRITES", "enabled")
    monkeypatch.setenv("PAYSTREAM_DATA_DIR", str(tmp_path / "var"))
    assert main(["up"]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    [line] = out.err.splitlines()
    assert line.startswith("paystream up: PAYSTREAM_SINK_WRITES=enabled without HUBSPOT_")
    assert "ship with the source checkout" in line
    assert not (tmp_path / "var").exists()  # stopped before anything started


def test_this_checkout_has_them() -> None:
    checkout = paystream.commands.up.standins_checkout()
    assert checkout is not None and (checkout / "devstack" / "hubspot.py").is_file()
