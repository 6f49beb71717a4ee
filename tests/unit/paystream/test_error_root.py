"""One exception root: every package's errors descend from ``PaystreamError``, so the command
line prints any of them as one line (exit 2) instead of 'unexpected error'."""

from __future__ import annotations

import ast
import builtins
from pathlib import Path

import pytest

from admin.errors import AdminError
from ingest.errors import IngestError, InvalidSignature, ListingFailed, ReconcileRefused
from paystream import cli
from paystream.errors import PaystreamError
from processors.errors import BatchFailed, FaustInternalsMoved, ProcessorError
from schemas.codec import SchemaError, UnknownSchemaError
from sinks.errors import SinkError

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("paystream", "ingest", "processors", "sinks", "schemas", "admin")
#: exceptions that are signals inside one function's loop, never errors a caller sees
SIGNALS = {"sinks/runner.py": {"BatchAbandoned"}}
#: the exceptions still outside the root, named so that no other joins them
KNOWN_OUTSIDE: list[str] = []
BUILTIN_EXCEPTIONS = {
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException)
}


def _classes() -> dict[tuple[str, str], list[str]]:
    """Every class of the product, by (file, name), with its bases' last names."""
    found: dict[tuple[str, str], list[str]] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef):
                    bases = [ast.unparse(b).rsplit(".", 1)[-1] for b in node.bases]
                    found[(str(path.relative_to(ROOT)), node.name)] = bases
    return found


def _reaches(name: str, target: set[str], bases: dict[str, set[str]], seen: set[str]) -> bool:
    if name in target:
        return True
    seen.add(name)
    return any(_reaches(b, target, bases, seen) for b in bases.get(name, set()) - seen)


def exceptions_outside_the_root(classes: dict[tuple[str, str], list[str]]) -> list[str]:
    """The exception classes (by file:name) whose ancestry never meets ``PaystreamError``."""
    bases: dict[str, set[str]] = {}
    for (_, name), own in classes.items():
        bases.setdefault(name, set()).update(own)
    outside = []
    for (path, name), _ in sorted(classes.items()):
        if name == "PaystreamError" or name in SIGNALS.get(path, set()):
            continue
        is_exception = _reaches(name, BUILTIN_EXCEPTIONS, bases, set())
        if is_exception and not _reaches(name, {"PaystreamError"}, bases, set()):
            outside.append(f"{path}:{name}")
    return outside


def test_every_exception_class_of_the_product_descends_from_paystream_error() -> None:
    assert exceptions_outside_the_root(_classes()) == sorted(KNOWN_OUTSIDE)


def test_the_walk_sees_an_exception_outside_the_root() -> None:
    classes = {
        ("x.py", "PaystreamError"): ["Exception"],
        ("x.py", "Good"): ["PaystreamError"],
        ("x.py", "Bad"): ["ValueError"],
        ("x.py", "WorseChild"): ["Bad"],
        ("x.py", "NotAnError"): ["object"],
        ("sinks/runner.py", "BatchAbandoned"): ["Exception"],
    }
    assert exceptions_outside_the_root(classes) == ["x.py:Bad", "x.py:WorseChild"]


@pytest.mark.parametrize("root", [IngestError, ProcessorError, SinkError, AdminError, SchemaError])
def test_each_package_root_is_a_paystream_error(root: type[Exception]) -> None:
    assert issubclass(root, PaystreamError)


@pytest.mark.parametrize(
    "error",
    [
        InvalidSignature("no v1 signature"),
        ReconcileRefused("the window is longer than 30 days"),
        ListingFailed("the Events API answered 500"),
        BatchFailed("the batch was not published"),
        FaustInternalsMoved("faust.App.consumer"),
        UnknownSchemaError("unknown fingerprint"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_the_command_line_prints_any_package_s_error_as_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    error: Exception,
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env and no stack file of the developer's

    def boom(argv: list[str]) -> int:
        raise error

    monkeypatch.setattr(cli, "_resolve", lambda command: boom)
    assert cli.main(["status"]) == 2
    err = capsys.readouterr().err
    assert err == f"paystream status: {error}\n"
    assert "Traceback" not in err
