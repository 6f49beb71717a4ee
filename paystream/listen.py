"""A listener's port already taken, said in one line that names the port and its setting.

Every paystream process with an HTTP listener (ingest, admin, the worker's web port, the
sinks' metrics) checks its address before anything else starts: a second process on a host
where the first holds the port then stops with ``invalid setting PAYSTREAM_..._PORT: port
8082 on 127.0.0.1 is in use`` instead of an unexpected ``OSError`` (or, for the worker,
after it joined its group). The probe binds as the servers do (``SO_REUSEADDR``, so a port
left only in TIME_WAIT by a restart is free) and closes at once; the server's own bind
right after can still lose a race, and is reported the same way by ``in_use``.
"""

from __future__ import annotations

import errno
import socket

from paystream.errors import SettingsError


def in_use(host: str, port: int, variable: str) -> SettingsError:
    """The one-line error of a listener whose port is taken."""
    return SettingsError(
        f"invalid setting {variable}: port {port} on {host} is in use (another process "
        f"listens there: stop it, or set {variable} to a free port)"
    )


def ensure_free(host: str, port: int, variable: str) -> None:
    """Raise ``in_use`` when ``host:port`` cannot be bound now (port 0: any, always free)."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise in_use(host, port, variable) from None
            raise
