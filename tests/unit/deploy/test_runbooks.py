"""Every alert links to its section of docs/runbooks.md (``runbook_url``), and the section
exists: the anchor is the one GitHub gives the section's heading."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
RUNBOOKS = ROOT / "docs" / "runbooks.md"
BASE = "https://github.com/paystream/paystream/blob/main/docs/runbooks.md#"
RULES = [
    r
    for g in yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())["groups"]
    for r in g["rules"]
]


def github_anchor(heading: str) -> str:
    """The id GitHub renders for a Markdown heading: lower case, punctuation dropped,
    spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    return {github_anchor(m) for m in re.findall(r"^#{1,6} (.+)$", markdown, re.MULTILINE)}


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("PaystreamNoWebhooks", "paystreamnowebhooks"),
        ("Replaying with `paystream reconcile`", "replaying-with-paystream-reconcile"),
        (
            "The webhook path through Cloudflare or another CDN/WAF",
            "the-webhook-path-through-cloudflare-or-another-cdnwaf",
        ),
    ],
)
def test_github_anchor(heading: str, anchor: str) -> None:
    assert github_anchor(heading) == anchor


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r["alert"])
def test_every_alert_links_to_its_runbook_section(rule: dict[str, Any]) -> None:
    url = rule["annotations"]["runbook_url"]
    assert url.startswith(BASE), url
    anchor = url.removeprefix(BASE)
    assert anchor == github_anchor(rule["alert"])  # its own section, not a neighbour's
    assert anchor in anchors(RUNBOOKS.read_text()), f"docs/runbooks.md has no section {anchor}"


def test_a_missing_section_is_noticed() -> None:
    text = RUNBOOKS.read_text().replace("## PaystreamNoWebhooks\n", "## Something else\n")
    assert "paystreamnowebhooks" not in anchors(text)
