// The example's pure parts, compiled by the type check (tests/e2e/typescript/test_nextjs_example.py
// runs `tsc -p tsconfig.json --noEmit false --outDir $PAYSTREAM_EXAMPLE_BUILD`), then run here
// with `node --import ./test/register.mjs` (which resolves `@/...` and `@paystream/client`).
import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, test } from "node:test";

const build = process.env.PAYSTREAM_EXAMPLE_BUILD;
const load = (path) => import(pathToFileURL(join(build, path)).href);
const skip = build ? false : "PAYSTREAM_EXAMPLE_BUILD is unset (run through pytest)";

const STATES = ["onboarding_pending", "active", "payment_failed", "paused", "refunded", "canceled"];
const known = (billingState) => ({ status: "known", billingState, changedAtMs: 1, onboarding: null });

describe("billing view", { skip }, () => {
  test("no state is a dead end: every view polls or offers an action", async () => {
    const { describeBilling, CHECKOUT_GRACE_MS, SLOW_AFTER_MS } = await load("lib/billing-view.js");
    const pageStates = [
      { status: "loading" },
      { status: "unavailable" },
      { status: "signed_out" },
      { status: "syncing" },
      { status: "no_customer" },
      ...STATES.map(known),
    ];
    let views = 0;
    for (const state of pageStates) {
      for (const fromCheckout of [false, true]) {
        for (const waitedMs of [0, SLOW_AFTER_MS, CHECKOUT_GRACE_MS, 3_600_000]) {
          const view = describeBilling(state, { fromCheckout, waitedMs });
          const where = JSON.stringify({ state, fromCheckout, waitedMs });
          assert.ok(view.keepPolling || view.action !== null, `dead end: ${where}`);
          assert.ok(view.title && view.body, where);
          views++;
        }
      }
    }
    assert.equal(views, pageStates.length * 8);
  });

  test("each billing state has its own message, and settled states stop polling", async () => {
    const { describeBilling } = await load("lib/billing-view.js");
    const titles = new Set();
    for (const state of STATES) {
      const view = describeBilling(known(state), { fromCheckout: false, waitedMs: 0 });
      assert.equal(view.keepPolling, false, state);
      assert.notEqual(view.action, null, state);
      titles.add(view.title);
    }
    assert.equal(titles.size, STATES.length);
    const failed = describeBilling(known("payment_failed"), { fromCheckout: false, waitedMs: 0 });
    assert.equal(failed.tone, "error");
    assert.match(failed.title, /payment failed/);
  });

  test("a redirect from checkout is not proof of payment", async () => {
    const { describeBilling, CHECKOUT_GRACE_MS, SLOW_AFTER_MS } = await load("lib/billing-view.js");
    // paystream has not seen the payment: "confirming", polling — never "you are all set"
    const syncing = describeBilling({ status: "syncing" }, { fromCheckout: true, waitedMs: 0 });
    assert.equal(syncing.keepPolling, true);
    assert.match(syncing.title, /confirming your payment/);
    assert.notEqual(syncing.tone, "success");
    // an earlier failed payment is confirmed again before it is shown ...
    const early = describeBilling(known("payment_failed"), { fromCheckout: true, waitedMs: 1000 });
    assert.equal(early.keepPolling, true);
    // ... and shown for what it is once the grace period is over
    const late = describeBilling(known("payment_failed"), {
      fromCheckout: true,
      waitedMs: CHECKOUT_GRACE_MS,
    });
    assert.equal(late.tone, "error");
    // syncing for long: says so, offers support, still polls
    const slow = describeBilling({ status: "syncing" }, { fromCheckout: true, waitedMs: SLOW_AFTER_MS });
    assert.equal(slow.keepPolling, true);
    assert.equal(slow.action?.label, "Contact support");
    // the state decides success
    const paid = describeBilling(known("onboarding_pending"), { fromCheckout: true, waitedMs: 0 });
    assert.equal(paid.tone, "success");
  });

  test("back from onboarding, a pending state is 'finishing' (polling) until the grace ends", async () => {
    const { describeBilling, CHECKOUT_GRACE_MS } = await load("lib/billing-view.js");
    const pending = known("onboarding_pending");
    const soon = describeBilling(pending, { fromCheckout: false, fromOnboarding: true, waitedMs: 0 });
    assert.equal(soon.keepPolling, true);
    assert.match(soon.title, /Finishing your setup/);
    const later = { fromCheckout: false, fromOnboarding: true, waitedMs: CHECKOUT_GRACE_MS };
    assert.equal(describeBilling(pending, later).action?.label, "Continue onboarding");
    const done = describeBilling(known("active"), { fromCheckout: false, fromOnboarding: true, waitedMs: 0 });
    assert.equal(done.title, "You are all set");
    assert.equal(done.keepPolling, false);
  });

  test("the route's answer carries the state, not the customer's details", async () => {
    const { billingStateAnswer } = await load("lib/billing-view.js");
    assert.deepEqual(billingStateAnswer(null), { status: "syncing" });
    const record = {
      stripe_customer_id: "cus_1",
      user_id: "u1",
      email: "a@example.com",
      billing_state: "paused",
      billing_state_changed_at_ms: 5,
      cause_event_id: "evt_1",
      cause_event_type: "customer.subscription.paused",
      onboarding: "completed",
      livemode: false,
    };
    assert.deepEqual(billingStateAnswer({ ...record, billing_state: null }), { status: "syncing" });
    assert.deepEqual(billingStateAnswer(record), {
      status: "known",
      billingState: "paused",
      changedAtMs: 5,
      onboarding: "completed",
    });
  });

  test("polling backs off up to 10 s", async () => {
    const { nextPollDelayMs } = await load("lib/billing-view.js");
    const delays = [0, 1, 2, 3, 10, 50].map(nextPollDelayMs);
    assert.deepEqual(delays.slice(0, 4), [1000, 1500, 2250, 3375]);
    assert.equal(delays[4], 10_000);
    assert.equal(delays[5], 10_000);
  });
});

describe("the example's sign-in stand-in", { skip }, () => {
  test("EXAMPLE_SIGNED_IN_USER is read only in its exact shape", async () => {
    const { parseExampleUser } = await load("lib/auth.js");
    assert.deepEqual(parseExampleUser("user_1:cus_Abc123"), { id: "user_1", stripeCustomerId: "cus_Abc123" });
    for (const bad of [undefined, "", "user_1", "user_1:", ":cus_1", "user_1:sub_1", "a:cus_1:x", "a b:cus_1"]) {
      assert.equal(parseExampleUser(bad), undefined, String(bad));
    }
  });

  test("EXAMPLE_SIGNED_IN_USER is honoured only beside a local paystream", async () => {
    const { exampleUserAllowed } = await load("lib/auth.js");
    for (const local of ["http://127.0.0.1:8080", "http://localhost:8080/", "http://[::1]:8080", "http://127.1.2.3"]) {
      assert.equal(exampleUserAllowed(local), true, local);
    }
    const remote = [undefined, "", "not a url", "https://ingest.acme.com", "http://10.0.0.5:8080", "http://127.0.0.1.acme.com"];
    for (const url of remote) {
      assert.equal(exampleUserAllowed(url), false, String(url));
    }
  });
});

describe("the state cache's setting", { skip }, () => {
  test("PAYSTREAM_STATE_CACHE_S: whole seconds, 60 when unset, anything else refused", async () => {
    const { stateCacheSeconds } = await load("lib/paystream.js");
    const saved = process.env.PAYSTREAM_STATE_CACHE_S;
    try {
      for (const [value, seconds] of [[undefined, 60], ["", 60], ["600", 600], [" 5 ", 5]]) {
        if (value === undefined) delete process.env.PAYSTREAM_STATE_CACHE_S;
        else process.env.PAYSTREAM_STATE_CACHE_S = value;
        assert.equal(stateCacheSeconds(), seconds, String(value));
      }
      for (const bad of ["0", "-1", "1.5", "60s", "1e3", "abc"]) {
        process.env.PAYSTREAM_STATE_CACHE_S = bad;
        assert.throws(() => stateCacheSeconds(), /PAYSTREAM_STATE_CACHE_S/, bad);
      }
    } finally {
      if (saved === undefined) delete process.env.PAYSTREAM_STATE_CACHE_S;
      else process.env.PAYSTREAM_STATE_CACHE_S = saved;
    }
  });
});

describe("onboarding route helpers", { skip }, () => {
  test("event ids are stable per customer, so a double submit counts once", async () => {
    const { onboardingEvent } = await load("lib/onboarding.js");
    const first = onboardingEvent("completed", "cus_1", "u1");
    assert.deepEqual(first, onboardingEvent("completed", "cus_1", "u1"));
    assert.deepEqual(first, {
      id: "onboarding.completed:cus_1",
      type: "onboarding.completed",
      stripe_customer_id: "cus_1",
      user_id: "u1",
    });
    assert.notEqual(onboardingEvent("completed", "cus_2", "u1").id, first.id);
    assert.equal(onboardingEvent("linked", "cus_1", "u1").id, "customer.linked:cus_1:u1");
    assert.equal(onboardingEvent("linked", "cus_1", "u1").user_id, "u1");
  });

  test("only known steps from a JSON body are accepted", async () => {
    const { stepOf } = await load("lib/onboarding.js");
    const post = (body) => new Request("http://app.test/api", { method: "POST", body });
    assert.equal(await stepOf(post(JSON.stringify({ step: "completed" }))), "completed");
    assert.equal(await stepOf(post(JSON.stringify({ step: "toString" }))), null);
    assert.equal(await stepOf(post(JSON.stringify({ step: "paid" }))), null);
    assert.equal(await stepOf(post("step=completed")), null);
    assert.equal(await stepOf(post("null")), null);
  });
});
