"""``paystream ingest`` as a real process: SIGTERM or kill -9 while requests fly loses no
200-acknowledged event."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from paystream.runtime.broker import free_port
from paystream.settings import CommonSettings
from schemas.codec import default_codec
from tests.integration.ingest.conftest import CARD_FINGERPRINT, SECRET, encode, signed
from tests.kafka_helpers import consume

pytestmark = pytest.mark.broker

PAYSTREAM = Path(sys.executable).parent / "paystream"


async def _wait_healthy(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            assert proc.poll() is None, "paystream ingest exited during start-up"
            try:
                async with session.get(base + "/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("paystream ingest did not become healthy")


@pytest.fixture
def ingest_process(
    pipeline_settings: CommonSettings,
    broker_env: Callable[..., dict[str, str]],
    tmp_path: Path,
) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    """``paystream ingest`` started the way an operator starts it; killed if still running."""
    port = free_port()
    env = broker_env(
        pipeline_settings.topic_prefix,
        STRIPE_WEBHOOK_SECRETS=SECRET,
        PAYSTREAM_INGEST_PORT=str(port),
        PAYSTREAM_INGEST_HOST="127.0.0.1",
    )
    log_path = tmp_path / "ingest.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(PAYSTREAM), "ingest"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        yield proc, port, log_path
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill-9"])
async def test_stopping_loses_no_acknowledged_event(
    stop: signal.Signals,
    pipeline_settings: CommonSettings,
    ingest_process: tuple[subprocess.Popen[bytes], int, Path],
    make_event: Callable[..., dict[str, Any]],
) -> None:
    proc, port, log_path = ingest_process
    base = f"http://127.0.0.1:{port}"
    acked: list[str] = []
    statuses: list[int] = []
    stop_sent = asyncio.Event()
    enough = asyncio.Event()
    await _wait_healthy(base, proc)

    async def sender(session: aiohttp.ClientSession) -> None:
        while True:
            event = make_event("charge_succeeded")
            body = encode(event)
            try:
                async with session.post(
                    base + "/webhooks/stripe", data=body, headers=signed(body)
                ) as resp:
                    statuses.append(resp.status)
                    if resp.status == 200:
                        assert (await resp.json())["id"] == event["id"]
                        acked.append(event["id"])
                        if len(acked) >= 60:
                            enough.set()
            except (TimeoutError, aiohttp.ClientError):
                if stop_sent.is_set():
                    return
                await asyncio.sleep(0.05)

    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        senders = [asyncio.create_task(sender(session)) for _ in range(8)]
        await asyncio.wait_for(enough.wait(), 60)
        proc.send_signal(stop)
        stop_sent.set()
        await asyncio.wait_for(asyncio.gather(*senders), 60)
    code = await asyncio.to_thread(proc.wait, 60)

    # SIGTERM: stop accepting, finish in-flight requests, flush, exit 0. kill -9: nothing is
    # finished, but whatever was answered 200 was already acknowledged by the broker.
    assert code == (0 if stop == signal.SIGTERM else -signal.SIGKILL)
    assert set(statuses) <= {200, 503}
    expected = set(acked)
    codec = default_codec()

    def all_found(messages: list[Any]) -> bool:
        return expected <= {codec.decode(m.value())[1]["event_id"] for m in messages}

    messages = consume(
        pipeline_settings, pipeline_settings.topics.stripe_events, until=all_found, timeout=60
    )
    found = {codec.decode(m.value())[1]["event_id"] for m in messages}
    assert expected - found == set()

    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    events = [line["event"] for line in lines]
    if stop == signal.SIGTERM:
        assert "producer_flushed" in events
        assert events[-1] == "ingest_stopped"
    text = log_path.read_text()
    assert SECRET not in text
    assert "last4" not in text  # the key: the 4-digit value could occur in a timestamp
    assert CARD_FINGERPRINT not in text
    assert "Traceback" not in text
