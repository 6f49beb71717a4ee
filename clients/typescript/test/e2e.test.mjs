// The client against the real paystream services, started by tests/e2e/typescript/test_client.py:
// `paystream ingest` and `paystream worker` on the embedded broker, with a customer that a
// signed Stripe checkout.session.completed has put into onboarding_pending.
//
// Environment (set by the harness): PAYSTREAM_INGEST_URL, PAYSTREAM_APP_SECRET,
// PAYSTREAM_WORKER_URL, PAYSTREAM_API_TOKEN, PAYSTREAM_E2E_CUSTOMER, PAYSTREAM_E2E_WORKDIR,
// PAYSTREAM_E2E_DOWN_INGEST_URL (a second ingest whose broker is unreachable: it answers 503).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { before, describe, test } from "node:test";
import { promisify } from "node:util";

import {
  APP_SIGNATURE_HEADER,
  Paystream,
  PaystreamRejectedError,
  PaystreamUnavailableError,
  appEventsConfigFromEnv,
  customerStateConfigFromEnv,
  getCustomerState,
  sendAppEvent,
  signAppEvent,
} from "@paystream/client";

const env = process.env;
const REQUIRED = [
  "PAYSTREAM_INGEST_URL",
  "PAYSTREAM_APP_SECRET",
  "PAYSTREAM_WORKER_URL",
  "PAYSTREAM_API_TOKEN",
  "PAYSTREAM_E2E_CUSTOMER",
  "PAYSTREAM_E2E_WORKDIR",
  "PAYSTREAM_E2E_DOWN_INGEST_URL",
];
const missing = REQUIRED.filter((name) => !env[name]);
const skip = missing.length ? `needs the running services (${missing.join(", ")} unset)` : false;

const PACKAGE = fileURLToPath(new URL("..", import.meta.url));
const TSC = join(PACKAGE, "node_modules", "typescript", "bin", "tsc");

async function waitFor(what, probe, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await probe();
    if (last.done) {
      return last.value;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  assert.fail(`timed out waiting for ${what}; last seen: ${JSON.stringify(last?.value)}`);
}

/** The worker's answer exactly as sent (not through the client's parser). */
async function rawRecord(customer) {
  const response = await fetch(new URL(`customers/${customer}`, `${env.PAYSTREAM_WORKER_URL}/`), {
    headers: { Authorization: `Bearer ${env.PAYSTREAM_API_TOKEN}` },
  });
  assert.equal(response.status, 200);
  return response.text();
}

async function postApp(body, signature) {
  const response = await fetch(new URL("events/app", `${env.PAYSTREAM_INGEST_URL}/`), {
    method: "POST",
    body,
    headers: { "Content-Type": "application/json", [APP_SIGNATURE_HEADER]: signature },
  });
  return { status: response.status, body: await response.json() };
}

describe("the client against the running pipeline", { skip }, () => {
  let events;
  let customers;
  let customer;
  const captured = {};

  before(async () => {
    events = appEventsConfigFromEnv(env);
    // the public route: ingest's GET /v1/customers/{id} (ingest asks the worker)
    customers = customerStateConfigFromEnv({ ...env, PAYSTREAM_WORKER_URL: undefined });
    assert.equal(customers.ingestUrl, env.PAYSTREAM_INGEST_URL);
    customer = env.PAYSTREAM_E2E_CUSTOMER;
  });

  test("the customer starts in onboarding_pending (set by a Stripe checkout)", async () => {
    const record = await getCustomerState(customers, customer);
    assert.equal(record?.billing_state, "onboarding_pending");
    assert.equal(record.onboarding, "open");
    assert.equal(record.stripe_customer_id, customer);
    captured.pending = await rawRecord(customer);
  });

  test("ingest accepts the client's signature and refuses a tampered one with 401", async () => {
    const event = {
      id: `app_e2e_started_${Date.now()}`,
      type: "onboarding.started",
      created: Math.floor(Date.now() / 1000),
      stripe_customer_id: customer,
    };
    const body = JSON.stringify(event);
    const signature = await signAppEvent(body, events.secret);
    const tampered = body.replace("onboarding.started", "onboarding.completed");
    assert.notEqual(tampered, body);
    assert.deepEqual(await postApp(tampered, signature), {
      status: 401,
      body: { error: "invalid_signature" },
    });
    const flipped = signature.replace(/.$/, (c) => (c === "0" ? "1" : "0"));
    assert.equal((await postApp(body, flipped)).status, 401);
    const old = await signAppEvent(body, events.secret, { timestamp: 1_000_000_000 });
    assert.equal((await postApp(body, old)).status, 401, "a replayed old signature");
    assert.deepEqual(await postApp(body, signature), {
      status: 200,
      body: { received: true, id: event.id },
    });
  });

  test("sendAppEvent with the wrong secret is rejected once, without a retry", async () => {
    const err = await sendAppEvent(
      { ...events, secret: `${events.secret}-wrong` },
      { type: "onboarding.started", stripe_customer_id: customer },
    ).catch((e) => e);
    assert.ok(err instanceof PaystreamRejectedError, String(err));
    assert.equal(err.status, 401);
    assert.equal(err.code, "invalid_signature");
    assert.ok(!err.message.includes(events.secret));
  });

  test("ingest's real 503 (its broker unreachable) is retried, then reported as unavailable", async () => {
    const started = Date.now();
    const err = await sendAppEvent(
      {
        ...events,
        ingestUrl: env.PAYSTREAM_E2E_DOWN_INGEST_URL,
        retry: { maxAttempts: 2, baseDelayMs: 50, maxDelayMs: 200 },
      },
      { type: "onboarding.started", stripe_customer_id: customer },
    ).catch((e) => e);
    assert.ok(err instanceof PaystreamUnavailableError, String(err));
    assert.equal(err.status, 503);
    assert.equal(err.attempts, 2);
    assert.equal(err.retryable, true);
    // ingest's Retry-After (5 s) was honoured only up to maxDelayMs
    assert.ok(Date.now() - started < 30_000);
  });

  test("customer.linked then onboarding.completed turn the customer active", async () => {
    const userId = `user_${Date.now()}`;
    const linked = await sendAppEvent(events, {
      type: "customer.linked",
      stripe_customer_id: customer,
      user_id: userId,
    });
    assert.equal(linked.attempts, 1);
    const completed = await sendAppEvent(events, {
      id: `onboarding.completed:${userId}`,
      type: "onboarding.completed",
      stripe_customer_id: customer,
      user_id: userId,
    });
    // the same event again, as a retry after a lost answer would send it
    const again = await sendAppEvent(events, completed.event);
    assert.equal(again.event.id, completed.event.id);

    const record = await waitFor("billing_state active", async () => {
      const value = await getCustomerState(customers, customer);
      return { done: value?.billing_state === "active", value };
    });
    assert.equal(record.onboarding, "completed");
    assert.equal(record.user_id, userId);
    assert.equal(record.cause_event_id, completed.event.id);
    assert.equal(record.cause_event_type, "onboarding.completed");
    assert.ok(record.billing_state_changed_at_ms > 0);
    captured.active = await rawRecord(customer);
  });

  test("an unknown customer is null; a wrong token is a typed 401 without the token", async () => {
    assert.equal(await getCustomerState(customers, "cus_nobody_knows_this_one"), null);
    const wrong = `${customers.apiToken}-wrong`;
    const err = await getCustomerState({ ...customers, apiToken: wrong }, customer).catch((e) => e);
    assert.ok(err instanceof PaystreamRejectedError, String(err));
    assert.equal(err.status, 401);
    assert.ok(!`${err.message}${err.stack}`.includes(wrong));
  });

  test("new Paystream() reads through ingest exactly what the worker holds, with the request id", async () => {
    const paystream = new Paystream({ ingestUrl: env.PAYSTREAM_INGEST_URL, apiToken: env.PAYSTREAM_API_TOKEN });
    const throughIngest = await paystream.getCustomerState(customer, { requestId: "req_e2e_state" });
    const fromWorker = await getCustomerState(
      { workerUrl: env.PAYSTREAM_WORKER_URL, apiToken: env.PAYSTREAM_API_TOKEN },
      customer,
    );
    assert.deepEqual(throughIngest, fromWorker);
    assert.equal(throughIngest.billing_state, "active");
    const wrong = new Paystream({ ingestUrl: env.PAYSTREAM_INGEST_URL, apiToken: "wrong-token" });
    const err = await wrong.getCustomerState(customer, { requestId: "req_e2e_wrong" }).catch((e) => e);
    assert.ok(err instanceof PaystreamRejectedError, String(err));
    assert.equal(err.status, 401);
    assert.equal(err.requestId, "req_e2e_wrong", "ingest echoes the request id");
  });

  test("the worker's real answers compile as CustomerRecord (and a wrong one does not)", async () => {
    assert.ok(captured.pending && captured.active, "the answers were captured above");
    const dist = join(PACKAGE, "dist", "esm", "index.js");
    const dir = env.PAYSTREAM_E2E_WORKDIR;
    const header = `import type { CustomerRecord } from ${JSON.stringify(dist)};\n`;
    writeFileSync(
      join(dir, "worker-answers.ts"),
      `${header}export const pending: CustomerRecord = ${captured.pending};\n` +
        `export const active: CustomerRecord = ${captured.active};\n`,
    );
    const wrong = { ...JSON.parse(captured.active), billing_state: "frozen" };
    writeFileSync(join(dir, "wrong-answer.ts"), `${header}export const wrong: CustomerRecord = ${JSON.stringify(wrong)};\n`);
    // One compiler run over both files (tsc is the slow part): the only errors allowed
    // are the wrong answer's, so the real answers compile and the check can fail.
    const args = [TSC, "--noEmit", "--strict", "--exactOptionalPropertyTypes", "--target", "ES2022"];
    args.push("--module", "NodeNext", "--moduleResolution", "NodeNext", "--pretty", "false");
    args.push(join(dir, "worker-answers.ts"), join(dir, "wrong-answer.ts"));
    const result = await promisify(execFile)(process.execPath, args).then(
      () => ({ code: 0, out: "" }),
      (e) => ({ code: e.code, out: `${e.stdout}${e.stderr}` }),
    );
    const errors = result.out.split("\n").filter((line) => line.includes("error TS"));
    const elsewhere = errors.filter((line) => !line.includes("wrong-answer.ts"));
    assert.deepEqual(elsewhere, [], `the worker's answers do not type-check:\n${result.out}`);
    assert.notEqual(result.code, 0, "a record with an unknown billing state must not compile");
    assert.match(errors.join("\n"), /frozen/);
  });
});
