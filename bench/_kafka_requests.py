"""A counting Kafka-protocol proxy for ``bench/e2e.py --count-requests``.

Tansu 0.6 exposes no request metrics (its only telemetry is an OTLP exporter, which needs a
collector), and its CPU is driven by how many requests it answers. This proxy sits between
the clients and the broker (the broker advertises the proxy's address, so every client
connects through it), forwards bytes unchanged and counts the clients' requests per API key
— a request frame is a 4-byte size then the int16 API key (Kafka protocol guide, "Common
Request and Response Structure"). Hand-written because no library counts requests on the
wire; it costs CPU of its own, so figures taken with it are for request counts, not latency.

    python bench/_kafka_requests.py --listen PORT --upstream HOST:PORT --out counts.json

``counts.json`` holds the cumulative counts per API key name, rewritten every 0.5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import struct
import time
from collections import Counter
from pathlib import Path

#: how often the proxy rewrites its counts file
WRITE_EVERY_S = 0.5

# https://kafka.apache.org/protocol#protocol_api_keys (the ones these clients send)
API_KEYS = {
    0: "Produce",
    1: "Fetch",
    2: "ListOffsets",
    3: "Metadata",
    8: "OffsetCommit",
    9: "OffsetFetch",
    10: "FindCoordinator",
    11: "JoinGroup",
    12: "Heartbeat",
    13: "LeaveGroup",
    14: "SyncGroup",
    18: "ApiVersions",
    19: "CreateTopics",
    22: "InitProducerId",
    32: "DescribeConfigs",
    60: "DescribeCluster",
    71: "GetTelemetrySubscriptions",
}


async def _requests(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, counts: Counter[str]
) -> None:
    """Forward client → broker frame by frame, counting each request's API key."""
    with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
        while True:
            header = await reader.readexactly(4)
            body = await reader.readexactly(struct.unpack(">i", header)[0])
            key = struct.unpack(">h", body[:2])[0]
            counts[API_KEYS.get(key, str(key))] += 1
            writer.write(header + body)
            await writer.drain()
    writer.close()


async def _responses(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


async def serve(listen: int, upstream: str, out: Path) -> None:
    counts: Counter[str] = Counter()
    host, _, port = upstream.rpartition(":")

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        broker_r, broker_w = await asyncio.open_connection(host, int(port))
        await asyncio.gather(_requests(client_r, broker_w, counts), _responses(broker_r, client_w))

    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    async with server:
        while True:
            tmp = out.with_suffix(".tmp")
            tmp.write_text(json.dumps(dict(counts)))
            os.replace(tmp, out)  # readers never see half a file
            await asyncio.sleep(WRITE_EVERY_S)


def read_counts(path: Path) -> dict[str, int]:
    """The proxy's cumulative counts (empty until its first write)."""
    try:
        counts: dict[str, int] = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    return counts


def counted_since(path: Path, before: dict[str, int]) -> dict[str, int]:
    """Requests per API key since ``before`` was read, once the proxy has written them."""
    time.sleep(WRITE_EVERY_S + 0.1)
    return {key: n - before.get(key, 0) for key, n in read_counts(path).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.listen, args.upstream, args.out))


if __name__ == "__main__":
    main()
