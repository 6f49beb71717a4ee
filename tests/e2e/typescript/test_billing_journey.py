"""The customer's journey through the Next.js example, in a real browser.

``paystream up`` (the whole pipeline, as ``make run`` starts it, with its product
notifications pointed at the app), the example built by ``npm run build`` (``next_build``)
served by ``next start``, the Stripe stand-in for the Billing Portal, and headless
Chromium. The customer comes back from Checkout before paystream has the payment
("confirming"), a signed ``checkout.session.completed`` reaches ingest, the customer
finishes onboarding through the Server Action, the page says active; a failed payment
later, the page says so and its "Update payment method" opens a portal session that leads
back.

With ``PAYSTREAM_APP_WEBHOOK_SECRET`` set the example caches the state per customer (for
longer than the test runs), so each change reaches the page only through paystream's
app-webhook sink: its signed ``billing_state.changed`` (SPEC §6) to the example's
notifications route, which revalidates that customer's cache. A forged notification and a
signed body that is none are refused and change nothing.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devstack.stripe_api import StripeApiStandin
from paystream.commands.doctor.checks import Finding
from paystream.commands.doctor.shell import DoctorSettings, app_webhook_findings
from paystream.runtime.broker import free_port
from paystream.signing import sign_header
from paystream.storyline import storyline
from paystream.vocabulary import APP_SIGNATURE_HEADER, BILLING_STATE_CHANGED
from tests.e2e.conftest import Service, http_ok, wait_until
from tests.e2e.typescript.conftest import EXAMPLE, NEXT_ENV, NodeRun, billing_state, node_binary

CHROMIUM = "/usr/bin/chromium"
APP_SECRET = "journey-app-secret-" + "0" * 16
API_TOKEN = "journey-api-token-" + "1" * 16
NOTIFY_SECRET = "whsec_journey_" + "2" * 24
STRIPE_KEY = "sk_test_journey_portal"
#: long enough that no cached state runs out during the test: only notifications refresh it
CACHE_S = "600"
#: how long the page may take to show a change (its polls back off to one per 10 s)
SEE_MS = 30_000


@dataclass
class Journey:
    customer: str
    user: str
    ingest: str
    webhook_secret: str
    app: str
    stripe: StripeApiStandin
    up: Service

    def wait_for_state(self, state: str, what: str) -> None:
        wait_until(lambda: self.state() == state, 60, what, [self.up])

    def send_stripe(self, event: dict[str, Any]) -> None:
        body = json.dumps(event).encode()
        headers = {"Stripe-Signature": sign_header(body, self.webhook_secret)}
        status, answer = post(self.ingest + "/webhooks/stripe", body, headers)
        assert status == 200, answer

    def state(self) -> str | None:
        """The customer's state as paystream has it (ingest's ``GET /v1/customers/{id}``)."""
        return billing_state(f"{self.ingest}/v1/customers/{self.customer}", API_TOKEN)

    def notify(self, previous: str | None, state: str, secret: str) -> int:
        """A notification as paystream's app-webhook sink POSTs one (SPEC §6), signed with
        ``secret``."""
        event: dict[str, Any] = {
            "id": f"bsc_{secrets.token_hex(8)}",
            "type": BILLING_STATE_CHANGED,
            "created": int(time.time()),
            "stripe_customer_id": self.customer,
            "user_id": self.user,
            "previous_state": previous,
            "state": state,
        }
        return self.notify_raw(json.dumps(event).encode(), secret)

    def notify_raw(self, body: bytes, secret: str) -> int:
        headers = {APP_SIGNATURE_HEADER: sign_header(body, secret)}
        return post(self.app + "/api/paystream/notifications", body, headers)[0]

    def app_state(self) -> str | None:
        return self.app_answer().get("billingState")

    def app_answer(self) -> dict[str, Any]:
        """What the billing page's polls get from the app right now."""
        url = self.app + "/api/paystream/billing-state"
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (loopback)
            answer: dict[str, Any] = json.loads(response.read())
            return answer


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json", **headers}
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def start_up(
    services: Callable[..., Service], tmp_path: Path, app: str
) -> tuple[Service, str, str]:
    """``paystream up`` with the app secrets the example uses and its notifications sent to
    the app at ``app``: (it, ingest URL, webhook secret)."""
    ports = {name: free_port() for name in ("BROKER", "INGEST", "ADMIN", "WORKER", "SINKS_METRICS")}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "PAYSTREAM_"))}
    env.update({f"PAYSTREAM_{name}_PORT": str(port) for name, port in ports.items()})
    env.update(
        PAYSTREAM_DATA_DIR=str(tmp_path / "var"),
        PAYSTREAM_TOPIC_PARTITIONS="2",
        PAYSTREAM_APP_SECRETS=APP_SECRET,
        PAYSTREAM_API_TOKEN=API_TOKEN,
        PAYSTREAM_APP_WEBHOOK_URL=app + "/api/paystream/notifications",
        PAYSTREAM_APP_WEBHOOK_SECRET=NOTIFY_SECRET,
    )
    up = services("up", ["up"], env)
    banner = wait_until(
        lambda: "Ctrl-C stops everything" in up.log.read_text() and up.log.read_text(),
        90,
        "paystream up to print its banner",
        [up],
    )
    secret = re.search(r"webhook secret\s+(whsec_\w+)", str(banner))
    assert secret, banner
    ingest = f"http://127.0.0.1:{ports['INGEST']}"
    wait_until(lambda: http_ok(ingest + "/readyz"), 60, "ingest to be ready", [up])
    return up, ingest, secret.group(1)


@pytest.fixture
def journey(
    next_build: NodeRun, services: Callable[..., Service], tmp_path: Path
) -> Iterator[Journey]:
    assert next_build.code == 0, "examples/nextjs does not build (see test_nextjs_example.py)"
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} missing: `make install` installs Debian's chromium")
    port = free_port()
    app = f"http://127.0.0.1:{port}"
    up, ingest, webhook_secret = start_up(services, tmp_path, app)
    customer, user = f"cus_journey{secrets.token_hex(5)}", "user_journey"
    with StripeApiStandin(STRIPE_KEY) as stripe:
        stripe.add_customers([customer])
        env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "PAYSTREAM_"))}
        env.update(
            NEXT_ENV,
            PAYSTREAM_INGEST_URL=ingest,
            PAYSTREAM_APP_SECRET=APP_SECRET,
            PAYSTREAM_API_TOKEN=API_TOKEN,
            PAYSTREAM_APP_WEBHOOK_SECRET=NOTIFY_SECRET,
            PAYSTREAM_STATE_CACHE_S=CACHE_S,
            STRIPE_SECRET_KEY=STRIPE_KEY,
            STRIPE_API_BASE=stripe.url,
            EXAMPLE_SIGNED_IN_USER=f"{user}:{customer}",
        )
        log = tmp_path / "next.log"
        next_bin = EXAMPLE / "node_modules" / "next" / "dist" / "bin" / "next"
        args = [node_binary(), str(next_bin), "start", "-H", "127.0.0.1", "-p", str(port)]
        with open(log, "wb") as out:
            server = subprocess.Popen(
                args, cwd=EXAMPLE, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        try:
            deadline = time.monotonic() + 60
            while not http_ok(app + "/") and server.poll() is None:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            assert server.poll() is None, f"next start exited:\n{log.read_text()}"
            yield Journey(customer, user, ingest, webhook_secret, app, stripe, up)
        finally:
            server.terminate()
            server.wait(20)
            print(log.read_text(errors="replace"))


@pytest.fixture
def page() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        context = browser.new_context()
        context.set_default_timeout(30_000)
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


def doctor_probe(url: str) -> Finding:
    """``paystream doctor``'s notification check, with only the endpoint's settings."""
    settings = DoctorSettings(  # type: ignore[call-arg]
        _env_file=None, paystream_app_webhook_url=url, paystream_app_webhook_secret=NOTIFY_SECRET
    )
    (finding,) = app_webhook_findings(settings)
    return finding


def test_checkout_onboarding_and_a_failed_payment_as_the_customer_sees_them(
    journey: Journey, page: Any
) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=SEE_MS)
    started = time.monotonic()
    status = page.get_by_role("status")
    events = storyline(journey.customer, int(time.time()) - 10, step=1)
    checkout, failed = events[0], events[2]
    assert (checkout["type"], failed["type"]) == (
        "checkout.session.completed",
        "invoice.payment_failed",
    )

    # Back from Stripe Checkout before paystream has the payment: confirming, never "paid".
    page.goto(journey.app + "/billing?session_id=cs_test_journey")
    expect(status).to_contain_text("confirming your payment")
    assert journey.app_answer() == {"status": "syncing"}
    # Only paystream's own notifications count: a forged one, or a signed body that is no
    # notification, is refused and leaves the cached state as it is.
    assert journey.notify(None, "active", secret="whsec_forged" + "3" * 20) == 401
    assert (
        journey.notify_raw(json.dumps({"type": BILLING_STATE_CHANGED}).encode(), NOTIFY_SECRET)
        == 400
    )
    assert journey.app_answer() == {"status": "syncing"}
    # paystream doctor's two probes of this real route: the unsigned one refused, the signed
    # one's signature accepted, and neither changes the cached state
    probed = doctor_probe(journey.app + "/api/paystream/notifications")
    assert probed.ok, probed
    assert journey.app_answer() == {"status": "syncing"}

    journey.send_stripe(checkout)
    journey.wait_for_state("onboarding_pending", "paystream to have the payment")
    expect(status).to_contain_text("Payment received")  # notified: the cache was revalidated

    # Onboarding through the Server Action, then "active" once paystream has the step.
    status.get_by_role("link", name="Continue onboarding").click()
    page.get_by_role("button", name="Finish setup").click()
    page.wait_for_url(re.compile(r"/billing\?onboarded=1$"))
    # "finishing" while paystream has not applied the step yet; already "all set" when it has
    expect(status).to_contain_text(re.compile("Finishing your setup|You are all set"))
    journey.wait_for_state("active", "paystream to have onboarding.completed")
    expect(status).to_contain_text("You are all set")

    # A renewal fails: the customer's next visit says so, with its next step.
    journey.send_stripe(failed)
    journey.wait_for_state("payment_failed", "paystream to have the failure")
    wait_until(
        lambda: journey.app_state() == "payment_failed", 30, "its notification", [journey.up]
    )
    page.goto(journey.app + "/billing")
    expect(status).to_contain_text("Your last payment failed")
    update = status.get_by_role("link", name="Update payment method")
    expect(update).to_have_attribute("href", "/billing/portal")

    # The next step works: a Stripe Billing Portal session for this customer, and back.
    update.click()
    page.wait_for_url(re.compile(re.escape(journey.stripe.url) + r"/p/session\?secret=test_"))
    expect(page.locator("#customer")).to_have_text(journey.customer)
    (session,) = journey.stripe.state()["portal_sessions"]
    assert session["return_url"] == journey.app + "/billing"
    page.locator("#return").click()
    page.wait_for_url(journey.app + "/billing")
    expect(status).to_contain_text("Your last payment failed")
    print(f"the customer's journey took {time.monotonic() - started:.1f}s")
