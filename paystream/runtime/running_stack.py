"""What a running ``paystream up`` tells the commands beside it (``demo``, ``status``, ...).

``up`` writes ``<PAYSTREAM_DATA_DIR>/stack.json`` (owner-readable only: it holds the webhook
secret) once its children are started, and removes it when it stops. The file holds the
settings ``up`` chose for them (secret, ports, broker address, topic prefix) under their
environment variable names. A command run beside it takes those as defaults: a variable set
in its own environment (or ``.env``) still wins. A file whose ``up`` is gone (killed before
it could remove it) is stale and ignored.

Two ways in: ``load_beside_running_stack(cls)`` for a command that loads its own settings
model, and ``environment_beside`` for the ``paystream`` command itself, which adds the
running stack's settings to its environment before it runs a tool (``reconcile``,
``topics``, ``crm-setup``, ``doctor``, ...), so every tool finds the stack however it
reads its settings.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from paystream.settings import CommonSettings, load_settings

FILE_NAME = "stack.json"

S = TypeVar("S", bound=CommonSettings)


@dataclass(frozen=True)
class RunningStack:
    pid: int
    #: settings by lower-case environment variable name, as ``up`` passed them to its children
    settings: dict[str, Any]
    urls: dict[str, str]


def stack_file(data_dir: Path) -> Path:
    return data_dir / FILE_NAME


def write_running_stack(data_dir: Path, settings: dict[str, Any], urls: dict[str, str]) -> Path:
    """Write the file for this process (0600 from creation on, replaced atomically)."""
    path = stack_file(data_dir)
    tmp = path.with_name(f".{FILE_NAME}.{os.getpid()}")
    data = {"pid": os.getpid(), "started_at": int(time.time()), "settings": settings, "urls": urls}
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(data, out, indent=2)
    tmp.replace(path)
    return path


def remove_running_stack(data_dir: Path) -> None:
    """Remove the file when this process wrote it (a newer ``up`` may have replaced it)."""
    found = _load(stack_file(data_dir))
    if found is not None and found.pid == os.getpid():
        stack_file(data_dir).unlink(missing_ok=True)


def read_running_stack(data_dir: Path) -> RunningStack | None:
    """The running stack's file; None when absent, unreadable or stale (its ``up`` is gone)."""
    found = _load(stack_file(data_dir))
    return found if found is not None and _alive(found.pid) else None


def load_beside_running_stack(cls: type[S], **overrides: Any) -> S:
    """``load_settings(cls, **overrides)``, with what a running ``up`` wrote for every
    variable not set."""
    settings = load_settings(cls, **overrides)
    found = read_running_stack(Path(settings.paystream_data_dir))
    if found is None:
        return settings
    fill = {
        name: value
        for name, value in found.settings.items()
        if name in cls.model_fields and name not in settings.model_fields_set
    }
    return load_settings(cls, **overrides, **fill) if fill else settings


def fill_from_stack(stack: dict[str, Any], taken: Collection[str]) -> dict[str, str]:
    """The stack's settings as environment variables, but none of the ``taken`` names.

    Pure. ``taken`` are the variables set in the environment or ``.env`` (any case): they
    win, as in ``load_beside_running_stack``.
    """
    have = {name.upper() for name in taken}
    return {
        name.upper(): str(value)
        for name, value in stack.items()
        if value is not None and name.upper() not in have
    }


def environment_beside(data_dir: Path, taken: Collection[str]) -> dict[str, str]:
    """What to add to the environment of a command run beside a running ``up`` (or nothing)."""
    found = read_running_stack(data_dir)
    return {} if found is None else fill_from_stack(found.settings, taken)


def _load(path: Path) -> RunningStack | None:
    try:
        data = json.loads(path.read_text())
        return RunningStack(int(data["pid"]), dict(data["settings"]), dict(data["urls"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # somebody else's process: alive
        return True
    return True
