"""What ``paystream up`` prints: commands that run as printed, the admin's sign-in line,
pure functions of what ``up`` chose."""

from __future__ import annotations

from pathlib import Path

import pytest

from paystream.commands.up import Started, UpSettings, admin_line, banner, command_prefix
from paystream.errors import SettingsError
from paystream.settings import load_settings

REPO = Path("/src/paystream")
INSTALLED = REPO / ".venv" / "bin" / "paystream"


@pytest.mark.parametrize(
    ("on_path", "cwd", "expected"),
    [
        (str(INSTALLED), REPO, "paystream"),  # the venv is active: the plain name runs it
        (None, REPO, ".venv/bin/paystream"),  # make run from the repository root
        ("/usr/local/bin/paystream", REPO, ".venv/bin/paystream"),  # another install on PATH
        (None, Path("/elsewhere"), str(INSTALLED)),  # outside the tree: the full path
    ],
)
def test_the_banner_spells_the_command_so_it_runs(
    on_path: str | None, cwd: Path, expected: str
) -> None:
    assert command_prefix(on_path, INSTALLED, cwd) == expected


@pytest.mark.parametrize(
    ("token", "generated", "development", "expected"),
    [
        (None, False, True, "http://127.0.0.1:8081/ (off: set PAYSTREAM_ADMIN_TOKEN)"),
        (
            "t0k",
            True,
            True,
            "http://127.0.0.1:8081/login?token=t0k (one-click sign-in, development only)",
        ),
        # a token of the operator's own is never printed, in development either
        ("t0k", False, True, "http://127.0.0.1:8081/ (sign in with PAYSTREAM_ADMIN_TOKEN)"),
        ("t0k", True, False, "http://127.0.0.1:8081/ (sign in with PAYSTREAM_ADMIN_TOKEN)"),
    ],
)
def test_the_admin_line(
    token: str | None, generated: bool, development: bool, expected: str
) -> None:
    assert admin_line(8081, token, generated, development) == expected


def started(**overrides: object) -> Started:
    fields: dict[str, object] = {
        "bootstrap": "127.0.0.1:9092",
        "embedded_broker": True,
        "data_dir": Path("var"),
        "reset": ["var/worker"],
        "prefix": "paystream.test.",
        "secret": "whsec_abc",
        "ports": {"ingest": 8080, "admin": 8081, "worker": 6066},
        "admin_token": "t0k",
        "admin_token_generated": True,
        "standins": "",
        "external_store": False,
        "sink_writes": "dry-run",
        "standin_settings": {},
        "ready": True,
        "stack_file": Path("var/stack.json"),
    }
    fields.update(overrides)
    return Started(**fields)  # type: ignore[arg-type]


def test_the_banner_prints_what_runs_beside_it() -> None:
    lines = banner(started(), ".venv/bin/paystream", development=True)
    text = "\n".join(lines)
    assert "  stripe listen --forward-to http://127.0.0.1:8080/webhooks/stripe" in lines
    assert "  .venv/bin/paystream demo" in lines and "  .venv/bin/paystream status" in lines
    assert "http://127.0.0.1:8080/metrics" in text
    assert "http://127.0.0.1:6066/customers/<cus_id>" in text
    assert "login?token=t0k" in text
    assert "whsec_abc" in text
    assert lines[0] == "paystream is up"
    assert banner(started(ready=False), "paystream", True)[0].endswith("(ingest not ready yet)")


@pytest.mark.parametrize(
    ("url", "line"),
    [
        (
            None,
            "  app notifications off "
            "(set PAYSTREAM_APP_WEBHOOK_URL and PAYSTREAM_APP_WEBHOOK_SECRET)",
        ),
        (
            "http://127.0.0.1:3000/api/paystream",
            "  app notifications http://127.0.0.1:3000/api/paystream (billing_state.changed, "
            "signed with PAYSTREAM_APP_WEBHOOK_SECRET)",
        ),
    ],
)
def test_the_banner_says_where_notifications_go(url: str | None, line: str) -> None:
    lines = banner(started(app_webhook_url=url), "paystream", development=True)
    assert line in lines
    assert not any("app-webhook-secret" in x for x in lines)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"PAYSTREAM_APP_WEBHOOK_URL": "http://127.0.0.1:3000/x"}, "PAYSTREAM_APP_WEBHOOK_SECRET"),
        (
            {
                "PAYSTREAM_ENV": "preview",
                "PAYSTREAM_APP_WEBHOOK_URL": "https://app.example.com/x",
                "PAYSTREAM_APP_WEBHOOK_SECRET": "app-webhook-secret",
            },
            "PAYSTREAM_APP_WEBHOOK_SECRET",
        ),
        (
            {"PAYSTREAM_APP_WEBHOOK_URL": "localhost:3000", "PAYSTREAM_APP_WEBHOOK_SECRET": "s"},
            "PAYSTREAM_APP_WEBHOOK_URL",
        ),
    ],
)
def test_up_refuses_a_bad_notification_setting_before_starting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str], variable: str
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=f"^invalid setting {variable}:"):
        load_settings(UpSettings)


def test_up_passes_a_complete_notification_setting_on(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PAYSTREAM_APP_WEBHOOK_URL", "http://127.0.0.1:3000/x")
    monkeypatch.setenv("PAYSTREAM_APP_WEBHOOK_SECRET", "app-webhook-secret")
    assert load_settings(UpSettings).paystream_app_webhook_url == "http://127.0.0.1:3000/x"
