"""The ``paystream`` command line: its help, its version, one-line errors, every command's help."""

from __future__ import annotations

import importlib
import importlib.metadata
import re
from pathlib import Path

import pytest

from paystream import cli
from paystream.command_help import COMMANDS
from paystream.errors import PaystreamError

ROOT = Path(__file__).resolve().parents[3]
SETTINGS_PAGE = ROOT / "docs" / "settings.md"
#: reST and Sphinx markup that must not reach a terminal
MARKUP = re.compile(r"``|:class:|:func:|:meth:|\.\. ")


@pytest.fixture(autouse=True)
def no_running_stack(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env and no stack file of the developer's


def help_of(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 0
    return capsys.readouterr().out


def test_the_top_help_lists_every_command_with_its_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = "".join(help_of(["--help"], capsys).split())  # argparse wraps the lines
    for name, command in COMMANDS.items():
        assert "".join(f"{name} {command.summary}".split()) in out, name
    assert not MARKUP.search(out)


def test_version_is_the_installed_package_s(capsys: pytest.CaptureFixture[str]) -> None:
    out = help_of(["--version"], capsys)
    assert out == f"paystream {importlib.metadata.version('paystream')}\n"
    assert re.fullmatch(r"paystream \d+\.\d+\.\d+\S*\n", out)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_s_help_is_plain_text_with_its_variables_and_exit_codes(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    module = COMMANDS[name].module
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            pytest.skip(f"{module} is not in this tree yet")
        raise
    out = help_of([name, "--help"], capsys)
    assert out.startswith(f"usage: paystream {name}")
    assert not MARKUP.search(out), out
    variables = out.split("environment variables")[1].split("exit codes:")[0]
    for variable in COMMANDS[name].env:
        assert re.search(rf"^  {variable}$", variables, re.MULTILINE), (variable, out)
    codes = out.split("exit codes:")[1]
    assert [line.split()[0] for line in codes.strip().splitlines()] == ["0", "1", "2", "130"]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_variable_a_help_names_is_in_the_settings_reference(name: str) -> None:
    reference = SETTINGS_PAGE.read_text()
    missing = [v for v in COMMANDS[name].env if f"`{v}`" not in reference]
    assert missing == []


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


@pytest.mark.parametrize(
    ("error", "code", "line"),
    [
        (PaystreamError("the broker is not reachable"), 2, "the broker is not reachable"),
        (RuntimeError("secret-value"), 1, "unexpected error (RuntimeError)"),
        (KeyboardInterrupt(), 130, ""),
    ],
)
def test_what_a_command_raises_is_one_line_without_a_stack_trace(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    error: BaseException,
    code: int,
    line: str,
) -> None:
    def boom(argv: list[str]) -> int:
        raise error

    monkeypatch.setattr(cli, "_resolve", lambda command: boom)
    assert cli.main(["status"]) == code
    err = capsys.readouterr().err
    assert err == (f"paystream status: {line}\n" if line else "")
    assert "secret-value" not in err and "Traceback" not in err


@pytest.mark.parametrize("argv", [["frobnicate"], [], ["--frobnicate"]])
def test_an_unknown_or_missing_command_is_refused_with_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
