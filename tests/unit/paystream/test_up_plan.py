"""``paystream up``'s plan: what it starts, with which environment, and what it says, decided
from its settings, the environment and the ports and tokens found before anything starts."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from paystream.commands.up import Found, Plan, StandinsMissing, UpSettings, plan
from tests.unit.settings_env import clean_environment

FOUND = Found(
    ports={
        "broker": 19092,
        "ingest": 18080,
        "admin": 18081,
        "worker": 16066,
        "hubspot": 18091,
        "zendesk": 18092,
    },
    tokens={
        "webhook_secret": "whsec_made",
        "admin": "made-admin-token-" + "a" * 20,
        "api": "made-api-token-" + "b" * 30,
        "standin": "made-standin-token",
    },
    checkout=Path("/src/paystream"),
)
DATA = Path("/var/paystream")
PYTHON = "/venv/bin/python"
PRODUCTION = {
    "paystream_env": "production",
    "paystream_customer_hash_key": "k" * 40,
    "paystream_kafka_allow_plaintext": "yes",
}


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_environment(monkeypatch, tmp_path)


def planned(given: dict[str, Any], environ: dict[str, str] | None = None) -> Plan:
    return plan(UpSettings(**given), dict(environ or {"HOME": "/home/dev"}), DATA, FOUND, PYTHON)


def children(chosen: Plan) -> dict[str, dict[str, str]]:
    return {launch.name: launch.env for launch in chosen.launches}


@pytest.mark.parametrize(
    ("given", "names"),
    [
        ({}, ["ingest", "worker", "sinks", "admin"]),  # development: up makes the admin token
        ({"paystream_admin_token": "mine-" + "x" * 30}, ["ingest", "worker", "sinks", "admin"]),
        (PRODUCTION, ["ingest", "worker", "sinks"]),  # no token made: no admin
        (
            {"paystream_sink_writes": "enabled"},
            ["hubspot", "zendesk", "ingest", "worker", "sinks", "admin"],
        ),
        (
            {"paystream_sink_writes": "enabled", "hubspot_access_token": "pat-real"},
            ["zendesk", "ingest", "worker", "sinks", "admin"],
        ),
        (
            {"paystream_sink_writes": "enabled", "zendesk_api_token": "real"},
            ["hubspot", "ingest", "worker", "sinks", "admin"],
        ),
        (
            {
                "paystream_sink_writes": "enabled",
                "hubspot_access_token": "pat-real",
                "zendesk_api_token": "real",
            },
            ["ingest", "worker", "sinks", "admin"],
        ),
        ({"paystream_sink_writes": "dry-run"}, ["ingest", "worker", "sinks", "admin"]),
    ],
    ids=[
        "development",
        "admin token given",
        "production",
        "writes without credentials",
        "writes with HubSpot's",
        "writes with Zendesk's",
        "writes with both",
        "dry-run",
    ],
)
def test_what_it_starts_in_order(given: dict[str, Any], names: list[str]) -> None:
    chosen = planned(given)
    assert [launch.name for launch in chosen.launches] == names
    for launch in chosen.launches:
        if launch.name in ("ingest", "worker", "sinks", "admin"):
            assert launch.argv == [PYTHON, "-m", "paystream", launch.name]
        else:
            assert launch.argv[:2] == [PYTHON, "-m"] and launch.argv[2].endswith(launch.name)


@pytest.mark.parametrize(
    ("given", "broker_port", "bootstrap", "profile"),
    [
        ({}, 19092, "127.0.0.1:19092", "embedded"),
        ({"kafka_bootstrap_servers": "kafka-1:9092"}, None, "kafka-1:9092", None),
    ],
    ids=["embedded broker", "a cluster"],
)
def test_the_broker(
    given: dict[str, Any], broker_port: int | None, bootstrap: str, profile: str | None
) -> None:
    chosen = planned(given)
    assert chosen.broker_port == broker_port
    assert chosen.started.bootstrap == bootstrap
    assert chosen.started.embedded_broker is (broker_port is not None)
    assert chosen.stack_settings["kafka_bootstrap_servers"] == bootstrap
    for env in children(chosen).values():
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == bootstrap
        assert env.get("PAYSTREAM_BROKER_PROFILE") == profile
    # a cluster's admin client gets its whole config (TLS/SASL); the embedded one its address
    assert isinstance(chosen.topics_client, dict) is (broker_port is None)


@pytest.mark.parametrize(
    ("given", "secret", "set_by_up"),
    [
        ({}, "whsec_made", True),
        ({"stripe_webhook_secrets": "whsec_one,whsec_two"}, "whsec_one", False),
    ],
    ids=["made", "given (the first of several)"],
)
def test_the_webhook_secret(given: dict[str, Any], secret: str, set_by_up: bool) -> None:
    chosen = planned(given)
    assert chosen.started.secret == secret
    assert chosen.stack_settings["stripe_webhook_secrets"] == secret
    ingest = children(chosen)["ingest"]
    assert ("STRIPE_WEBHOOK_SECRETS" in ingest) is set_by_up
    if set_by_up:
        assert ingest["STRIPE_WEBHOOK_SECRETS"] == secret


@pytest.mark.parametrize(
    ("given", "admin", "generated", "api"),
    [
        ({}, FOUND.tokens["admin"], True, FOUND.tokens["api"]),
        (
            {"paystream_admin_token": "mine-" + "x" * 30, "paystream_api_token": "api-" + "y" * 40},
            "mine-" + "x" * 30,
            False,
            "api-" + "y" * 40,
        ),
        (PRODUCTION, None, False, None),
    ],
    ids=["development: made", "given", "production: none made"],
)
def test_the_tokens(
    given: dict[str, Any], admin: str | None, generated: bool, api: str | None
) -> None:
    chosen = planned(given)
    assert (chosen.started.admin_token, chosen.started.admin_token_generated) == (admin, generated)
    assert chosen.started.api_token == api
    worker = children(chosen)["worker"]
    assert worker.get("PAYSTREAM_ADMIN_TOKEN") == admin
    assert worker.get("PAYSTREAM_API_TOKEN") == api
    # ingest reads customers through to this worker when there is a token to do it with
    expected_url = None if api is None else "http://127.0.0.1:16066"
    assert children(chosen)["ingest"].get("PAYSTREAM_WORKER_URL") == expected_url
    assert chosen.stack_settings.get("paystream_api_token") == api


def test_ports_found_are_given_to_every_child_and_the_stack_file() -> None:
    chosen = planned({})
    assert chosen.started.ports == {"ingest": 18080, "admin": 18081, "worker": 16066}
    for env in children(chosen).values():
        assert (env["PAYSTREAM_INGEST_PORT"], env["PAYSTREAM_ADMIN_PORT"]) == ("18080", "18081")
        assert env["PAYSTREAM_WORKER_PORT"] == "16066"
        assert env["PAYSTREAM_DATA_DIR"] == str(DATA) and env["PAYSTREAM_ENV"] == "development"
        assert env["HOME"] == "/home/dev"  # the rest of up's environment is passed on
    assert chosen.urls["webhook"] == "http://127.0.0.1:18080/webhooks/stripe"
    assert chosen.stack_settings["paystream_ingest_port"] == 18080
    assert chosen.stack_settings["paystream_worker_url"] == "http://127.0.0.1:16066"


def test_a_worker_url_of_the_operators_own_is_kept() -> None:
    chosen = planned({}, {"PAYSTREAM_WORKER_URL": "http://worker.internal:6066"})
    assert children(chosen)["ingest"]["PAYSTREAM_WORKER_URL"] == "http://worker.internal:6066"


@pytest.mark.parametrize(
    ("given", "environ", "linger"),
    [
        ({}, {}, "20"),  # the embedded broker's profile: fewer, larger produce requests
        ({}, {"PAYSTREAM_INGEST_LINGER_MS": "1"}, "1"),  # the operator's own is kept
        ({"kafka_bootstrap_servers": "kafka-1:9092"}, {}, None),  # a cluster: ingest's default
    ],
    ids=["embedded broker", "set by the operator", "a cluster"],
)
def test_ingest_lingers_as_the_embedded_brokers_producers_do(
    given: dict[str, Any], environ: dict[str, str], linger: str | None
) -> None:
    chosen = planned(given, {"HOME": "/home/dev", **environ})
    assert children(chosen)["ingest"].get("PAYSTREAM_INGEST_LINGER_MS") == linger


def test_the_stand_ins_settings_point_the_sinks_at_them() -> None:
    chosen = planned({"paystream_sink_writes": "enabled"})
    sinks = children(chosen)["sinks"]
    assert sinks["HUBSPOT_API_BASE"] == "http://127.0.0.1:18091"
    assert sinks["ZENDESK_API_BASE"] == "http://127.0.0.1:18092"
    assert sinks["HUBSPOT_ACCESS_TOKEN"] == sinks["ZENDESK_API_TOKEN"] == "made-standin-token"
    hubspot = next(x for x in chosen.launches if x.name == "hubspot")
    assert hubspot.argv[3:] == ["--port", "18091", "--token", "made-standin-token"]
    assert "HUBSPOT_API_BASE" not in hubspot.env  # a stand-in is not pointed at itself
    assert chosen.stack_settings["hubspot_api_base"] == "http://127.0.0.1:18091"
    assert chosen.stack_settings["zendesk_email"] == sinks["ZENDESK_EMAIL"]
    assert chosen.started.standins == (
        " (HubSpot stand-in http://127.0.0.1:18091, Zendesk stand-in http://127.0.0.1:18092)"
    )


def test_without_stand_ins_nothing_of_theirs_is_set_or_said() -> None:
    chosen = planned({"paystream_sink_writes": "dry-run"})
    assert chosen.started.standins == "" and chosen.started.standin_settings == {}
    assert "HUBSPOT_API_BASE" not in children(chosen)["sinks"]
    assert not any(name.startswith(("hubspot_", "zendesk_")) for name in chosen.stack_settings)


@pytest.mark.parametrize("given", [{}, {"paystream_sink_writes": "enabled"}, PRODUCTION])
def test_the_plan_is_a_function_of_its_inputs(given: dict[str, Any]) -> None:
    environ = {"HOME": "/home/dev"}
    first = plan(UpSettings(**given), environ, DATA, FOUND, PYTHON)
    assert asdict(first) == asdict(plan(UpSettings(**given), environ, DATA, FOUND, PYTHON))
    assert environ == {"HOME": "/home/dev"}  # the environment given is not changed
    assert first.started.reset == [] and first.started.ready is False  # start's to say


def test_the_stand_ins_run_from_the_source_checkout() -> None:
    chosen = planned({"paystream_sink_writes": "enabled"}, {"PYTHONPATH": "/mine"})
    envs = children(chosen)
    assert envs["hubspot"]["PYTHONPATH"] == os.pathsep.join(["/src/paystream", "/mine"])
    assert envs["sinks"]["PYTHONPATH"] == "/mine"  # the pipeline runs from the install


NO_CHECKOUT = Found(FOUND.ports, FOUND.tokens, checkout=None)


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({"paystream_sink_writes": "enabled"}, "HUBSPOT_ACCESS_TOKEN and ZENDESK_API_TOKEN"),
        (
            {"paystream_sink_writes": "enabled", "zendesk_api_token": "real"},
            "HUBSPOT_ACCESS_TOKEN needs the local HubSpot stand-in,",
        ),
    ],
)
def test_without_the_checkout_a_needed_stand_in_stops_up_with_one_line(
    given: dict[str, Any], named: str
) -> None:
    with pytest.raises(StandinsMissing) as info:
        plan(UpSettings(**given), {}, DATA, NO_CHECKOUT, PYTHON)
    [line] = str(info.value).splitlines()
    assert named in line and "ship with the source checkout" in line


@pytest.mark.parametrize(
    "given",
    [
        {"paystream_sink_writes": "dry-run"},
        {
            "paystream_sink_writes": "enabled",
            "hubspot_access_token": "pat",
            "zendesk_api_token": "z",
        },
    ],
    ids=["dry-run", "the real services"],
)
def test_without_the_checkout_up_runs_when_no_stand_in_is_needed(given: dict[str, Any]) -> None:
    chosen = plan(UpSettings(**given), {}, DATA, NO_CHECKOUT, PYTHON)
    assert [x.name for x in chosen.launches] == ["ingest", "worker", "sinks", "admin"]
    assert "HUBSPOT_API_BASE" not in children(chosen)["sinks"]
