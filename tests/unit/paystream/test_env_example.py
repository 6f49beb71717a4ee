"""``.env.example`` names every variable of the settings reference, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _reference() -> set[str]:
    rows = [
        line.split("|")[1]
        for line in (ROOT / "docs" / "settings.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("| `")
    ]
    return {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row)}


def _example() -> set[str]:
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    return set(re.findall(r"^#?([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))


def test_env_example_lists_every_setting_of_the_reference() -> None:
    reference = _reference()
    assert len(reference) > 40  # the table was read, not an empty set
    assert sorted(reference - _example()) == []
    assert sorted(_example() - reference) == []
