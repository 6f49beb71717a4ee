"""``make run`` installs what running needs, ``make test`` the rest (read from ``make -n -B``:
every recipe make would run with every target out of date, nothing executed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
TEST_TOOLS = ("apt-get", "npm ci", "chromium", "promtool")

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _recipes(target: str) -> str:
    done = subprocess.run(
        ["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return done.stdout


def test_make_run_installs_no_test_tool() -> None:
    recipes = _recipes("run")
    assert "paystream up" in recipes
    assert "requirements-dev.lock" in recipes  # the virtual environment is installed
    assert [tool for tool in TEST_TOOLS if tool in recipes] == []


def test_make_test_installs_the_test_tools() -> None:
    recipes = _recipes("test")
    assert [tool for tool in TEST_TOOLS if tool not in recipes] == []
