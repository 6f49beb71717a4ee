"""``paystream topics``: create or check every topic with its partitions and retention."""

from __future__ import annotations

from paystream.command_help import command_parser
from paystream.runtime.topics_admin import ensure_topics
from paystream.settings import CommonSettings, load_settings


def main(argv: list[str]) -> int:
    parser = command_parser("topics")
    parser.parse_args(argv)
    settings = load_settings(CommonSettings)
    topics = settings.topics
    created = ensure_topics(
        settings.admin_config(), topics.specs(), settings.paystream_replication_factor
    )
    for spec in topics.specs():
        state = "created" if spec.name in created else "ok"
        print(f"{state:8} {spec.name} partitions={spec.partitions}")
    return 0
