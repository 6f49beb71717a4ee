"""``paystream admin``: read the settings once, then serve until SIGINT/SIGTERM."""

from __future__ import annotations

import sys

from admin.app import create_app
from admin.settings import AdminSettings
from paystream import cli
from paystream.serve import serve


def main(argv: list[str]) -> int:
    return serve(
        argv,
        name="admin",
        description="The exception-queue web view.",
        settings_model=AdminSettings,
        create_app=create_app,
        address=lambda s: (s.paystream_admin_host, s.paystream_admin_port),
    )


if __name__ == "__main__":  # ``python -m admin``: as ``paystream admin`` (one-line errors)
    sys.exit(cli.main(["admin", *sys.argv[1:]]))
