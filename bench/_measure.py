"""Figures the benchmarks share: percentiles and a process's CPU time."""

from __future__ import annotations

import math
import os
from pathlib import Path


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of a non-empty list."""
    ordered = sorted(values)
    # the ceil(q n / 100)-th value; q * n first, so whole products stay exact
    rank = max(0, min(len(ordered) - 1, math.ceil(q * len(ordered) / 100) - 1))
    return ordered[rank]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process used so far (Linux ``/proc``); 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_from_status(status: str) -> float:
    """Resident set size in MiB from the text of ``/proc/<pid>/status`` (0 without VmRSS)."""
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def rss_mib(pid: int) -> float:
    """A process's resident memory now, in MiB (Linux ``/proc``); 0 when it is gone."""
    try:
        return rss_from_status(Path(f"/proc/{pid}/status").read_text())
    except OSError:
        return 0.0
