// The example's route handlers (compiled by the type check) against the real paystream
// ingest and worker, started by tests/e2e/typescript/test_client.py. Run with
// `node --import ./test/register.mjs --test test/routes.e2e.test.mjs`.
//
// Environment: PAYSTREAM_EXAMPLE_BUILD, PAYSTREAM_INGEST_URL, PAYSTREAM_APP_SECRET,
// PAYSTREAM_WORKER_URL, PAYSTREAM_API_TOKEN, PAYSTREAM_E2E_ROUTE_CUSTOMER (a customer in
// onboarding_pending).
import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { before, describe, test } from "node:test";

const env = process.env;
const needed = ["PAYSTREAM_EXAMPLE_BUILD", "PAYSTREAM_INGEST_URL", "PAYSTREAM_E2E_ROUTE_CUSTOMER"];
const skip = needed.every((name) => env[name]) ? false : "needs the running services (run through pytest)";

const APP = "http://app.test";

describe("the example's route handlers against the running pipeline", { skip }, () => {
  let billingState;
  let onboarding;
  const customer = env.PAYSTREAM_E2E_ROUTE_CUSTOMER;
  const user = { "x-test-user": "user_route_1", "x-test-customer": customer };

  before(async () => {
    const route = (path) => import(pathToFileURL(join(env.PAYSTREAM_EXAMPLE_BUILD, path)).href);
    billingState = await route("app/api/paystream/billing-state/route.js");
    onboarding = await route("app/api/paystream/onboarding/route.js");
  });

  const read = async (headers) => {
    const response = await billingState.GET(new Request(`${APP}/api/paystream/billing-state`, { headers }));
    assert.equal(response.headers.get("cache-control"), "no-store");
    return { status: response.status, body: await response.json() };
  };
  const step = (body, headers, contentType = "application/json") =>
    onboarding.POST(
      new Request(`${APP}/api/paystream/onboarding`, {
        method: "POST",
        headers: { ...headers, "Content-Type": contentType },
        body,
      }),
    );

  test("signed out: 401 from both routes", async () => {
    assert.equal((await read({})).status, 401);
    assert.equal((await step(JSON.stringify({ step: "completed" }), {})).status, 401);
  });

  test("a customer paystream has not seen yet reads as syncing, not as unpaid", async () => {
    const answer = await read({ "x-test-user": "u_new", "x-test-customer": "cus_not_synced_yet" });
    assert.deepEqual(answer, { status: 200, body: { status: "syncing" } });
    assert.deepEqual((await read({ "x-test-user": "u_none" })).body, { status: "no_customer" });
  });

  test("after checkout the page reads onboarding_pending", async () => {
    const { status, body } = await read(user);
    assert.equal(status, 200);
    assert.equal(body.status, "known");
    assert.equal(body.billingState, "onboarding_pending");
    assert.equal(body.onboarding, "open");
    assert.ok(body.changedAtMs > 0);
  });

  test("bad steps are refused before paystream is called", async () => {
    assert.equal((await step(JSON.stringify({ step: "paid" }), user)).status, 400);
    assert.equal((await step("step=completed", user, "application/x-www-form-urlencoded")).status, 415);
  });

  test("linked and completed through the route turn the customer active", async () => {
    for (const name of ["linked", "completed", "completed"]) {
      const response = await step(JSON.stringify({ step: name }), user);
      assert.equal(response.status, 200, name);
    }
    const deadline = Date.now() + 60_000;
    let answer;
    while (Date.now() < deadline) {
      answer = await read(user);
      if (answer.body.billingState === "active") {
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.equal(answer.body.billingState, "active", JSON.stringify(answer));
    assert.equal(answer.body.onboarding, "completed");
    assert.deepEqual(Object.keys(answer.body).sort(), ["billingState", "changedAtMs", "onboarding", "status"]);
  });
});
