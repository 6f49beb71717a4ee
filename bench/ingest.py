"""Ingest throughput and latency against a bare aiohttp handler, measured in one run with wrk.

Starts its own embedded broker, then ``paystream ingest`` (real producer: acks=all,
idempotent, 200 only after the delivery report) and a bare aiohttp app whose handler reads
the body and returns 200 without work, both as separate processes on free ports. ``wrk``
(Debian's package, installed by ``make install``; C, far cheaper than the servers, so it does
not throttle the baseline) drives both at the same connection count with realistic 6 KB
``invoice.paid`` Stripe events, each with its own id and customer and a valid signature made
just before each wrk run (the 300 s signature tolerance is never reached), in alternating
windows so that both see the same machine. Prints req/s and p50/p99 per window and how many
cores the rest of the machine kept busy meanwhile (``others``: a run is quiet when that
stays near 0), CPU per request and how busy each event loop was, then the last line:
``ingest/bare throughput ratio: R, ingest p99: P ms``.

    flock /tmp/paystream-e2e.lock .venv/bin/python bench/ingest.py \
        [--connections 32] [--duration 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from paystream.runtime.broker import EmbeddedBroker, free_port  # noqa: E402
from paystream.runtime.topics_admin import ensure_topics  # noqa: E402
from paystream.settings import CommonSettings  # noqa: E402
from paystream.signing import sign_header  # noqa: E402

SECRET = "whsec_bench_0123456789abcdef"
BODY_BYTES = 6 * 1024
#: distinct events wrk cycles through (ids and customers spread over every partition)
DISTINCT_EVENTS = 256

#: wrk script: read the signed requests the bench wrote, send them in turn, print the figures
#: (latency in microseconds) on one line the bench parses.
WRK_SCRIPT = r"""
local requests = {}
local n = 0
function init(args)
  local file = assert(io.open(args[1], "r"))
  while true do
    local signature = file:read("*l")
    if signature == nil then break end
    local body = file:read("*l")
    n = n + 1
    requests[n] = wrk.format("POST", "/webhooks/stripe", {
      ["Content-Type"] = "application/json",
      ["Stripe-Signature"] = signature,
    }, body)
  end
  file:close()
end
local i = 0
function request()
  i = i % n + 1
  return requests[i]
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT requests=%d duration_us=%d p50=%d p99=%d non2xx=%d "
    .. "socket_errors=%d\n", summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(99), e.status, e.connect + e.read + e.write + e.timeout))
end
"""


def fixtures_dir() -> Path:
    for candidate in (
        ROOT.parent / "shared" / "stripe-fixtures",
        ROOT / "paystream" / "stripe_templates",
    ):
        if (candidate / "invoice_paid.json").is_file():
            return candidate
    raise SystemExit("no Stripe invoice.paid fixture found")


def make_bodies(count: int) -> list[bytes]:
    """``count`` realistic invoice.paid events of ~6 KB (a few metadata keys added)."""
    template = json.loads((fixtures_dir() / "invoice_paid.json").read_text())
    bodies = []
    for i in range(count):
        event = copy.deepcopy(template)
        event["id"] = f"evt_bench{uuid.uuid4().hex[:20]}"
        event["created"] = int(time.time())
        event["livemode"] = False
        invoice = event["data"]["object"]
        invoice["customer"] = f"cus_bench{i:05d}"
        metadata = invoice.setdefault("metadata", {})
        k = 0
        while len(json.dumps(event)) < BODY_BYTES - 64:
            metadata[f"order_line_{k:02d}"] = f"sku_{i:05d}_{k:02d} " + "x" * 80
            k += 1
        bodies.append(json.dumps(event).encode())
    return bodies


def write_signed(path: Path, bodies: list[bytes]) -> None:
    """One ``Stripe-Signature`` line, then the body line, per event; signed now."""
    with path.open("wb") as out:
        for body in bodies:
            out.write(sign_header(body, SECRET).encode() + b"\n" + body + b"\n")


def run_bare(port: int) -> None:
    from aiohttp import web

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=b'{"received": true}', content_type="application/json")

    app = web.Application()
    app.router.add_post("/webhooks/stripe", handle)
    app.router.add_get("/healthz", handle)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 - loopback
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} never became healthy")


def cpu_seconds(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) a process used so far by kind of thread (Linux /proc):
    ``main`` (the event loop), ``librdkafka`` (rdk:* threads), ``threads`` (the others)."""
    found = {"main": 0.0, "librdkafka": 0.0, "threads": 0.0}
    tick = os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            comm = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        kind = (
            "main"
            if task.name == str(pid)
            else "librdkafka"
            if comm.startswith("rdk:")
            else "threads"
        )
        found[kind] += (int(fields[11]) + int(fields[12])) / tick
    return found


def machine_cpu_seconds() -> float:
    """CPU seconds every core of the machine spent busy so far (``/proc/stat``: user, nice,
    system, irq, softirq, steal), to tell what the rest of the machine used meanwhile."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


@dataclass
class Target:
    name: str
    port: int
    pids: dict[str, int]
    windows: list[dict[str, float]] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks/stripe"

    @property
    def requests(self) -> float:
        return sum(w["requests"] for w in self.windows)

    @property
    def seconds(self) -> float:
        return sum(w["duration_us"] / 1e6 for w in self.windows)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def p99_ms(self) -> float:
        """The median over windows of each window's p99 (wrk cannot merge histograms)."""
        return statistics.median(w["p99"] for w in self.windows) / 1000


def wrk(
    target: Target,
    script: Path,
    data: Path,
    bodies: list[bytes],
    args: argparse.Namespace,
    d: float,
) -> dict[str, float]:
    write_signed(data, bodies)
    before = {k: cpu_seconds(pid) for k, pid in target.pids.items()}
    machine_before = machine_cpu_seconds()
    command = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{d:g}s",
        "--timeout",
        "5s",
        "-s",
        str(script),
        target.url,
        "--",
        str(data),
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    machine = machine_cpu_seconds() - machine_before
    match = re.search(r"^RESULT (.*)$", out, re.M)
    if status != 0 or match is None:
        raise SystemExit(f"wrk failed:\n{out}")
    result = {k: float(v) for k, v in (kv.split("=") for kv in match[1].split())}
    ours = usage.ru_utime + usage.ru_stime
    for k, pid in target.pids.items():
        for kind, seconds in cpu_seconds(pid).items():
            used = seconds - before[k][kind]
            ours += used
            if used > 0 or kind == "main":
                name = k if kind == "main" else f"{k} {kind}"
                target.cpu[name] = target.cpu.get(name, 0.0) + used
    target.cpu["wrk"] = target.cpu.get("wrk", 0.0) + usage.ru_utime + usage.ru_stime
    # cores the rest of the machine kept busy during the window (others' tests, benches)
    result["others"] = max(0.0, machine - ours) / (result["duration_us"] / 1e6)
    return result


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)


def bench(args: argparse.Namespace) -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: `make install` installs it (Debian package wrk)")
    tmp = Path(tempfile.mkdtemp(prefix="paystream-bench-"))
    script, data = tmp / "signed.lua", tmp / "signed.txt"
    script.write_text(WRK_SCRIPT)
    bodies = make_bodies(DISTINCT_EVENTS)
    broker = EmbeddedBroker(log_path=tmp / "tansu.log")
    bootstrap = broker.start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        prefix = f"bench{uuid.uuid4().hex[:8]}."
        common = CommonSettings(
            paystream_env="development",
            kafka_bootstrap_servers=bootstrap,
            paystream_broker_profile="embedded",
            paystream_topic_prefix=prefix,
        )
        ensure_topics(bootstrap, common.topics.specs())
        ingest_port, bare_port = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "PAYSTREAM_"))}
        env.update(
            PAYSTREAM_ENV="development",
            KAFKA_BOOTSTRAP_SERVERS=bootstrap,
            PAYSTREAM_BROKER_PROFILE="embedded",
            PAYSTREAM_TOPIC_PREFIX=prefix,
            STRIPE_WEBHOOK_SECRETS=SECRET,
            PAYSTREAM_INGEST_HOST="127.0.0.1",
            PAYSTREAM_INGEST_PORT=str(ingest_port),
        )
        env.update(item.split("=", 1) for item in args.ingest_env)
        command = [sys.executable, "-m", "ingest"]
        if args.profile:  # where the time goes: py-spy's flame graph of the ingest process
            spy = Path(sys.executable).parent / "py-spy"
            fmt = "raw" if args.profile.endswith(".txt") else "flamegraph"
            command = [str(spy), "record", "-o", args.profile, "-f", fmt, "-r", "200"]
            command += ["--native", "--"] if args.native else ["--"]
            command += [sys.executable, "-m", "ingest"]
        procs.append(start(command, env, tmp / "ingest.log"))
        procs.append(start([sys.executable, __file__, "--bare", str(bare_port)], env, tmp / "bare"))
        wait_healthy(f"http://127.0.0.1:{ingest_port}/healthz", procs[0])
        wait_healthy(f"http://127.0.0.1:{bare_port}/healthz", procs[1])
        ingest_pid = procs[0].pid
        if args.profile:  # the recorded python process is py-spy's child
            children = Path(f"/proc/{ingest_pid}/task/{ingest_pid}/children").read_text().split()
            ingest_pid = int(children[0])
        targets = [
            Target("bare", bare_port, {"server": procs[1].pid, "broker": broker.pid or 0}),
            Target("ingest", ingest_port, {"server": ingest_pid, "broker": broker.pid or 0}),
        ]
        for target in targets:  # warm-up: connections, producer, JIT-less but caches warm
            wrk(target, script, data, bodies, args, args.warmup)
            target.windows.clear()
            target.cpu.clear()
        print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
        print(
            f"wrk -t{args.threads} -c{args.connections}, {args.rounds} alternating windows of "
            f"{args.duration:g} s per target, body {len(bodies[0])} bytes (signed "
            "invoice.paid), embedded broker, acks=all + idempotence"
        )
        print(
            f"{'window':<8} {'target':<8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
            f" {'others':>7}"
        )
        for round_ in range(1, args.rounds + 1):
            for target in targets:
                w = wrk(target, script, data, bodies, args, args.duration)
                target.windows.append(w)
                print(
                    f"{round_:<8} {target.name:<8} {w['requests'] / w['duration_us'] * 1e6:>9.0f} "
                    f"{w['p50'] / 1000:>8.2f} {w['p99'] / 1000:>8.2f} "
                    f"{int(w['non2xx'] + w['socket_errors']):>7} {w['others']:>7.2f}",
                    flush=True,
                )
        # A server loop busy well below 100% waits on something else (the broker's answer,
        # the other processes' turn on the cores): its CPU is not what limits it.
        print("CPU per request (µs), and how busy each server's event loop thread was:")
        for target in targets:
            per = {k: v / target.requests * 1e6 for k, v in target.cpu.items()}
            busy = target.cpu.get("server", 0.0) / target.seconds
            print(
                f"  {target.name:<7}"
                + ", ".join(f"{k} {v:.0f}" for k, v in per.items())
                + f"; loop busy {busy:.0%}"
            )
        others = [w["others"] for t in targets for w in t.windows]
        print(
            f"the rest of the machine kept {min(others):.2f} to {max(others):.2f} cores busy per "
            "window ('others'; a quiet run: below 0.1)"
        )
        errors = sum(w["non2xx"] + w["socket_errors"] for t in targets for w in t.windows)
        if errors:
            print(f"! {int(errors)} requests failed (non-2xx or socket errors)")
        bare, ingest = targets
        print(
            f"bare: {bare.rps:.0f} req/s; ingest: {ingest.rps:.0f} req/s (p99: median of windows)"
        )
        print(
            f"ingest/bare throughput ratio: {ingest.rps / bare.rps:.2f}, "
            f"ingest p99: {ingest.p99_ms:.1f} ms"
        )
    finally:
        for proc in procs:  # py-spy writes its profile on SIGINT
            proc.send_signal(signal.SIGINT if args.profile else signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per window")
    parser.add_argument("--rounds", type=int, default=3, help="alternating windows per target")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds per target, unmeasured")
    parser.add_argument(
        "--ingest-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra setting for the ingest process (to compare configurations)",
    )
    parser.add_argument("--profile", metavar="SVG", help="record the ingest process with py-spy")
    parser.add_argument("--native", action="store_true", help="--profile with C frames too")
    parser.add_argument("--bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        run_bare(args.bare)
        return
    bench(args)


if __name__ == "__main__":
    main()
