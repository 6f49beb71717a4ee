"""The worker API's token ``paystream up`` gives its children and the commands beside it: the
operator's own, or one it makes in development only; in the stack file, never printed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from paystream.commands.up import UpSettings, api_token, banner, stack_settings
from paystream.settings import short_secret_problem
from tests.unit.paystream.test_up_banner import started
from tests.unit.settings_env import clean_environment

PRODUCTION = {
    "paystream_env": "production",
    "paystream_customer_hash_key": "k" * 40,
    "paystream_kafka_allow_plaintext": "yes",
}


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_environment(monkeypatch, tmp_path)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"paystream_api_token": "mine-" + "x" * 40}, "mine-" + "x" * 40),
        ({**PRODUCTION, "paystream_api_token": "prod-" + "y" * 40}, "prod-" + "y" * 40),
        ({"paystream_env": "preview"}, None),  # never made outside development
        (PRODUCTION, None),
    ],
    ids=["yours, development", "yours, production", "preview", "production"],
)
def test_the_operators_token_or_none_outside_development(
    given: dict[str, Any], expected: str | None
) -> None:
    assert api_token(UpSettings(**given)) == expected


def test_in_development_up_makes_one_the_processes_accept_everywhere() -> None:
    made = {api_token(UpSettings()) for _ in range(3)}
    assert None not in made and len(made) == 3  # a new one each run
    for token in made:
        assert token is not None and len(token) >= 32
        for env in ("development", "preview", "production"):  # the worker's and ingest's rule
            assert short_secret_problem(env, {"PAYSTREAM_API_TOKEN": [token]}) is None


def test_the_stack_file_hands_it_on_and_the_banner_never_prints_it() -> None:
    token = "up-made-api-token-" + "z" * 30
    with_token = started(api_token=token)
    settings = UpSettings(paystream_topic_partitions=2)
    beside = stack_settings(settings, with_token)
    assert beside["paystream_api_token"] == token
    assert beside["paystream_worker_url"] == "http://127.0.0.1:6066"
    assert beside["paystream_topic_partitions"] == 2
    assert token not in "\n".join(banner(with_token, "paystream", development=True))
    assert "paystream_api_token" not in stack_settings(settings, started())
