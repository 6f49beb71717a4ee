"""Session-wide fixtures: one real Kafka-protocol broker per test session.

With ``KAFKA_BOOTSTRAP_SERVERS`` set, that cluster is used and nothing is started;
otherwise the embedded Tansu broker runs on a free port for the whole session. Every
test that touches Kafka gets its own topic prefix, so tests never see each other's data.

``make test`` runs the suite on two pytest-xdist workers (most slow tests wait on other
processes, not on a core); each worker is its own session with its own broker. A test
module is one unit of work, so its module fixtures (the fault drills' stack, the browser
tests' stack) are built once, on one worker; see ``pytest_xdist_make_scheduler``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from paystream.runtime.broker import EmbeddedBroker
from paystream.runtime.topics_admin import ensure_topics
from paystream.settings import CommonSettings

# Hypothesis' per-example deadline (200 ms) and its too-slow health check are timings: on a
# shared two-core machine running two workers they fail tests that are right, so they are off
# (what the properties assert is unchanged; max_examples stays as each test sets it).
hypothesis_settings.register_profile(
    "paystream", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("paystream")


def fuzz_settings(max_examples: int) -> hypothesis_settings:
    """Hypothesis settings of a fuzz test against a real app through function-scoped
    fixtures (one app for all examples, so that health check is off), no example database
    (each run explores afresh; a failure prints its example)."""
    return hypothesis_settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


#: PAYSTREAM_ENV is required by every process (paystream.settings); the tests are a
#: development environment unless a test says otherwise. In-process settings read it from
#: here; ``broker_env`` passes it to subprocesses (``tests.unit.settings_env`` keeps it).
TEST_ENVIRONMENT = {"PAYSTREAM_ENV": "development"}
for _name, _value in TEST_ENVIRONMENT.items():
    os.environ.setdefault(_name, _value)

#: Directories whose modules share session fixtures that write into the work tree (the
#: TypeScript client's ``dist/``): all their tests go to one worker.
ONE_WORKER_DIRECTORIES = ("tests/e2e/typescript/",)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Distribute whole modules (and the directories above), in collection order.

    xdist's ``loadscope`` splits by class and, by default, starts with the modules that
    have the most tests (the quick unit tables); here the unit is the file, and the order
    stays the collection's: the slow end-to-end modules start first, the unit tests fill in
    at the end.
    """
    from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]

    class ModuleScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return next((d for d in ONE_WORKER_DIRECTORIES if path.startswith(d)), path)

    config.option.loadscopereorder = False
    return ModuleScheduling(config, log)


#: Partitions of every test topic (``pipeline_settings`` and ``broker_env`` agree).
TEST_PARTITIONS = 2

#: What a live-mode test process needs to pass the environment rules (paystream.settings):
#: live only in production, which needs a hash key and accepts the tests' random prefixes
#: only with the explicit override.
LIVE_ENV = {
    "STRIPE_MODE": "live",
    "PAYSTREAM_ENV": "production",
    "PAYSTREAM_CUSTOMER_HASH_KEY": "tests-customer-hash-key-0123456789abcdef",
    "PAYSTREAM_TOPIC_PREFIX_WITHOUT_MODE": "yes",
    # the embedded broker speaks PLAINTEXT on loopback
    "PAYSTREAM_KAFKA_ALLOW_PLAINTEXT": "yes",
}

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "stripe-fixtures"
if not FIXTURES.is_dir():  # a clone not beside shared/: the copy kept in the repository
    FIXTURES = Path(__file__).resolve().parent / "fixtures" / "stripe-fixtures"


@pytest.fixture(scope="session")
def stripe_fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.fail(f"Stripe fixtures not found at {FIXTURES}")
    return FIXTURES


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap address of the session's broker (external or embedded)."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    with EmbeddedBroker(log_path=log) as broker:
        yield broker.bootstrap_servers


@pytest.fixture(scope="session")
def broker_profile() -> str:
    return "kafka" if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") else "embedded"


@pytest.fixture
def broker_env(kafka_bootstrap: str, broker_profile: str) -> Callable[..., dict[str, str]]:
    """Environment for a paystream subprocess pointed at the session broker."""

    def make(prefix: str, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "PAYSTREAM_"))}
        env.update(
            TEST_ENVIRONMENT,
            KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
            PAYSTREAM_BROKER_PROFILE=broker_profile,
            PAYSTREAM_TOPIC_PREFIX=prefix,
            PAYSTREAM_TOPIC_PARTITIONS=str(TEST_PARTITIONS),
        )
        env.update(extra)
        return env

    return make


@pytest.fixture
def pipeline_settings(kafka_bootstrap: str, broker_profile: str) -> CommonSettings:
    """Common settings with a fresh topic prefix; every topic is created up front."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    settings = CommonSettings(
        paystream_env="development",
        kafka_bootstrap_servers=kafka_bootstrap,
        paystream_broker_profile=broker_profile,  # type: ignore[arg-type]
        paystream_topic_prefix=prefix,
        paystream_topic_partitions=TEST_PARTITIONS,
    )
    ensure_topics(kafka_bootstrap, settings.topics.specs())
    return settings
