"""A counting Kafka-protocol proxy for ``bench/e2e.py --count-requests``.

Tansu 0.6 exposes no request metrics (its only telemetry is an OTLP exporter, which needs a
collector), and its CPU is driven by how many requests it answers. This proxy sits between
the clients and the broker (the broker advertises the proxy's address, so every client
connects through it), forwards bytes unchanged and counts the clients' requests per process,
client id and API key. A request frame is a 4-byte size, then the request header: int16
API key, int16 API version, int32 correlation id and, for header v1 and v2 (every request
these clients send), the client id as an int16-length string (Kafka protocol guide,
"Common Request and Response Structure", "Request Header v1/v2"). The process is the
owner of the connection's client socket, found once per connection in ``/proc`` (Linux).
Hand-written because no library counts requests on the wire; it costs CPU of its own, so
figures taken with it are for request counts, not latency.

    python bench/_kafka_requests.py --listen PORT --upstream HOST:PORT --out counts.json

``counts.json`` holds the cumulative counts as ``{"PID CLIENT_ID API": n}``, rewritten
every 0.5 s (``by_key`` and ``by_pid`` fold it).
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
    15: "DescribeGroups",
    16: "ListGroups",
    18: "ApiVersions",
    19: "CreateTopics",
    20: "DeleteTopics",
    21: "DeleteRecords",
    22: "InitProducerId",
    23: "OffsetForLeaderEpoch",
    32: "DescribeConfigs",
    60: "DescribeCluster",
    71: "GetTelemetrySubscriptions",
}


def request_name(body: bytes) -> tuple[str, str]:
    """(client id, API key name) of one request frame's body (after its size)."""
    key = struct.unpack(">h", body[:2])[0]
    client = "-"
    if len(body) >= 10:
        length = struct.unpack(">h", body[8:10])[0]
        if length > 0:
            client = body[10 : 10 + length].decode(errors="replace").replace(" ", "_")
    return client, API_KEYS.get(key, str(key))


def _socket_inode(local_port: int, remote_port: int) -> str | None:
    """The inode of the IPv4 socket 127.0.0.1:local_port → :remote_port (``/proc/net/tcp``)."""
    want_local, want_remote = f":{local_port:04X}", f":{remote_port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(want_local) and fields[2].endswith(want_remote):
            return fields[9]
    return None


def socket_owner(local_port: int, remote_port: int) -> int:
    """The pid holding the client end of a connection to ``remote_port`` (0 if not found)."""
    inode = _socket_inode(local_port, remote_port)
    if inode is None:
        return 0
    target = f"socket:[{inode}]"
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) == target:
                        return int(proc.name)
    return 0


async def _requests(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, counts: Counter[str], pid: int
) -> None:
    """Forward client → broker frame by frame, counting each request by pid, client, key."""
    with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
        while True:
            header = await reader.readexactly(4)
            body = await reader.readexactly(struct.unpack(">i", header)[0])
            client, key = request_name(body)
            counts[f"{pid} {client} {key}"] += 1
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
        peer_port = client_w.get_extra_info("peername")[1]
        pid = socket_owner(peer_port, listen)
        broker_r, broker_w = await asyncio.open_connection(host, int(port))
        await asyncio.gather(
            _requests(client_r, broker_w, counts, pid), _responses(broker_r, client_w)
        )

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
    """Requests per ``"PID CLIENT API"`` since ``before`` was read, once the proxy wrote them."""
    time.sleep(WRITE_EVERY_S + 0.1)
    return {key: n - before.get(key, 0) for key, n in read_counts(path).items()}


def by_key(counts: dict[str, int]) -> dict[str, int]:
    """Fold ``"PID CLIENT API"`` counts into counts per API key."""
    out: Counter[str] = Counter()
    for name, n in counts.items():
        out[name.rsplit(" ", 1)[-1]] += n
    return dict(out)


def by_process(counts: dict[str, int], names: dict[int, str]) -> dict[str, dict[str, int]]:
    """Fold counts into process name → ``"CLIENT API"`` → n (``names``: pid → name)."""
    out: dict[str, Counter[str]] = {}
    for name, n in counts.items():
        pid, client, key = name.split(" ", 2)
        process = names.get(int(pid), f"pid {pid}")
        out.setdefault(process, Counter())[f"{client} {key}"] += n
    return {process: dict(c) for process, c in out.items()}


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
