"""``paystream topics``: create or check every topic with its partitions and retention."""

from __future__ import annotations

from paystream.command_help import command_parser
from paystream.runtime.topics_admin import config_differences, ensure_topics, topic_configs
from paystream.settings import CommonSettings, load_settings


def main(argv: list[str]) -> int:
    parser = command_parser("topics")
    parser.parse_args(argv)
    settings = load_settings(CommonSettings)
    topics = settings.topics
    specs = topics.specs()
    created = ensure_topics(settings.admin_config(), specs, settings.paystream_replication_factor)
    existing = [s.name for s in specs if s.name not in created]
    differs = config_differences(specs, topic_configs(settings.admin_config(), existing))
    for spec in specs:
        state = "created" if spec.name in created else "ok"
        print(f"{state:8} {spec.name} partitions={spec.partitions}")
    # An existing topic is never altered here: say what differs (kafka-configs.sh changes it).
    for line in differs:
        print(f"differs  {line}")
    return 0
