"""When the worker keeps its local tables: the decision table and the marker file."""

from __future__ import annotations

from pathlib import Path

import pytest

from processors.localstate import (
    MARKER,
    BrokerIdentity,
    CleanShutdown,
    decide,
    resume_offsets,
    take_marker,
    write_marker,
)

TOPICS = {"w-dedup-changelog": ("id-a", 4), "w-customers-changelog": ("id-b", 4)}
BROKER = BrokerIdentity("cluster-1", TOPICS)
CLEAN = CleanShutdown(BROKER, {("w-dedup-changelog", 0): 41, ("w-customers-changelog", 3): 7})


@pytest.mark.parametrize(
    ("marker", "broker", "keep", "reason"),
    [
        (CLEAN, BROKER, True, "match"),
        (None, BROKER, False, "no clean shutdown"),
        (CLEAN, None, False, "unknown"),
        (CLEAN, BrokerIdentity("cluster-2", TOPICS), False, "another Kafka cluster"),
        (
            CLEAN,
            BrokerIdentity("cluster-1", {**TOPICS, "w-dedup-changelog": ("id-new", 4)}),
            False,
            "re-created",
        ),
        (
            CLEAN,
            BrokerIdentity("cluster-1", {**TOPICS, "w-dedup-changelog": ("id-a", 8)}),
            False,
            "re-created",
        ),
        (CLEAN, BrokerIdentity("cluster-1", {}), False, "re-created"),
        (
            CleanShutdown(BrokerIdentity("cluster-1", {}), {}),
            BrokerIdentity("cluster-1", {}),
            False,
            "re-created",
        ),
    ],
)
def test_decision(
    marker: CleanShutdown | None, broker: BrokerIdentity | None, keep: bool, reason: str
) -> None:
    decision = decide(marker, broker)
    assert decision.keep is keep
    assert reason in decision.reason


def test_marker_round_trip_and_taken_once(tmp_path: Path) -> None:
    write_marker(tmp_path, CLEAN)
    assert take_marker(tmp_path) == CLEAN
    assert not (tmp_path / MARKER).exists()
    assert take_marker(tmp_path) is None  # a crash after this start leaves no marker


@pytest.mark.parametrize(
    "text", ["", "{", "[]", '{"version": 99}', '{"version": 1, "topics": 3}', "null"]
)
def test_an_unreadable_marker_means_wipe(tmp_path: Path, text: str) -> None:
    (tmp_path / MARKER).write_text(text)
    assert take_marker(tmp_path) is None
    assert not decide(take_marker(tmp_path), BROKER).keep


def test_resume_offsets_per_changelog() -> None:
    assert resume_offsets(CLEAN, "w-dedup-changelog") == {0: 41}
    assert resume_offsets(CLEAN, "w-customers-changelog") == {3: 7}
    assert resume_offsets(CLEAN, "other") == {}
