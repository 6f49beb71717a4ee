"""The sinks' health answers (sinks/health.py): which path gives which status, and readiness."""

from __future__ import annotations

import threading

import pytest

from sinks.health import SinkHealth, answer


@pytest.mark.parametrize(
    ("path", "ready", "status", "body"),
    [
        ("/healthz", True, 200, b"ok\n"),
        ("/healthz", False, 200, b"ok\n"),  # liveness: the process answers at all
        ("/readyz", True, 200, b"ready\n"),
        ("/readyz", False, 503, b"not ready\n"),
        ("/readyz?verbose=1", True, 200, b"ready\n"),
        ("/metrics", False, 200, b"M"),
        ("/", True, 404, b"not found\n"),
        ("/readyzz", True, 404, b"not found\n"),
    ],
)
def test_answers(path: str, ready: bool, status: int, body: bytes) -> None:
    got_status, _, got_body = answer(path, ready, lambda: b"M")
    assert (got_status, got_body) == (status, body)


def test_ready_only_while_every_thread_runs_and_no_stop() -> None:
    health = SinkHealth()
    assert not health.ready()  # nothing watched yet
    release = threading.Event()
    stop = threading.Event()
    threads = [threading.Thread(target=release.wait) for _ in range(2)]
    for t in threads:
        t.start()
    health.watch(threads, stop)
    assert health.ready()
    stop.set()
    assert not health.ready()
    stop.clear()
    release.set()
    for t in threads:
        t.join()
    assert not health.ready()  # the threads ended
