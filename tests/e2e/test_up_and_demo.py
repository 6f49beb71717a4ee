"""``paystream up`` brings the whole stack up, ``paystream demo`` gets 200s, Ctrl-C stops all."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from paystream.runtime.broker import free_port
from tests.e2e.conftest import Service, wait_until


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_up_then_demo_then_sigterm_stops_everything(
    services: Callable[..., Service], tmp_path: Path
) -> None:
    ports = {name: free_port() for name in ("BROKER", "INGEST", "ADMIN", "WORKER", "SINKS_METRICS")}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "PAYSTREAM_"))}
    env.update({f"PAYSTREAM_{name}_PORT": str(port) for name, port in ports.items()})
    env.update(PAYSTREAM_DATA_DIR=str(tmp_path / "var"), PAYSTREAM_TOPIC_PARTITIONS="2")
    up = services("up", ["up"], env)

    banner = wait_until(
        lambda: "Ctrl-C stops everything" in up.log.read_text() and up.log.read_text(),
        90,
        "paystream up to print its banner",
        [up],
    )
    assert isinstance(banner, str)
    secret = re.search(r"webhook secret\s+(whsec_\w+)", banner)
    assert secret, banner
    assert (
        f"stripe listen --forward-to http://127.0.0.1:{ports['INGEST']}/webhooks/stripe" in banner
    )
    if "KAFKA_BOOTSTRAP_SERVERS" not in os.environ:
        assert f"127.0.0.1:{ports['BROKER']} (embedded" in banner

    demo_env = dict(env, STRIPE_WEBHOOK_SECRETS=secret.group(1))
    demo = subprocess.run(
        [sys.executable, "-m", "paystream", "demo"],
        env=demo_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    answers = [line.split()[0] for line in demo.stdout.splitlines() if line[:3].isdigit()]
    assert len(answers) == 11
    assert set(answers) == {"200"}

    assert up.stop(signal.SIGTERM, timeout=40) == 0
    assert not port_open(ports["INGEST"])
    assert not port_open(ports["WORKER"])
    if "KAFKA_BOOTSTRAP_SERVERS" not in os.environ:
        assert not port_open(ports["BROKER"])
