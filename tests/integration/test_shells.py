"""``python -m ingest`` and ``python -m admin`` answer a bad setting as ``paystream`` does."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

DEV = {"PAYSTREAM_ENV": "development"}


@pytest.mark.parametrize(
    ("module", "env", "line"),
    [
        ("ingest", DEV, "paystream ingest: invalid setting STRIPE_WEBHOOK_SECRETS:"),
        ("admin", DEV, "paystream admin: invalid setting PAYSTREAM_ADMIN_TOKEN:"),
        # PAYSTREAM_ENV is required by every long-running process (only `paystream up` sets it)
        (
            "admin",
            {"PAYSTREAM_ADMIN_TOKEN": "a" * 40},
            "paystream admin: invalid setting PAYSTREAM_ENV:",
        ),
    ],
)
def test_a_bad_setting_is_one_line_and_exit_2(
    module: str, env: dict[str, str], line: str, tmp_path: object
) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "PAYSTREAM_"))}
    done = subprocess.run(
        [sys.executable, "-m", module],
        env={**clean, **env},
        cwd=str(tmp_path),  # no .env file
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(line), done.stderr
