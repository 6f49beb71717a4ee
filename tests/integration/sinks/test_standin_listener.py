"""The HubSpot and Zendesk stand-ins bind loopback unless ``--host`` says otherwise."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from paystream.runtime.broker import free_port


def _accepts(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0


@pytest.mark.parametrize("module", ["devstack.hubspot", "devstack.zendesk"])
@pytest.mark.parametrize(
    ("args", "bound", "other"),
    [([], "127.0.0.1", "127.0.0.2"), (["--host", "127.0.0.2"], "127.0.0.2", "127.0.0.1")],
)
def test_a_standin_binds_its_host_setting(
    module: str, args: list[str], bound: str, other: str
) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--port", str(port), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while not _accepts(bound, port):
            assert process.poll() is None, process.stderr.read() if process.stderr else b""
            assert time.monotonic() < deadline, "stand-in did not start"
            time.sleep(0.1)
        assert not _accepts(other, port)
    finally:
        process.terminate()
        process.wait(10)
