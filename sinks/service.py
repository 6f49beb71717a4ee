"""The contract every sink of ``paystream sinks`` fulfils, so one process can run several."""

from __future__ import annotations

import threading
from typing import Protocol


class SinkService(Protocol):
    """A long-running consumer: ``run`` blocks until ``stop`` is set, then closes its resources."""

    name: str

    def run(self, stop: threading.Event) -> None: ...
