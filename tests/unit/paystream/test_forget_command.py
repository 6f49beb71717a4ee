"""``paystream forget``'s shell, the parts that need no broker: the worker's confirmation
(its answers passed in), the store's refusal of anything but a hash, the argument check."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from paystream.commands.forget import ForgetSettings, confirm_worker, main
from paystream.erasure import ERASED_STEP, FAILED, REQUESTED
from paystream.runtime.store import MetricsStore, QueryRejected

TOKEN = "api-token-for-forget-unit-tests-0123456789"


def _settings(**extra: str) -> ForgetSettings:
    return ForgetSettings(paystream_env="development", paystream_topic_prefix="p.", **extra)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("answers", "wait_s", "status"),
    [
        ([404], 5.0, ERASED_STEP),
        ([200, 200, 404], 5.0, ERASED_STEP),
        ([503, 404], 5.0, ERASED_STEP),  # rebalancing, then done
        ([200], 0.0, FAILED),  # still there when the wait is over
        ([0], 0.0, FAILED),  # nothing answered
    ],
)
def test_the_worker_confirms_by_answering_404(
    answers: list[int], wait_s: float, status: str
) -> None:
    given: Iterator[int] = iter(answers)
    asked: list[str] = []

    def get(url: str, token: str) -> int:
        asked.append(url)
        assert token == TOKEN
        return next(given, answers[-1])

    settings = _settings(paystream_worker_url="http://127.0.0.1:6066/", paystream_api_token=TOKEN)
    step = confirm_worker(settings, "cus_A1", wait_s, get)
    assert step.status == status, step
    assert set(asked) == {"http://127.0.0.1:6066/customers/cus_A1"}


def test_without_the_worker_api_the_erase_is_only_requested() -> None:
    def get(url: str, token: str) -> int:
        raise AssertionError("not asked")

    step = confirm_worker(_settings(), "cus_A1", 5.0, get)
    assert step.status == REQUESTED
    assert "PAYSTREAM_API_TOKEN" in step.detail


@pytest.mark.parametrize("text", ["", "x' OR 1=1 --", "ABCDEF0123456789ABCDEF0123456789", "0" * 33])
def test_the_store_erases_by_a_hash_and_nothing_else(text: str) -> None:
    store = MetricsStore(client=None, database="paystream")  # refused before the client
    with pytest.raises(QueryRejected):
        store.erase_customer(text)


@pytest.mark.parametrize("argument", ["acct_1", "cus_", "cus_a/../b"])
def test_a_bad_customer_id_is_refused_with_exit_2(
    argument: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([argument]) == 2
    assert "expected a Stripe customer id" in capsys.readouterr().err
