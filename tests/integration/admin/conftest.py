"""Fixtures of the admin tests: admin processes on free ports, a logged-in HTTP client."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

import pytest

from devstack.commands import crm_command
from paystream.runtime.broker import free_port
from paystream.settings import CommonSettings
from schemas.codec import CRM_COMMAND, DEAD_LETTER, SINK_RESULT, default_codec
from tests.kafka_helpers import produce

PAYSTREAM = str(Path(sys.executable).parent / "paystream")
ADMIN_TOKEN = "admin-token-for-tests-0123456789"


def dead_letter_record(
    settings: CommonSettings,
    customer: str,
    *,
    failed_at_ms: int,
    reason: str = "bad_request",
    attempts: int = 1,
    error: str = "HubSpot said 400: Property values were not valid",
    command: dict[str, Any] | None = None,
) -> dict[str, Any]:
    command = command or crm_command(customer, "active", 1_700_000_000)
    codec = default_codec()
    return {
        "sink": "crm",
        "idempotency_key": command["idempotency_key"],
        "reason_code": reason,
        "last_error": error,
        "attempts": attempts,
        "failed_at_ms": failed_at_ms,
        "customer_id": customer,
        "cause_event_id": command["cause_event_id"],
        "correlation_id": command["correlation_id"],
        "source_topic": settings.topics.sink_crm,
        "command": codec.encode(CRM_COMMAND, command),
    }


def publish_dead_letters(settings: CommonSettings, records: list[dict[str, Any]]) -> None:
    codec = default_codec()
    produce(
        settings,
        settings.topics.sink_dlq,
        [(r["idempotency_key"], codec.encode(DEAD_LETTER, r)) for r in records],
    )


def publish_results(settings: CommonSettings, records: list[dict[str, Any]]) -> None:
    codec = default_codec()
    produce(
        settings,
        settings.topics.sink_results,
        [(r["idempotency_key"], codec.encode(SINK_RESULT, r)) for r in records],
    )


class AdminClient:
    """A browser-like HTTP client of one admin process: cookies, forms, no redirects."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = CookieJar()

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: Any, **kwargs: Any) -> None:
                return None

        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), NoRedirect()
        )

    def request(
        self, path: str, form: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], str]:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(self.base + path, data=data)  # noqa: S310 - our admin
        try:
            with self.opener.open(req, timeout=15) as resp:
                return resp.status, dict(resp.headers.items()), resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers.items()), exc.read().decode()

    def csrf(self, html: str) -> str:
        found = re.search(r'name="csrf_token" value="([^"]+)"', html)
        assert found, "no CSRF token in the page"
        return found.group(1)

    def login(self, token: str = ADMIN_TOKEN) -> tuple[int, dict[str, str], str]:
        _, _, html = self.request("/login")
        return self.request("/login", {"csrf_token": self.csrf(html), "token": token})

    def page(self, query: str = "") -> str:
        status, _, html = self.request("/" + query)
        assert status == 200, status
        return html

    def row_ids(self, query: str = "") -> list[str]:
        return re.findall(r'data-row-id="([^"]+)"', self.page(query))

    def open_gauge(self) -> float:
        _, _, text = self.request("/metrics")
        found = re.search(r"^paystream_exceptions_open (\S+)$", text, re.M)
        assert found
        return float(found.group(1))

    def interventions(self, action: str) -> float:
        _, _, text = self.request("/metrics")
        found = re.search(
            rf'^paystream_manual_interventions_total{{action="{action}"}} (\S+)$', text, re.M
        )
        return float(found.group(1)) if found else 0.0


class AdminProcess:
    """``paystream admin`` as a subprocess on a free port."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.env = {**env, "PAYSTREAM_ADMIN_PORT": str(self.port)}
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> AdminProcess:
        out = open(self.log, "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen([PAYSTREAM, "admin"], env=self.env, stdout=out, stderr=out)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=2) as resp:  # noqa: S310
                    if resp.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise AssertionError("admin not ready:\n" + self.log.read_text())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def admin_factory(
    tmp_path: Path, broker_env: Callable[..., dict[str, str]]
) -> Iterator[Callable[..., AdminProcess]]:
    started: list[AdminProcess] = []

    def make(settings: CommonSettings, **extra: str) -> AdminProcess:
        env = broker_env(settings.topic_prefix, PAYSTREAM_ADMIN_TOKEN=ADMIN_TOKEN, **extra)
        admin = AdminProcess(env, tmp_path / f"admin{len(started)}.log")
        started.append(admin)
        return admin.start()

    yield make
    for admin in started:
        admin.stop()


def wait_for(condition: Callable[[], Any], timeout: float = 30.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what or condition}")
