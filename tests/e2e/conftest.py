"""Fixtures that run paystream's own processes (``python -m paystream ...``) for e2e tests."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest


class Service:
    """One paystream process with its output in a log file."""

    def __init__(
        self,
        name: str,
        args: list[str],
        env: dict[str, str],
        log: Path,
        module: str = "paystream",
    ) -> None:
        self.name = name
        self.log = log
        self._out = open(log, "ab")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def alive(self) -> bool:
        return self.process.poll() is None

    def send(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)

    def finish(self, timeout: float = 20.0) -> int:
        """Wait for the process to exit (SIGKILL after ``timeout``), close its log."""
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._out.close()
        return self.process.returncode

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        self.send(sig)
        return self.finish(timeout)


def stop_all(services: Sequence[Service], timeout: float = 20.0) -> None:
    """SIGTERM to every service at once, then wait for each: shutdowns overlap, so tearing
    down a stack takes its slowest shutdown, not their sum."""
    for service in services:
        service.send()
    deadline = time.monotonic() + timeout
    for service in services:
        service.finish(max(0.1, deadline - time.monotonic()))


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    """Start paystream processes; all are stopped at the end of the test."""
    started: list[Service] = []

    def start(name: str, args: list[str], env: dict[str, str]) -> Service:
        service = Service(name, args, env, tmp_path / f"{name}.log")
        started.append(service)
        return service

    yield start
    stop_all(list(reversed(started)))


def wait_until(
    condition: Callable[[], object],
    timeout: float,
    what: str,
    services: Sequence[Service] = (),
) -> object:
    """Poll ``condition`` until it returns something truthy; fail with the services' logs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        for service in services:
            if not service.alive():
                pytest.fail(f"{service.name} exited while waiting for {what}:\n{service.tail()}")
        time.sleep(0.2)
    logs = "\n".join(f"--- {s.name}\n{s.tail()}" for s in services)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{logs}")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 (loopback)
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def data_dir(tmp_path: Path) -> str:
    path = tmp_path / "data"
    path.mkdir(exist_ok=True)
    return str(path)
