"""The file a running ``paystream up`` leaves for ``demo`` and ``status`` (files, no broker)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.settings import ReconcileSettings
from paystream.commands.crm_repair.shell import CrmRepairSettings
from paystream.commands.demo import DemoSettings
from paystream.commands.doctor.shell import DoctorSettings
from paystream.commands.up import UpSettings, api_token, stack_settings
from paystream.runtime.broker import free_port
from paystream.runtime.running_stack import (
    load_beside_running_stack,
    read_running_stack,
    remove_running_stack,
    stack_file,
    write_running_stack,
)
from tests.unit.paystream.test_up_banner import started

SETTINGS = {"stripe_webhook_secrets": "whsec_fromup", "paystream_ingest_port": 18080}


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith(("STRIPE_", "PAYSTREAM_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    monkeypatch.setenv("PAYSTREAM_DATA_DIR", str(tmp_path / "var"))
    (tmp_path / "var").mkdir()
    return tmp_path / "var"


def test_written_for_the_owner_only_and_read_back(data_dir: Path) -> None:
    path = write_running_stack(data_dir, SETTINGS, {"webhook": "http://127.0.0.1:18080/x"})
    assert path == stack_file(data_dir)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    found = read_running_stack(data_dir)
    assert found is not None
    assert found.pid == os.getpid() and found.settings == SETTINGS
    assert [p.name for p in data_dir.iterdir()] == ["stack.json"]  # no temporary file left


def test_unset_settings_come_from_the_running_stack_but_the_environment_wins(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_beside_running_stack(DemoSettings).stripe_webhook_secrets is None
    write_running_stack(data_dir, SETTINGS, {})
    settings = load_beside_running_stack(DemoSettings)
    assert settings.stripe_webhook_secrets is not None
    assert settings.stripe_webhook_secrets.get_secret_value() == "whsec_fromup"
    assert settings.paystream_ingest_port == 18080
    monkeypatch.setenv("PAYSTREAM_INGEST_PORT", "19090")
    assert load_beside_running_stack(DemoSettings).paystream_ingest_port == 19090


def test_a_file_whose_up_is_gone_is_stale(data_dir: Path) -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    write_running_stack(data_dir, SETTINGS, {})
    data = json.loads(stack_file(data_dir).read_text())
    stack_file(data_dir).write_text(json.dumps(dict(data, pid=int(gone.stdout))))
    assert read_running_stack(data_dir) is None
    assert load_beside_running_stack(DemoSettings).stripe_webhook_secrets is None


def test_removed_only_by_the_up_that_wrote_it(data_dir: Path) -> None:
    write_running_stack(data_dir, SETTINGS, {})
    data = json.loads(stack_file(data_dir).read_text())
    stack_file(data_dir).write_text(json.dumps(dict(data, pid=os.getppid())))  # a newer up
    remove_running_stack(data_dir)
    assert stack_file(data_dir).exists()
    write_running_stack(data_dir, SETTINGS, {})
    remove_running_stack(data_dir)
    assert not stack_file(data_dir).exists()


@pytest.mark.parametrize("content", ["", "{", "[]", '{"pid": "x"}', '{"pid": 1}'])
def test_an_unreadable_file_is_no_running_stack(data_dir: Path, content: str) -> None:
    stack_file(data_dir).write_text(content)
    assert read_running_stack(data_dir) is None


def test_the_commands_beside_up_get_the_worker_api_token_it_made(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``up`` (development) makes the worker's API token; crm-repair, doctor and reconcile
    beside it find it in the stack file, and ``paystream crm-repair`` goes on to the worker
    instead of asking for PAYSTREAM_API_TOKEN. A token set in the environment still wins."""
    monkeypatch.setenv("PAYSTREAM_ENV", "development")
    monkeypatch.setenv("STRIPE_API_KEY", "rk_test_" + "r" * 24)  # reconcile's, not up's
    up = UpSettings()
    token = api_token(up)
    assert token is not None
    ports = {"ingest": free_port(), "admin": free_port(), "worker": free_port()}  # none listens
    write_running_stack(data_dir, stack_settings(up, started(api_token=token, ports=ports)), {})
    for model in (CrmRepairSettings, DoctorSettings, ReconcileSettings):
        found = load_beside_running_stack(model).paystream_api_token
        assert found is not None and found.get_secret_value() == token, model.__name__

    env = dict(os.environ)  # PAYSTREAM_ENV as .env.example sets it; nothing of the worker
    beside = subprocess.run(
        [sys.executable, "-m", "paystream", "crm-repair"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert beside.returncode == 1
    assert "the worker did not answer" in beside.stdout, beside.stdout + beside.stderr
    assert token not in beside.stdout + beside.stderr

    monkeypatch.setenv("PAYSTREAM_API_TOKEN", "mine-" + "x" * 40)
    mine = load_beside_running_stack(CrmRepairSettings).paystream_api_token
    assert mine is not None and mine.get_secret_value() == "mine-" + "x" * 40


def test_a_command_beside_up_runs_in_ups_environment_without_paystream_env(
    data_dir: Path,
) -> None:
    """``reconcile`` typed as printed beside a running ``up`` (no PAYSTREAM_ENV anywhere)
    takes up's environment from the stack file instead of stopping at PAYSTREAM_ENV; with
    the stack gone it stops again, naming the variable."""
    up = UpSettings()
    ports = {"ingest": free_port(), "admin": free_port(), "worker": free_port()}
    write_running_stack(data_dir, stack_settings(up, started(ports=ports)), {})
    env = {k: v for k, v in os.environ.items() if k != "PAYSTREAM_ENV"}

    def reconcile() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "paystream", "reconcile", "--since", "1h", "--dry-run"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    beside = reconcile()
    assert "PAYSTREAM_ENV" not in beside.stdout + beside.stderr, beside.stdout + beside.stderr
    assert "STRIPE_API_KEY" in beside.stdout + beside.stderr  # the next thing it needs

    remove_running_stack(data_dir)
    alone = reconcile()
    assert alone.returncode == 2
    assert "PAYSTREAM_ENV" in alone.stdout + alone.stderr
