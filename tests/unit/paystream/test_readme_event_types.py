"""The README's list of event types to enable is the list the pipeline handles."""

from __future__ import annotations

import re
from pathlib import Path

from paystream.vocabulary import HANDLED_STRIPE_EVENT_TYPES

README = Path(__file__).resolve().parents[3] / "README.md"


def test_the_readme_lists_every_handled_event_type_and_no_other() -> None:
    block = re.search(
        r"<!-- handled-event-types -->(.*?)<!-- /handled-event-types -->",
        README.read_text(encoding="utf-8"),
        re.DOTALL,
    )
    assert block is not None, "README.md lost its handled-event-types block"
    listed = re.findall(r"`([a-z_.]+)`", block.group(1))
    assert listed == list(HANDLED_STRIPE_EVENT_TYPES)
