"""The exception queue in a real browser (headless Chromium through Playwright).

A real CRM sink (in a thread) calls the HubSpot stand-in, which answers a permanent error;
the dead letters show up in a real ``paystream admin`` process; the founder logs in, the
stand-in is made healthy, Retry is pressed, the row resolves and the stand-in holds the
contact. A forged POST (no CSRF token) changes nothing.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devstack.commands import crm_command
from devstack.hubspot import HubSpotStandin
from paystream.metrics import PaystreamMetrics
from paystream.runtime.topics_admin import ensure_topics
from schemas.codec import CRM_COMMAND, default_codec
from sinks.app import create_crm_sink
from sinks.settings import SinkSettings
from tests.integration.admin.conftest import ADMIN_TOKEN, AdminProcess, wait_for
from tests.kafka_helpers import consume, produce

pytestmark = pytest.mark.broker

CHROMIUM = "/usr/bin/chromium"
CUSTOMERS = ("cus_Browser1", "cus_Browser2")


@dataclass
class Stack:
    settings: SinkSettings
    hubspot: HubSpotStandin
    admin: AdminProcess
    screenshots: Path


@pytest.fixture(scope="module")
def stack(
    kafka_bootstrap: str, broker_profile: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} missing: `make install` installs Debian's chromium")
    tmp = tmp_path_factory.mktemp("admin-browser")
    prefix = f"b{uuid.uuid4().hex[:10]}."
    with HubSpotStandin() as hubspot:
        settings = SinkSettings(
            kafka_bootstrap_servers=kafka_bootstrap,
            paystream_broker_profile=broker_profile,  # type: ignore[arg-type]
            paystream_topic_prefix=prefix,
            paystream_topic_partitions=2,
            hubspot_api_base=hubspot.url,
            hubspot_access_token=hubspot.token,  # type: ignore[arg-type]
            paystream_sink_writes="enabled",
            paystream_sinks_metrics_port=0,
            paystream_sink_max_attempts=2,
            paystream_sink_backoff_base_s=0.05,
            paystream_sink_backoff_max_s=0.1,
        )
        ensure_topics(kafka_bootstrap, settings.topics.specs())
        # HubSpot refuses every upsert (a permanent 400) until it is made healthy again.
        hubspot.fail_next(400, count=10_000, path="batch/upsert")
        codec = default_codec()
        commands = [crm_command(c, "active", 1_700_000_000 + i) for i, c in enumerate(CUSTOMERS)]
        produce(
            settings,
            settings.topics.sink_crm,
            [(c["customer_id"], codec.encode(CRM_COMMAND, c)) for c in commands],
        )
        stop = threading.Event()
        sink = create_crm_sink(settings, PaystreamMetrics())
        thread = threading.Thread(target=sink.run, args=(stop,), daemon=True)
        thread.start()
        consume(settings, settings.topics.sink_dlq, until=lambda m: len(m) >= 2, timeout=60)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "PAYSTREAM_"))}
        env.update(
            PAYSTREAM_ENV="development",
            KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
            PAYSTREAM_BROKER_PROFILE=broker_profile,
            PAYSTREAM_TOPIC_PREFIX=prefix,
            PAYSTREAM_TOPIC_PARTITIONS="2",
            PAYSTREAM_ADMIN_TOKEN=ADMIN_TOKEN,
        )
        admin = AdminProcess(env, tmp / "admin.log").start()
        try:
            yield Stack(settings, hubspot, admin, tmp)
        finally:
            admin.stop()
            stop.set()
            thread.join(30)


@pytest.fixture
def page(stack: Stack) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        # a zone other than the machine's: the page must show times in the browser's zone
        context = browser.new_context(
            viewport={"width": 1600, "height": 560}, timezone_id="Europe/Paris"
        )
        context.set_default_timeout(20_000)
        page = context.new_page()
        try:
            yield page
        finally:
            context.close()
            browser.close()


def log_in(page: Any, stack: Stack) -> None:
    page.goto(stack.admin.url + "/")
    assert page.url.endswith("/login")
    page.fill("#token", ADMIN_TOKEN)
    page.click("button[type=submit]")
    page.wait_for_url(stack.admin.url + "/")


def rows(page: Any) -> dict[str, str]:
    """customer → status of every row shown."""
    found = {}
    for row in page.locator("tr.row").all():
        customer = row.locator("td").nth(4).inner_text().strip()
        found[customer] = row.locator(".status").inner_text().strip()
    return found


def test_a_forged_post_without_the_csrf_token_changes_nothing(page: Any, stack: Stack) -> None:
    log_in(page, stack)
    assert wait_for(lambda: page.reload() or len(rows(page)) == 2, what="two rows")
    before = rows(page)
    row_id = page.locator("tr.row").first.get_attribute("data-row-id")
    assert row_id
    # 1. The browser's own session cookie attached, but no CSRF token: 403.
    for path in ("/retry", "/dismiss", "/retry-all"):
        answer = page.request.post(
            stack.admin.url + path,
            form={"row_id": row_id, "dismiss_reason": "forged"},
            max_redirects=0,
        )
        assert answer.status == 403, path
        body = answer.text()
        assert row_id not in body and "csrf" not in body.lower()
    # 2. A form on another site posting to the admin: SameSite=Strict keeps the cookie
    #    home, so the admin sees no session at all (401).
    attacker = page.context.new_page()
    attacker.set_content(
        f"""<form id="f" method="post" action="{stack.admin.url}/dismiss">
        <input name="row_id" value="{row_id}"><input name="dismiss_reason" value="forged">
        <button id="go" type="submit">win a prize</button></form>"""
    )
    with attacker.expect_navigation() as navigation:
        attacker.click("#go")
    answer = navigation.value
    assert answer is not None and answer.status == 401
    assert "Please sign in." in attacker.content()
    attacker.close()

    page.reload()
    assert rows(page) == before
    assert consume(stack.settings, stack.settings.topics.admin_exceptions, timeout=3, idle=1) == []


def test_log_in_see_the_failure_retry_and_the_crm_holds_the_state(page: Any, stack: Stack) -> None:
    log_in(page, stack)
    assert wait_for(lambda: page.reload() or len(rows(page)) == 2, what="two rows")
    assert set(rows(page)) == set(CUSTOMERS)
    assert set(rows(page).values()) == {"open"}
    first = page.locator("tr.row", has_text=CUSTOMERS[0])
    assert first.locator("code").first.inner_text() == "bad_request"
    link = first.locator("a").get_attribute("href")
    assert link == f"https://dashboard.stripe.com/test/customers/{CUSTOMERS[0]}"
    # the time is kept in UTC and shown in the browser's zone (Paris: CET/CEST)
    when = first.locator("time")
    assert (when.get_attribute("title") or "").endswith(" UTC")
    assert "UTC" not in when.inner_text() and re.search(r"GMT\+[12]|CES?T", when.inner_text())
    assert page.locator("#open-total").inner_text() == "2 open"
    shot = stack.screenshots / "admin.png"
    page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("PAYSTREAM_SCREENSHOT_TO"):
        shutil.copy(shot, os.environ["PAYSTREAM_SCREENSHOT_TO"])
    assert stack.hubspot.contact_by("stripe_customer_id", CUSTOMERS[0]) is None

    stack.hubspot.clear_faults()  # HubSpot is healthy again
    first.locator("button.retry").click()
    page.wait_for_load_state()
    assert "Sent again" in page.locator("#notice").inner_text()

    def resolved() -> bool:
        page.reload()
        return CUSTOMERS[0] not in rows(page)

    wait_for(resolved, timeout=60, what="the retried row to leave the list")
    assert rows(page) == {CUSTOMERS[1]: "open"}
    assert page.locator("#open-total").inner_text() == "1 open"
    contact = stack.hubspot.contact_by("stripe_customer_id", CUSTOMERS[0])
    assert contact is not None and contact["properties"]["billing_state"] == "active"
    metrics = page.request.get(stack.admin.url + "/metrics").text()
    assert re.search(r"^paystream_exceptions_open 1\.0$", metrics, re.M)
    assert re.search(
        r'^paystream_manual_interventions_total\{action="retry"\} 1\.0$', metrics, re.M
    )
