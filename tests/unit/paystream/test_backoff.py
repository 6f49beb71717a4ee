"""The one back-off formula: capped exponential steps, equal jitter."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paystream.backoff import exponential_step, jittered_delay


@pytest.mark.parametrize(
    ("attempt", "step"),
    [(0, 0.5), (1, 0.5), (2, 1.0), (3, 2.0), (6, 16.0), (7, 20.0), (50, 20.0)],
)
def test_steps_double_from_the_base_up_to_the_cap(attempt: int, step: float) -> None:
    assert exponential_step(attempt, 0.5, 20.0) == step


@pytest.mark.parametrize(
    ("rand", "delay"), [(0.0, 1.0), (0.5, 1.5), (1.0, 2.0), (-3.0, 1.0), (7.0, 2.0)]
)
def test_half_the_step_is_fixed_and_half_random(rand: float, delay: float) -> None:
    assert jittered_delay(3, 0.5, 20.0, rand) == delay


@given(
    attempt=st.integers(1, 200),
    base=st.floats(0.001, 10),
    cap=st.floats(0.001, 600),
    rand=st.floats(0, 1),
)
def test_a_delay_lies_between_half_the_step_and_the_step(
    attempt: int, base: float, cap: float, rand: float
) -> None:
    step = exponential_step(attempt, base, cap)
    assert step <= cap
    assert step / 2 <= jittered_delay(attempt, base, cap, rand) <= step
