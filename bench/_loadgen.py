"""An open-loop HTTP/1.1 load generator cheaper than the system it measures.

Every request is built (headers, signature, body) before the clock starts; during the run
the generator only writes prepared bytes to kept-alive sockets and reads the status line
and ``Content-Length`` of each answer, on asyncio's low-level protocol API (no HTTP client
library: aiohttp's client costs more per request than the ingest server it loads, which is
why the previous sender topped out near 770/s on two shared cores).

Request *i* is due at ``t0 + i / rate``. Latency is to be measured from that scheduled
moment, not from when the request actually left, so a generator that falls behind shows up
in the latency instead of hiding it (no coordinated omission); ``lag`` reports how far
behind schedule the requests left. A non-2xx answer or a dropped connection is retried like
Stripe, later, with the same prepared bytes (the signature stays within the tolerance).
One request is in flight per connection; more connections open when none is idle.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections import deque
from dataclasses import dataclass, field

RETRY_AFTER_S = 0.5


def http_post(host: str, port: int, path: str, headers: dict[str, str], body: bytes) -> bytes:
    """One prepared HTTP/1.1 POST (keep-alive)."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def answer_length(buffer: bytes | bytearray) -> tuple[int, int] | None:
    """(status, total bytes) of the first complete answer in ``buffer``, or None if partial."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    status = int(head[0].split(" ", 2)[1])
    length = 0
    for line in head[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    total = end + 4 + length
    return (status, total) if len(buffer) >= total else None


@dataclass
class Outcome:
    """What the generator saw: first send (wall s) per request, retries, answer statuses."""

    t0_wall: float = 0.0
    rate: float = 1.0
    first_sent: list[float] = field(default_factory=list)
    #: when each request's 2xx answer arrived (wall clock s; 0 until it did)
    answered_at: list[float] = field(default_factory=list)
    retries: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    connections: int = 0
    failed_connects: int = 0
    finished_wall: float = 0.0

    def scheduled(self, i: int) -> float:
        """When request ``i`` was due (wall clock s): the start of its latency."""
        return self.t0_wall + i / self.rate

    def lags_ms(self) -> list[float]:
        return [(sent - self.scheduled(i)) * 1000 for i, sent in enumerate(self.first_sent)]

    def answer_ms(self) -> list[float]:
        """Scheduled send → 2xx answer per answered request (retries included), in ms."""
        return [(at - self.scheduled(i)) * 1000 for i, at in enumerate(self.answered_at) if at]

    def offered_rate(self) -> float:
        """Requests per second actually put on the wire (first sends only)."""
        span = max(self.first_sent) - self.t0_wall if self.first_sent else 0.0
        n = len(self.first_sent)
        return n / max(span, (n - 1) / self.rate, 1e-9)


class _Connection(asyncio.Protocol):
    def __init__(self, generator: LoadGenerator) -> None:
        self.generator = generator
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.in_flight: int | None = None
        self.ready = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.ready.set_result(None)

    def send(self, index: int) -> None:
        assert self.transport is not None
        self.in_flight = index
        self.transport.write(self.generator.requests[index])

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        parsed = answer_length(self.buffer)
        if parsed is None:
            return
        status, total = parsed
        del self.buffer[:total]
        index, self.in_flight = self.in_flight, None
        if index is not None:
            self.generator.answered(self, index, status)

    def connection_lost(self, exc: Exception | None) -> None:
        index, self.in_flight = self.in_flight, None
        self.generator.lost(self, index)


class LoadGenerator:
    """Sends prepared requests to ``host:port`` at ``rate`` per second; see the module doc."""

    def __init__(
        self,
        host: str,
        port: int,
        requests: list[bytes],
        rate: float,
        connections: int = 32,
        max_connections: int = 512,
    ) -> None:
        self.host, self.port, self.requests, self.rate = host, port, requests, rate
        self.initial_connections = connections
        self.max_connections = max_connections
        self.outcome = Outcome(
            rate=rate, first_sent=[0.0] * len(requests), answered_at=[0.0] * len(requests)
        )
        self._idle: deque[_Connection] = deque()
        #: due (or due again) and not yet written: waiting for an idle connection
        self._pending: deque[int] = deque()
        self._retry: list[tuple[float, int]] = []
        self._left = len(requests)
        self._open_now = 0
        self._opening = 0
        self._wall_offset = 0.0
        self._wake: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def _open(self) -> None:
        """Open one connection; the caller counted it in ``_opening`` already."""
        try:
            loop = asyncio.get_running_loop()
            _, connection = await loop.create_connection(
                lambda: _Connection(self), self.host, self.port
            )
            await connection.ready
        except OSError:  # out of descriptors or refused: requests wait for another one
            self.outcome.failed_connects += 1
            await asyncio.sleep(0.05)
            return
        finally:
            self._opening -= 1
        self._open_now += 1
        self.outcome.connections += 1
        self._idle.append(connection)
        self._dispatch()

    def _dispatch(self) -> None:
        """Write every pending request to an idle connection; open more (in the background,
        so the schedule never waits on a handshake) while requests wait and none is idle."""
        first_sent = self.outcome.first_sent
        while self._pending and self._idle:
            index = self._pending.popleft()
            self._idle.popleft().send(index)
            if not first_sent[index]:
                first_sent[index] = time.monotonic() + self._wall_offset
        wanted = len(self._pending) - self._opening
        while wanted > 0 and self._open_now + self._opening < self.max_connections:
            self._opening += 1  # now, not when the task first runs: the cap holds
            task = asyncio.ensure_future(self._open())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            wanted -= 1

    def answered(self, connection: _Connection, index: int, status: int) -> None:
        self.outcome.statuses[status] = self.outcome.statuses.get(status, 0) + 1
        self._idle.append(connection)
        if 200 <= status < 300:
            self._left -= 1
            self.outcome.answered_at[index] = time.monotonic() + self._wall_offset
        else:
            self._schedule_retry(index)
        self._dispatch()
        self._poke()

    def lost(self, connection: _Connection, index: int | None) -> None:
        self._open_now -= 1
        if connection in self._idle:
            self._idle.remove(connection)
        if index is not None:
            self._schedule_retry(index)
        self._poke()

    def _schedule_retry(self, index: int) -> None:
        self.outcome.retries += 1
        heapq.heappush(self._retry, (time.monotonic() + RETRY_AFTER_S, index))

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def run(self) -> Outcome:
        self._wake = asyncio.Event()
        self._opening += self.initial_connections
        await asyncio.gather(*(self._open() for _ in range(self.initial_connections)))
        n = len(self.requests)
        t0 = time.monotonic()
        self.outcome.t0_wall = time.time() - (time.monotonic() - t0)
        self._wall_offset = self.outcome.t0_wall - t0
        i = 0
        while self._left:
            now = time.monotonic()
            due = min(n, int((now - t0) * self.rate) + 1)
            self._pending.extend(range(i, due))
            i = due
            while self._retry and self._retry[0][0] <= now:
                self._pending.append(heapq.heappop(self._retry)[1])
            self._dispatch()
            waits = [t0 + i / self.rate] if i < n else []
            waits += [self._retry[0][0]] if self._retry else []
            self._wake.clear()
            if waits:
                await asyncio.sleep(max(0.0, min(waits) - time.monotonic()))
            else:  # everything sent: wait for answers (a failure schedules a retry)
                await self._wake.wait()
        self.outcome.finished_wall = time.time()
        for connection in [*self._idle]:
            if connection.transport is not None:
                connection.transport.close()
        return self.outcome
