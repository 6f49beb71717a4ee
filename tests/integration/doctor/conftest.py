"""Fixtures of the doctor tests: the three stand-ins (one of each per module, reset for
every test), doctor's environment pointed at them and the test's topics, and two ways to
run it: the command itself (``paystream doctor --json``: exit code and JSON) and one check
group in-process, with the same settings (fast, for the tables of broken setups)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devstack.hubspot import HubSpotStandin
from devstack.stripe_api import DEFAULT_KEY, StripeApiStandin
from devstack.zendesk import ZendeskStandin
from paystream.commands.doctor.checks import Finding
from paystream.commands.doctor.shell import DoctorSettings
from paystream.settings import CommonSettings
from paystream.vocabulary import HANDLED_STRIPE_EVENT_TYPES

PAYSTREAM = str(Path(sys.executable).parent / "paystream")
PUBLIC_URL = "https://hooks.example.com"
WEBHOOK_URL = PUBLIC_URL + "/webhooks/stripe"
API_TOKEN = "doctor-test-api-token"


@dataclass
class Standins:
    stripe: StripeApiStandin
    hubspot: HubSpotStandin
    zendesk: ZendeskStandin

    def healthy(self) -> None:
        """Every stand-in as a working setup has it: one enabled endpoint at the public URL
        with every handled type, a token with the sink's scopes and properties, an agent."""
        for standin in (self.stripe, self.hubspot, self.zendesk):
            standin.reset()
        self.stripe.add_webhook_endpoint(WEBHOOK_URL, HANDLED_STRIPE_EVENT_TYPES)
        self.hubspot.token_expired = False
        self.zendesk.role, self.zendesk.active, self.zendesk.suspended = "agent", True, False

    def env(self) -> dict[str, str]:
        return {
            "STRIPE_API_KEY": DEFAULT_KEY,
            "STRIPE_API_BASE": self.stripe.url,
            "PAYSTREAM_PUBLIC_URL": PUBLIC_URL,
            "HUBSPOT_API_BASE": self.hubspot.url,
            "HUBSPOT_ACCESS_TOKEN": self.hubspot.token,
            "ZENDESK_API_BASE": self.zendesk.url,
            "ZENDESK_EMAIL": self.zendesk.email,
            "ZENDESK_API_TOKEN": self.zendesk.token,
        }


@pytest.fixture(scope="module")
def module_standins() -> Iterator[Standins]:
    with StripeApiStandin() as stripe, HubSpotStandin() as hubspot, ZendeskStandin() as zendesk:
        yield Standins(stripe, hubspot, zendesk)


@pytest.fixture
def standins(module_standins: Standins) -> Standins:
    module_standins.healthy()
    return module_standins


@pytest.fixture
def doctor_env(
    standins: Standins,
    pipeline_settings: CommonSettings,
    broker_env: Callable[..., dict[str, str]],
    tmp_path: Path,
) -> Callable[..., dict[str, str]]:
    """``doctor_env(**overrides)``: doctor's environment (an override of "" unsets)."""

    def make(**overrides: str) -> dict[str, str]:
        env = broker_env(
            pipeline_settings.topic_prefix,
            PAYSTREAM_DATA_DIR=str(tmp_path / "doctor"),
            **standins.env(),
        )
        env.update(overrides)
        return {k: v for k, v in env.items() if v != ""}

    return make


@dataclass
class Report:
    code: int
    ok: bool
    findings: list[Finding]
    out: str

    def __getitem__(self, check: str) -> Finding:
        found = [f for f in self.findings if f.check == check]
        assert len(found) == 1, (check, self.out)
        return found[0]

    @property
    def problems(self) -> set[str]:
        return {f.check for f in self.findings if not f.ok}


def as_report(code: int, out: str) -> Report:
    data = json.loads(out)
    findings = [Finding(**{**f, "details": tuple(f["details"])}) for f in data["findings"]]
    return Report(code, bool(data["ok"]), findings, out)


RunDoctor = Callable[..., Report]


@pytest.fixture
def run_doctor(doctor_env: Callable[..., dict[str, str]]) -> RunDoctor:
    """``paystream doctor --json`` with ``doctor_env(**overrides)``: its exit and findings."""

    def run(**overrides: str) -> Report:
        done = subprocess.run(
            [PAYSTREAM, "doctor", "--json"],
            env=doctor_env(**overrides),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.stdout.startswith("{"), (done.returncode, done.stdout, done.stderr[-3000:])
        return as_report(done.returncode, done.stdout)

    return run


Group = Callable[..., dict[str, Finding]]


@pytest.fixture
def group(
    doctor_env: Callable[..., dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> Callable[[Callable[[DoctorSettings], list[Finding]]], Group]:
    """``group(shell.hubspot_findings)(**overrides)``: that check group's findings by check,
    run in this process with the settings doctor would read from ``doctor_env``."""

    def bind(check_group: Callable[[DoctorSettings], list[Finding]]) -> Group:
        def run(**overrides: str) -> dict[str, Finding]:
            env = doctor_env(**overrides)
            for name in list(env) + [k.upper() for k in DoctorSettings.model_fields]:
                monkeypatch.delenv(name, raising=False)
            for name, value in env.items():
                monkeypatch.setenv(name, value)
            findings = check_group(DoctorSettings())  # type: ignore[call-arg]
            return {f.check: f for f in findings}

        return run

    return bind


def detail_lines(finding: Finding) -> dict[str, str]:
    """``evt_... <type> <age> ago: <outcome>`` lines of stripe.recent_events by event id."""
    lines: dict[str, str] = {}
    for line in finding.details:
        event_id, rest = line.split(" ", 1)
        lines[event_id] = rest.rsplit(": ", 1)[1]
    return lines
