"""Bad setups of several processes on one host stop with one line that names the cause:
a listener's port already taken (the port and its setting), and a second owner of one
embedded metrics store. Each command runs as a process, as an operator starts it; nothing
reaches a broker (the checks come first)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from paystream.runtime.store import claim_embedded_store

BASE = {
    "PAYSTREAM_ENV": "development",
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",  # never reached: the checks come first
    "STRIPE_WEBHOOK_SECRETS": "whsec_test",
    "PAYSTREAM_ADMIN_TOKEN": "a-token-of-at-least-sixteen-characters",
}


def run(command: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PAYSTREAM_", "KAFKA_"))}
    return subprocess.run(
        [sys.executable, "-m", "paystream", *command],
        env={**clean, **BASE, "PAYSTREAM_DATA_DIR": str(tmp_path), **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.mark.parametrize(
    ("command", "variable"),
    [
        (["ingest"], "PAYSTREAM_INGEST_PORT"),
        (["admin"], "PAYSTREAM_ADMIN_PORT"),
        (["worker"], "PAYSTREAM_WORKER_PORT"),
        (["sinks", "crm"], "PAYSTREAM_SINKS_METRICS_PORT"),
    ],
)
def test_a_port_in_use_is_named_with_its_setting(
    command: list[str], variable: str, taken_port: int, tmp_path: Path
) -> None:
    done = run(command, tmp_path, **{variable: str(taken_port)})
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert variable in lines[0] and f"port {taken_port}" in lines[0], lines[0]
    assert "Traceback" not in done.stderr


def test_a_second_owner_of_the_embedded_store_is_refused(tmp_path: Path) -> None:
    owner = claim_embedded_store(tmp_path / "clickhouse")  # this process owns it now
    try:
        done = run(["sinks", "metrics"], tmp_path, PAYSTREAM_SINKS_METRICS_PORT="0")
    finally:
        owner.close()
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "PAYSTREAM_DATA_DIR" in lines[0] and str(os.getpid()) in lines[0], lines[0]
    assert "CLICKHOUSE_URL" in lines[0]
