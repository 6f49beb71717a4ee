"""``paystream/`` is the shared layer below the stages: nothing in it imports a stage, and no
stage imports one of its commands; and no part of the product imports the stand-ins
(``devstack/``, in the source checkout only: ``up`` runs them as modules). Read from the source
(``ast``), so a lazy import inside a function counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
STAGES = ("ingest", "processors", "sinks", "admin")
#: the commands (no stage may import them)
COMMANDS = (
    "paystream.commands",
    "paystream.storyline",
    "paystream.cli",
    "paystream.__main__",
)


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def _sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


SHARED = _sources("paystream")
STAGE_SOURCES = [p for stage in STAGES for p in _sources(stage)]
PRODUCT = SHARED + STAGE_SOURCES + _sources("schemas")
#: the local stand-ins: not in the wheel or the image, so nothing of the product imports them
STANDINS = ("devstack",)


@pytest.mark.parametrize("path", SHARED, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_shared_layer_imports_no_stage(path: Path) -> None:
    upward = sorted(name for name in _imports(path) if _within(name, STAGES))
    assert upward == [], f"{_module(path)} imports {upward}"


@pytest.mark.parametrize("path", STAGE_SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_stage_imports_a_command(path: Path) -> None:
    commands = sorted(name for name in _imports(path) if _within(name, COMMANDS))
    assert commands == [], f"{_module(path)} imports {commands}"


@pytest.mark.parametrize("path", PRODUCT, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_product_imports_no_stand_in(path: Path) -> None:
    standins = sorted(name for name in _imports(path) if _within(name, STANDINS))
    assert standins == [], f"{_module(path)} imports {standins}"


def test_the_check_sees_an_upward_import() -> None:
    assert _within("admin.kafka", STAGES)
    assert not _within("administration", STAGES)
    assert _within("devstack.hubspot", STANDINS) and not _within("paystream", STANDINS)
    assert (ROOT / "devstack" / "hubspot.py").is_file()
    assert _module(ROOT / "paystream" / "commands" / "__init__.py") == "paystream.commands"
