"""Records queued for the agent survive Faust's second resume of the flow after recovery.

Faust's ``Recovery._resume_streams`` resumes the input partitions, seeks them to their
committed offsets, then calls ``app.flow_control.resume()``, which in mode empties every
stream queue. The consumer's flow already runs by then (recovery resumed it), so the drain
loop can queue records fetched after the seek before that call; dropped there, they are
never fetched again and their partition stalls (``processors._faust``,
``clear_only_after_suspend``). These tests run Faust's own ``_resume_streams`` and mode's
own flow control and queue; only the consumer and the app around them are stand-ins.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from types import SimpleNamespace
from typing import Any

import pytest
from faust.tables.recovery import Recovery
from faust.types import TP
from mode.utils.queues import FlowControlEvent, FlowControlQueue

from processors._faust import clear_only_after_suspend

INPUT = TP("paystream.stripe.events", 1)


class Signal:
    async def send(self) -> None:
        return None


class Fetcher:
    async def maybe_start(self) -> None:
        return None


def _app(flow_control: FlowControlEvent, queue: FlowControlQueue[int]) -> SimpleNamespace:
    """The app and consumer ``_resume_streams`` reads; ``perform_seek`` is where the drain
    loop (running since recovery resumed the flow) queues the records it fetched after it."""

    async def perform_seek() -> None:
        queue.put_nowait(92)  # the first record after the committed offset, fetched again

    consumer = SimpleNamespace(
        assignment=lambda: {INPUT},
        resume_partitions=lambda tps: None,
        perform_seek=perform_seek,
        resume_flow=lambda: None,
    )
    return SimpleNamespace(
        consumer=consumer,
        consumer_generation_id=3,
        conf=SimpleNamespace(broker_request_timeout=90.0),
        flow_control=flow_control,
        on_rebalance_complete=Signal(),
        _fetcher=Fetcher(),
        on_rebalance_end=lambda: None,
    )


def _recovery(app: SimpleNamespace) -> SimpleNamespace:
    async def wait(coro: Coroutine[Any, Any, Any], **_: Any) -> Any:  # Service._wait, no timeout
        return await coro

    return SimpleNamespace(
        app=app,
        log=SimpleNamespace(dev=lambda *a: None, info=lambda *a: None, warning=lambda *a: None),
        _wait=wait,
        _is_changelog_tp=lambda tp: False,
        completed=asyncio.Event(),
        tables=SimpleNamespace(on_actives_ready=lambda: None, on_standbys_ready=lambda: None),
    )


async def _resume_after_recovery(bend: bool) -> list[int]:
    flow_control = FlowControlEvent(initially_suspended=True)  # as a rebalance leaves it
    queue: FlowControlQueue[int] = FlowControlQueue(flow_control=flow_control, clear_on_resume=True)
    app = _app(flow_control, queue)
    if bend:
        clear_only_after_suspend(app)
    queue.put_nowait(7)  # fetched under the revoked assignment
    app.flow_control.resume()  # recovery's own resume, before reading the changelogs
    await Recovery._resume_streams(_recovery(app), generation_id=3)  # type: ignore[arg-type]
    return list(queue._queue)  # type: ignore[attr-defined]


def test_records_queued_after_the_seek_reach_the_agent() -> None:
    assert asyncio.run(_resume_after_recovery(bend=True)) == [92]


def test_without_the_guard_faust_drops_them() -> None:
    # what the worker ran into: the record is gone, the partition's frontier waits for it
    assert asyncio.run(_resume_after_recovery(bend=False)) == []


@pytest.mark.parametrize(
    ("suspended", "kept"),
    [
        (True, []),  # a rebalance suspended the flow: what was queued belongs to the old one
        (False, [1, 2]),  # flowing: what was queued belongs to the current assignment
    ],
    ids=["after-suspend", "while-flowing"],
)
def test_resume_empties_the_queues_only_after_a_suspend(suspended: bool, kept: list[int]) -> None:
    flow_control = FlowControlEvent(initially_suspended=False)
    queue: FlowControlQueue[int] = FlowControlQueue(flow_control=flow_control, clear_on_resume=True)
    clear_only_after_suspend(SimpleNamespace(flow_control=flow_control))
    queue.put_nowait(1)
    if suspended:
        flow_control.suspend()
    queue.put_nowait(2)
    flow_control.resume()
    assert list(queue._queue) == kept  # type: ignore[attr-defined]
    assert flow_control.is_active()
