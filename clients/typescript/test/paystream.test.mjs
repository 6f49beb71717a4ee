// `new Paystream({ ... })`, the headers every call carries (User-Agent, X-Request-Id), the
// request id on errors, the Retry-After cap, and the state read through ingest's
// `GET /v1/customers/{id}` (records with and without `subscriptions`), against local
// HTTP servers (node:http).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { describe, test } from "node:test";

import {
  Paystream,
  PaystreamRejectedError,
  PaystreamResponseError,
  PaystreamUnavailableError,
  PaystreamUsageError,
  USER_AGENT,
  VERSION,
  getCustomerState,
  parseCustomerRecord,
} from "@paystream/client";

const TOKEN = "token-that-must-never-appear";
const SECRET = "app_secret_for_unit_tests";
const FAST = { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5 };
const RECORD = {
  stripe_customer_id: "cus_unit",
  user_id: "u1",
  email: null,
  billing_state: "active",
  billing_state_changed_at_ms: 1_700_000_000_000,
  cause_event_id: "evt_1",
  cause_event_type: "invoice.paid",
  onboarding: null,
  livemode: false,
};

async function server(answers) {
  const requests = [];
  const srv = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      requests.push({ method: req.method, url: req.url, headers: req.headers, body, at: Date.now() });
      const answer = answers[Math.min(requests.length - 1, answers.length - 1)];
      res.writeHead(answer.status, { "Content-Type": "application/json", ...answer.headers });
      res.end(typeof answer.body === "string" ? answer.body : JSON.stringify(answer.body ?? {}));
    });
  });
  await new Promise((resolve) => srv.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${srv.address().port}`,
    requests,
    close: () => new Promise((resolve) => srv.closeAllConnections() || srv.close(resolve)),
  };
}

describe("the package", () => {
  test("VERSION is package.json's and the User-Agent names it", () => {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
    assert.equal(VERSION, pkg.version);
    assert.equal(USER_AGENT, `paystream-client-typescript/${pkg.version}`);
  });
});

describe("new Paystream({ ... })", () => {
  test("reads the state through ingest's /v1/customers/{id} with the bearer token", async (t) => {
    const srv = await server([{ status: 200, body: RECORD }]);
    t.after(srv.close);
    const paystream = new Paystream({ ingestUrl: `${srv.url}/ps`, apiToken: TOKEN, userAgent: "my-app/1.2" });
    assert.deepEqual(await paystream.getCustomerState("cus_unit"), RECORD);
    const [req] = srv.requests;
    assert.equal(req.url, "/ps/v1/customers/cus_unit");
    assert.equal(req.headers.authorization, `Bearer ${TOKEN}`);
    assert.equal(req.headers["user-agent"], `${USER_AGENT} my-app/1.2`);
    assert.match(req.headers["x-request-id"], /^req_[0-9a-f]{32}$/);
  });

  test("workerUrl, when given, is read instead (an app inside the cluster)", async (t) => {
    const srv = await server([{ status: 404, body: { error: "not_found" } }]);
    t.after(srv.close);
    const paystream = new Paystream({ ingestUrl: "https://unused.invalid", workerUrl: srv.url, apiToken: TOKEN });
    assert.equal(await paystream.getCustomerState("cus_x"), null);
    assert.equal(srv.requests[0].url, "/customers/cus_x");
  });

  test("sends app events signed with appSecret, one request id for every retry", async (t) => {
    const srv = await server([
      { status: 503, body: { error: "unavailable" } },
      { status: 200, body: { received: true, id: "e1" }, headers: { "X-Request-Id": "req_from_ingest" } },
    ]);
    t.after(srv.close);
    const paystream = new Paystream({ ingestUrl: srv.url, appSecret: SECRET, retry: FAST });
    const sent = await paystream.sendAppEvent({
      id: "e1",
      type: "onboarding.started",
      stripe_customer_id: "cus_unit",
    });
    assert.equal(sent.attempts, 2);
    assert.equal(sent.requestId, "req_from_ingest", "the id paystream answered with");
    const ids = srv.requests.map((r) => r.headers["x-request-id"]);
    assert.equal(new Set(ids).size, 1);
    assert.ok(srv.requests[0].headers["paystream-signature"].startsWith("t="));
  });

  test("a caller's own request id is sent as given", async (t) => {
    const srv = await server([{ status: 404 }]);
    t.after(srv.close);
    await new Paystream({ ingestUrl: srv.url, apiToken: TOKEN }).getCustomerState("cus_1", {
      requestId: "req_mine",
    });
    assert.equal(srv.requests[0].headers["x-request-id"], "req_mine");
  });

  test("each method names the one setting it misses; the constructor checks URLs", async () => {
    const paystream = new Paystream({ ingestUrl: "http://127.0.0.1:1" });
    await assert.rejects(
      paystream.sendAppEvent({ type: "onboarding.started", stripe_customer_id: "cus_1" }),
      (err) => err instanceof PaystreamUsageError && /PAYSTREAM_APP_SECRET/.test(err.message),
    );
    await assert.rejects(
      paystream.getCustomerState("cus_1"),
      (err) => err instanceof PaystreamUsageError && /PAYSTREAM_API_TOKEN/.test(err.message),
    );
    await assert.rejects(paystream.verifyWebhook("{}", "t=1,v1=00"), /PAYSTREAM_APP_WEBHOOK_SECRET/);
    assert.throws(() => new Paystream({}), /PAYSTREAM_INGEST_URL/);
    assert.throws(() => new Paystream({ ingestUrl: "ftp://x" }), PaystreamUsageError);
  });

  test("fromEnv reads the PAYSTREAM_ variables, webhook secrets comma-separated", async (t) => {
    const srv = await server([{ status: 200, body: RECORD }]);
    t.after(srv.close);
    const paystream = Paystream.fromEnv({
      PAYSTREAM_INGEST_URL: srv.url,
      PAYSTREAM_API_TOKEN: TOKEN,
      PAYSTREAM_APP_WEBHOOK_SECRET: "old, new",
    });
    assert.equal((await paystream.getCustomerState("cus_unit"))?.billing_state, "active");
    const err = await paystream.verifyWebhook("{}", "t=1,v1=00").catch((e) => e);
    assert.equal(err.code, "invalid_signature", "secrets were read: the header is what fails");
    assert.throws(() => Paystream.fromEnv({}), /PAYSTREAM_INGEST_URL/);
  });
});

describe("errors carry the request id, never the token", () => {
  test("401 from ingest", async (t) => {
    const srv = await server([
      { status: 401, body: { error: "unauthorized" }, headers: { "X-Request-Id": "req_401" } },
    ]);
    t.after(srv.close);
    const err = await getCustomerState({ ingestUrl: srv.url, apiToken: TOKEN }, "cus_secret").catch((e) => e);
    assert.ok(err instanceof PaystreamRejectedError);
    assert.equal(err.requestId, "req_401");
    assert.match(err.message, /req_401/);
    const shown = `${err.message} ${err.stack} ${JSON.stringify(err)}`;
    assert.ok(!shown.includes(TOKEN) && !shown.includes("cus_secret"), shown);
  });

  test("503 every time: the id that was sent", async (t) => {
    const srv = await server([{ status: 503, body: { error: "unavailable" } }]);
    t.after(srv.close);
    const err = await getCustomerState({ ingestUrl: srv.url, apiToken: TOKEN, retry: FAST }, "cus_1").catch(
      (e) => e,
    );
    assert.ok(err instanceof PaystreamUnavailableError);
    assert.equal(err.requestId, srv.requests[0].headers["x-request-id"]);
    assert.equal(err.attempts, 3);
  });

  test("a 200 that is not a record", async (t) => {
    const srv = await server([{ status: 200, body: { nope: 1 }, headers: { "X-Request-Id": "req_bad" } }]);
    t.after(srv.close);
    const err = await getCustomerState({ ingestUrl: srv.url, apiToken: TOKEN }, "cus_1").catch((e) => e);
    assert.ok(err instanceof PaystreamResponseError);
    assert.equal(err.requestId, "req_bad");
  });
});

describe("Retry-After", () => {
  test("is waited for when within maxRetryAfterMs", async (t) => {
    const srv = await server([{ status: 503, headers: { "Retry-After": "1" } }, { status: 200, body: RECORD }]);
    t.after(srv.close);
    const config = { ingestUrl: srv.url, apiToken: TOKEN, retry: { ...FAST, maxRetryAfterMs: 2000 } };
    assert.equal((await getCustomerState(config, "cus_unit"))?.billing_state, "active");
    const waited = srv.requests[1].at - srv.requests[0].at;
    assert.ok(waited >= 950, `waited ${waited} ms for Retry-After: 1`);
  });

  test("above the cap ends the call at once, with what the server asked for", async (t) => {
    const srv = await server([{ status: 503, headers: { "Retry-After": "120" } }, { status: 200, body: RECORD }]);
    t.after(srv.close);
    const started = Date.now();
    const err = await getCustomerState({ ingestUrl: srv.url, apiToken: TOKEN, retry: FAST }, "cus_1").catch(
      (e) => e,
    );
    assert.ok(err instanceof PaystreamUnavailableError, String(err));
    assert.equal(err.retryAfterMs, 120_000);
    assert.equal(err.attempts, 1);
    assert.equal(srv.requests.length, 1);
    assert.ok(Date.now() - started < 1000);
  });
});

describe("records with and without subscriptions", () => {
  test("a record without them (an older paystream) parses and has none", () => {
    assert.equal("subscriptions" in parseCustomerRecord(RECORD), false);
    assert.equal("subscriptions" in parseCustomerRecord({ ...RECORD, subscriptions: null }), false);
  });

  test("subscriptions, as the worker sends them, are kept as sent", () => {
    const subscriptions = [
      { id: "sub_1", status: "failing", since_ms: 3000 },
      { id: "sub_2", status: "ended", since_ms: 2000 },
      { id: null, status: "paid", since_ms: 1000 },
    ];
    assert.deepEqual(parseCustomerRecord({ ...RECORD, subscriptions }).subscriptions, subscriptions);
  });

  for (const [what, subscriptions] of [
    ["a string", "sub_1"],
    ["a map by id", { sub_1: { id: "sub_1", status: "paid", since_ms: 1 } }],
    ["an entry without status", [{ id: "sub_1", since_ms: 1 }]],
    ["a status paystream never sends", [{ id: "sub_1", status: "active", since_ms: 1 }]],
    ["an entry without since_ms", [{ id: "sub_1", status: "paid" }]],
    ["a list entry that is not an object", ["sub_1"]],
  ]) {
    test(`subscriptions as ${what} are a response error`, () => {
      assert.throws(() => parseCustomerRecord({ ...RECORD, subscriptions }), PaystreamResponseError);
    });
  }
});
