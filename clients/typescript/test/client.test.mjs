// Unit tests of the client against local HTTP servers (node:http): signing, retries,
// errors. The tests against the real paystream services are in e2e.test.mjs.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { createServer } from "node:http";
import { describe, test } from "node:test";

import {
  BILLING_STATES,
  PaystreamError,
  PaystreamRejectedError,
  PaystreamResponseError,
  PaystreamUnavailableError,
  PaystreamUsageError,
  appEventsConfigFromEnv,
  backoffDelayMs,
  createAppEvent,
  customerStateConfigFromEnv,
  getCustomerState,
  hasAccess,
  parseCustomerRecord,
  parseRetryAfter,
  retryPolicy,
  sendAppEvent,
  signAppEvent,
} from "@paystream/client";

const FAST = { maxAttempts: 4, baseDelayMs: 1, maxDelayMs: 20 };
const SECRET = "app_secret_for_unit_tests";
const TOKEN = "token-that-must-never-appear";

/** The receiving side of the scheme, written independently with node:crypto. */
function verifies(body, header, secret) {
  const parts = Object.fromEntries(header.split(",").map((kv) => kv.split("=")));
  const expected = createHmac("sha256", secret).update(`${parts.t}.${body}`).digest("hex");
  return parts.v1 === expected;
}

/** A local server answering with `answers[i]` to the i-th request (the last one repeats). */
async function server(answers) {
  const requests = [];
  const srv = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      requests.push({ method: req.method, url: req.url, headers: req.headers, body });
      const answer = answers[Math.min(requests.length - 1, answers.length - 1)];
      if (answer === "hang") {
        return; // never answers: the client's timeout must fire
      }
      res.writeHead(answer.status, { "Content-Type": "application/json", ...answer.headers });
      res.end(typeof answer.body === "string" ? answer.body : JSON.stringify(answer.body ?? {}));
    });
  });
  await new Promise((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${srv.address().port}`;
  return {
    url,
    requests,
    close: () => new Promise((resolve) => srv.closeAllConnections() || srv.close(resolve)),
  };
}

const receipt = (req) => ({ status: 200, body: { received: true, id: JSON.parse(req).id } });

describe("signAppEvent", () => {
  test("is HMAC-SHA256 of '{t}.{body}' as the receiver computes it", async () => {
    const body = JSON.stringify({ id: "a", type: "onboarding.completed" });
    const header = await signAppEvent(body, SECRET, { timestamp: 1_700_000_000 });
    assert.match(header, /^t=1700000000,v1=[0-9a-f]{64}$/);
    assert.ok(verifies(body, header, SECRET));
    assert.ok(!verifies(`${body} `, header, SECRET), "another body must not verify");
    assert.ok(!verifies(body, header, `${SECRET}x`), "another secret must not verify");
  });

  test("uses the current time by default", async () => {
    const before = Math.floor(Date.now() / 1000);
    const header = await signAppEvent("{}", SECRET);
    const t = Number(header.slice(2, header.indexOf(",")));
    assert.ok(t >= before && t <= before + 2);
  });

  test("refuses an empty secret and a bad timestamp", async () => {
    await assert.rejects(signAppEvent("{}", ""), PaystreamUsageError);
    await assert.rejects(signAppEvent("{}", SECRET, { timestamp: 1.5 }), PaystreamUsageError);
  });

  test("works without a global crypto (Node 18) through node:crypto's webcrypto", () => {
    const script = `
      Object.defineProperty(globalThis, "crypto", { value: undefined, configurable: true });
      const { signAppEvent } = await import(${JSON.stringify(new URL("../dist/esm/index.js", import.meta.url).href)});
      process.stdout.write(await signAppEvent("{}", "s", { timestamp: 1 }));`;
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script]).toString();
    assert.ok(verifies("{}", out, "s"), out);
  });
});

describe("back-off", () => {
  const policy = retryPolicy({ baseDelayMs: 100, maxDelayMs: 1000 });
  for (const [attempt, ceiling] of [
    [1, 100],
    [2, 200],
    [3, 400],
    [4, 800],
    [5, 1000],
    [30, 1000],
  ]) {
    test(`after attempt ${attempt} waits below ${ceiling} ms, with full jitter`, () => {
      assert.equal(backoffDelayMs(attempt, policy, () => 0), 0);
      assert.equal(backoffDelayMs(attempt, policy, () => 0.5), ceiling / 2);
      assert.ok(backoffDelayMs(attempt, policy, () => 0.999999) < ceiling);
    });
  }

  test("Retry-After raises the delay up to maxRetryAfterMs; a longer one stops the retries", () => {
    assert.equal(backoffDelayMs(1, policy, () => 0, 300), 300);
    assert.equal(backoffDelayMs(1, policy, () => 0.5, 0), 50);
    assert.equal(backoffDelayMs(1, policy, () => 0, 5000), 5000, "the default cap is 5 s");
    assert.equal(backoffDelayMs(1, policy, () => 0, 5001), undefined);
    const capped = retryPolicy({ maxRetryAfterMs: 100 });
    assert.equal(backoffDelayMs(1, capped, () => 0, 100), 100);
    assert.equal(backoffDelayMs(1, capped, () => 0, 1000), undefined);
  });

  test("parses Retry-After as seconds or an HTTP date", () => {
    assert.equal(parseRetryAfter("5"), 5000);
    assert.equal(parseRetryAfter(null), undefined);
    assert.equal(parseRetryAfter("soon"), undefined);
    const now = Date.parse("2026-01-01T00:00:00Z");
    assert.equal(parseRetryAfter("Thu, 01 Jan 2026 00:00:03 GMT", now), 3000);
  });

  test("refuses unbounded or nonsensical policies", () => {
    for (const bad of [
      { maxAttempts: 0 },
      { maxAttempts: 100 },
      { maxDelayMs: 1, baseDelayMs: 5 },
      { maxRetryAfterMs: -1 },
      { maxRetryAfterMs: Number.POSITIVE_INFINITY },
    ]) {
      assert.throws(() => retryPolicy(bad), PaystreamUsageError);
    }
  });
});

describe("createAppEvent", () => {
  test("fills id and created once and keeps what is given", async () => {
    const event = await createAppEvent(
      { type: "onboarding.completed", stripe_customer_id: "cus_1" },
      1_700_000_000_123,
    );
    assert.match(event.id, /^app_[0-9a-f-]{36}$/);
    assert.equal(event.created, 1_700_000_000);
    assert.equal(event.user_id, null);
    const given = await createAppEvent({
      id: "onboarding.completed:u1",
      created: 5,
      type: "customer.linked",
      stripe_customer_id: "cus_1",
      user_id: "u1",
    });
    assert.deepEqual(given, {
      id: "onboarding.completed:u1",
      type: "customer.linked",
      created: 5,
      stripe_customer_id: "cus_1",
      user_id: "u1",
    });
  });

  for (const [what, input] of [
    ["customer.linked without user_id", { type: "customer.linked", stripe_customer_id: "cus_1" }],
    ["a customer id that is not cus_", { type: "onboarding.started", stripe_customer_id: "u_1" }],
    ["an unknown type", { type: "onboarding.skipped", stripe_customer_id: "cus_1" }],
    ["an id with a space", { id: "a b", type: "onboarding.started", stripe_customer_id: "cus_1" }],
    ["a fractional created", { created: 1.5, type: "onboarding.started", stripe_customer_id: "cus_1" }],
    ["a user id with a space", { type: "onboarding.started", stripe_customer_id: "cus_1", user_id: "a b" }],
  ]) {
    test(`refuses ${what} before sending`, async () => {
      await assert.rejects(createAppEvent(input), (err) => {
        assert.ok(err instanceof PaystreamUsageError && err.code === "invalid_event");
        return true;
      });
    });
  }
});

describe("sendAppEvent", () => {
  const input = { type: "onboarding.completed", stripe_customer_id: "cus_unit", user_id: "u1" };

  test("retries 503 with the same event id, re-signed, until paystream has it", async (t) => {
    const srv = await server([
      { status: 503, headers: { "Retry-After": "0" }, body: { error: "unavailable" } },
      { status: 503, body: { error: "unavailable" } },
      { status: 200, body: { received: true, id: "fixed-id" } },
    ]);
    t.after(srv.close);
    const sent = await sendAppEvent(
      { ingestUrl: srv.url, secret: SECRET, retry: FAST },
      { ...input, id: "fixed-id" },
    );
    assert.equal(sent.attempts, 3);
    assert.equal(sent.event.id, "fixed-id");
    assert.equal(srv.requests.length, 3);
    for (const req of srv.requests) {
      assert.equal(req.method, "POST");
      assert.equal(req.url, "/events/app");
      assert.equal(req.headers["content-type"], "application/json");
      assert.equal(req.body, srv.requests[0].body, "every attempt sends the same body");
      assert.ok(verifies(req.body, req.headers["paystream-signature"], SECRET));
    }
    assert.deepEqual(JSON.parse(srv.requests[0].body), {
      id: "fixed-id",
      type: "onboarding.completed",
      created: sent.event.created,
      stripe_customer_id: "cus_unit",
      user_id: "u1",
    });
  });

  test("a generated id is the same on every retry", async (t) => {
    const srv = await server([{ status: 503 }, { status: 502 }, { status: 200, body: null }]);
    t.after(srv.close);
    // the server echoes no receipt: the client reports the answer as unexpected
    await assert.rejects(
      sendAppEvent({ ingestUrl: srv.url, secret: SECRET, retry: FAST }, input),
      PaystreamResponseError,
    );
    const ids = srv.requests.map((r) => JSON.parse(r.body).id);
    assert.equal(ids.length, 3);
    assert.equal(new Set(ids).size, 1);
  });

  test("keeps a base path of ingestUrl", async (t) => {
    const srv = await server([{ status: 200, body: { received: true, id: "p" } }]);
    t.after(srv.close);
    await sendAppEvent({ ingestUrl: `${srv.url}/paystream`, secret: SECRET }, { ...input, id: "p" });
    assert.equal(srv.requests[0].url, "/paystream/events/app");
  });

  test("gives up after maxAttempts with a retryable error", async (t) => {
    const srv = await server([{ status: 503, body: { error: "unavailable" } }]);
    t.after(srv.close);
    const err = await sendAppEvent({ ingestUrl: srv.url, secret: SECRET, retry: FAST }, input).catch((e) => e);
    assert.ok(err instanceof PaystreamUnavailableError, String(err));
    assert.ok(err instanceof PaystreamError && err.retryable);
    assert.equal(err.attempts, 4);
    assert.equal(err.status, 503);
    assert.equal(srv.requests.length, 4);
  });

  test("retries network errors (nothing listening)", async () => {
    const srv = await server([{ status: 200 }]);
    await srv.close();
    const err = await sendAppEvent(
      { ingestUrl: srv.url, secret: SECRET, retry: { ...FAST, maxAttempts: 3 } },
      input,
    ).catch((e) => e);
    assert.ok(err instanceof PaystreamUnavailableError, String(err));
    assert.equal(err.attempts, 3);
    assert.equal(err.status, undefined);
    assert.ok(err.cause, "the network error is kept as the cause");
  });

  test("an attempt that hangs times out and is retried", async (t) => {
    const srv = await server(["hang", { status: 200, body: { received: true, id: "h" } }]);
    t.after(srv.close);
    const sent = await sendAppEvent(
      { ingestUrl: srv.url, secret: SECRET, retry: FAST, timeoutMs: 200 },
      { ...input, id: "h" },
    );
    assert.equal(sent.attempts, 2);
  });

  for (const [status, code] of [
    [401, "invalid_signature"],
    [400, "malformed_event"],
    [404, "not_found"],
    [500, "internal"],
  ]) {
    test(`${status} ${code} is permanent: one request, a rejected error`, async (t) => {
      const srv = await server([{ status, body: { error: code } }]);
      t.after(srv.close);
      const err = await sendAppEvent({ ingestUrl: srv.url, secret: SECRET, retry: FAST }, input).catch((e) => e);
      assert.ok(err instanceof PaystreamRejectedError, String(err));
      assert.equal(err.status, status);
      assert.equal(err.code, code);
      assert.equal(err.retryable, false);
      assert.equal(srv.requests.length, 1);
      assert.ok(!err.message.includes(SECRET));
    });
  }

  test("an abort signal stops the retries", async (t) => {
    const srv = await server([{ status: 503, headers: { "Retry-After": "60" } }]);
    t.after(srv.close);
    const controller = new AbortController();
    const pending = sendAppEvent(
      {
        ingestUrl: srv.url,
        secret: SECRET,
        retry: { maxAttempts: 5, baseDelayMs: 10_000, maxDelayMs: 10_000, maxRetryAfterMs: 120_000 },
      },
      input,
      { signal: controller.signal },
    );
    setTimeout(() => controller.abort(new Error("user left")), 100);
    await assert.rejects(pending, /user left/);
    assert.equal(srv.requests.length, 1);
  });

  test("refuses a bad setting before sending", async () => {
    await assert.rejects(sendAppEvent({ ingestUrl: "ftp://x", secret: SECRET }, input), PaystreamUsageError);
    await assert.rejects(sendAppEvent({ ingestUrl: "http://127.0.0.1:1", secret: "" }, input), PaystreamUsageError);
  });
});

const RECORD = {
  stripe_customer_id: "cus_unit",
  user_id: "u1",
  email: null,
  billing_state: "payment_failed",
  billing_state_changed_at_ms: 1_700_000_000_000,
  cause_event_id: "evt_1",
  cause_event_type: "invoice.payment_failed",
  onboarding: "completed",
  livemode: false,
};

describe("getCustomerState", () => {
  test("reads the record with the bearer token", async (t) => {
    const srv = await server([{ status: 200, body: { ...RECORD, added_later: 1 } }]);
    t.after(srv.close);
    const record = await getCustomerState({ workerUrl: srv.url, apiToken: TOKEN }, "cus_unit");
    assert.deepEqual(record, RECORD, "known fields only");
    assert.equal(srv.requests[0].url, "/customers/cus_unit");
    assert.equal(srv.requests[0].headers.authorization, `Bearer ${TOKEN}`);
  });

  test("404 (unknown customer) is null", async (t) => {
    const srv = await server([{ status: 404, body: { error: "not_found" } }]);
    t.after(srv.close);
    assert.equal(await getCustomerState({ workerUrl: srv.url, apiToken: TOKEN }, "cus_x"), null);
  });

  test("escapes the customer id in the path", async (t) => {
    const srv = await server([{ status: 404 }]);
    t.after(srv.close);
    await getCustomerState({ workerUrl: srv.url, apiToken: TOKEN }, "cus_a/../b?c");
    assert.equal(srv.requests[0].url, "/customers/cus_a%2F..%2Fb%3Fc");
  });

  test("401 throws a typed error that carries neither token nor customer", async (t) => {
    const srv = await server([{ status: 401, body: { error: "unauthorized" } }]);
    t.after(srv.close);
    const err = await getCustomerState({ workerUrl: srv.url, apiToken: TOKEN }, "cus_secretive").catch((e) => e);
    assert.ok(err instanceof PaystreamRejectedError);
    assert.equal(err.code, "unauthorized");
    const shown = `${err.message} ${err.stack} ${JSON.stringify(err)}`;
    assert.ok(!shown.includes(TOKEN) && !shown.includes("cus_secretive"), shown);
  });

  test("503 while the worker rebalances is retried", async (t) => {
    const srv = await server([{ status: 503 }, { status: 200, body: RECORD }]);
    t.after(srv.close);
    const record = await getCustomerState({ workerUrl: srv.url, apiToken: TOKEN, retry: FAST }, "cus_unit");
    assert.equal(record?.billing_state, "payment_failed");
  });

  for (const [what, body] of [
    ["an unknown state", { ...RECORD, billing_state: "frozen" }],
    ["a missing field", (({ livemode, ...rest }) => rest)(RECORD)],
    ["a string timestamp", { ...RECORD, billing_state_changed_at_ms: "1" }],
    ["not JSON", "<html>"],
  ]) {
    test(`an answer with ${what} is a response error`, async (t) => {
      const srv = await server([{ status: 200, body }]);
      t.after(srv.close);
      await assert.rejects(getCustomerState({ workerUrl: srv.url, apiToken: TOKEN }, "cus_unit"), PaystreamResponseError);
    });
  }

  test("every billing state and null are accepted", () => {
    for (const state of [...BILLING_STATES, null]) {
      assert.equal(parseCustomerRecord({ ...RECORD, billing_state: state }).billing_state, state);
    }
  });

  test("access: paid states only", () => {
    const access = BILLING_STATES.filter(hasAccess);
    assert.deepEqual(access, ["onboarding_pending", "active"]);
    assert.equal(hasAccess(null), false);
  });

  test("refuses an empty token before sending", async () => {
    await assert.rejects(getCustomerState({ workerUrl: "http://127.0.0.1:1", apiToken: "" }, "cus_1"), PaystreamUsageError);
  });
});

describe("settings from the environment", () => {
  test("names the missing variable and never echoes a value", () => {
    assert.throws(
      () => appEventsConfigFromEnv({ PAYSTREAM_INGEST_URL: "http://i", PAYSTREAM_APP_SECRET: " " }),
      (err) => err instanceof PaystreamUsageError && err.message === "PAYSTREAM_APP_SECRET is not set",
    );
    assert.throws(
      () => customerStateConfigFromEnv({ PAYSTREAM_API_TOKEN: TOKEN }),
      (err) => err.message === "PAYSTREAM_INGEST_URL is not set",
    );
    assert.deepEqual(customerStateConfigFromEnv({ PAYSTREAM_INGEST_URL: "https://i", PAYSTREAM_API_TOKEN: TOKEN }), {
      ingestUrl: "https://i",
      apiToken: TOKEN,
    });
    // the worker's own API, for an app inside the cluster, when it is named
    assert.deepEqual(
      customerStateConfigFromEnv({
        PAYSTREAM_INGEST_URL: "https://i",
        PAYSTREAM_WORKER_URL: "http://w",
        PAYSTREAM_API_TOKEN: TOKEN,
      }),
      { workerUrl: "http://w", apiToken: TOKEN },
    );
  });
});
