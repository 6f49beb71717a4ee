"""Settings read from a clean environment, and the one-line refusal of a bad one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from paystream.errors import SettingsError
from paystream.settings import CommonSettings, load_settings

#: the prefixes of every variable a paystream settings model reads
PREFIXES = ("STRIPE_", "PAYSTREAM_", "KAFKA_")


def clean_environment(monkeypatch: pytest.MonkeyPatch, directory: Path) -> None:
    """Forget the caller's paystream variables and work where no ``.env`` file lies.

    ``PAYSTREAM_ENV`` (required) is then ``development``, the tests' own environment; a test
    of the rule itself deletes it.
    """
    for name in [n for n in os.environ if n.startswith(PREFIXES)]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PAYSTREAM_ENV", "development")
    monkeypatch.chdir(directory)


def refusal(
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    model: type[BaseSettings] = CommonSettings,
) -> str:
    """Set ``env``, load ``model``: the one-line message of the ``SettingsError`` it raises."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError) as info:
        load_settings(model)
    message = str(info.value)
    assert "\n" not in message, message
    return message
