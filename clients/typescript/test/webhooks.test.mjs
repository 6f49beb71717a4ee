// verifyPaystreamWebhook(): the receiving side of the product notifications, checked
// against signatures made independently with node:crypto (as paystream's sink makes them:
// HMAC-SHA256 of "{t}.{raw body}", hex, in `Paystream-Signature: t=...,v1=...`).
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { describe, test } from "node:test";

import {
  BILLING_STATES,
  PaystreamUsageError,
  PaystreamWebhookError,
  parseSignatureHeader,
  verifyPaystreamWebhook,
} from "@paystream/client";

const SECRET = "whsec_app_webhook_secret_for_tests";
const NOW = 1_800_000_000;
const EVENT = {
  id: "bsc_0123456789abcdef",
  type: "billing_state.changed",
  created: NOW - 2,
  stripe_customer_id: "cus_unit",
  user_id: "u1",
  previous_state: "active",
  state: "payment_failed",
};

const sign = (body, secret = SECRET, t = NOW) =>
  `t=${t},v1=${createHmac("sha256", secret).update(`${t}.${body}`).digest("hex")}`;
const at = { nowS: NOW };

describe("verifyPaystreamWebhook", () => {
  const body = JSON.stringify(EVENT);

  test("a signed notification is returned as its event", async () => {
    assert.deepEqual(await verifyPaystreamWebhook(body, sign(body), SECRET, at), EVENT);
  });

  test("the raw bytes verify as the string does (Uint8Array, ArrayBuffer)", async () => {
    const bytes = new TextEncoder().encode(body);
    assert.deepEqual(await verifyPaystreamWebhook(bytes, sign(body), SECRET, at), EVENT);
    assert.deepEqual(await verifyPaystreamWebhook(bytes.buffer, sign(body), SECRET, at), EVENT);
  });

  test("any of several secrets (rotation), any of several v1", async () => {
    const header = `${sign(body, "other")},v1=${sign(body).split("v1=")[1]}`;
    assert.deepEqual(await verifyPaystreamWebhook(body, header, SECRET, at), EVENT);
    assert.deepEqual(await verifyPaystreamWebhook(body, sign(body), ["retired", SECRET], at), EVENT);
  });

  test("extra fields a newer paystream adds are dropped; user_id and previous_state may be null", async () => {
    const newer = JSON.stringify({ ...EVENT, user_id: null, previous_state: null, added: 1 });
    const event = await verifyPaystreamWebhook(newer, sign(newer), SECRET, at);
    assert.deepEqual(event, { ...EVENT, user_id: null, previous_state: null });
  });

  for (const [what, header, payload] of [
    ["no header", undefined, body],
    ["an empty header", "", body],
    ["no v1", `t=${NOW}`, body],
    ["no t", sign(body).replace(/^t=\d+,/, ""), body],
    ["another secret", sign(body, "wrong"), body],
    ["a tampered body", sign(body), body.replace("payment_failed", "active")],
    ["a v1 that is not hex", `t=${NOW},v1=${"z".repeat(64)}`, body],
    ["a truncated v1", sign(body).slice(0, -2), body],
    ["a timestamp too old", sign(body, SECRET, NOW - 301), body],
    ["a timestamp too far ahead", sign(body, SECRET, NOW + 301), body],
  ]) {
    test(`refuses ${what} as invalid_signature`, async () => {
      await assert.rejects(
        verifyPaystreamWebhook(payload, header, SECRET, at),
        (err) => err instanceof PaystreamWebhookError && err.code === "invalid_signature",
      );
    });
  }

  test("the tolerance is configurable", async () => {
    const old = sign(body, SECRET, NOW - 100);
    await assert.rejects(verifyPaystreamWebhook(body, old, SECRET, { ...at, toleranceS: 60 }));
    assert.deepEqual(await verifyPaystreamWebhook(body, old, SECRET, { ...at, toleranceS: 120 }), EVENT);
  });

  for (const [what, value] of [
    ["not JSON", "<html>"],
    ["another type", JSON.stringify({ ...EVENT, type: "customer.updated" })],
    ["an unknown state", JSON.stringify({ ...EVENT, state: "frozen" })],
    ["no id", JSON.stringify({ ...EVENT, id: "" })],
    ["a string created", JSON.stringify({ ...EVENT, created: "1" })],
    ["an array", "[]"],
  ]) {
    test(`a signed body with ${what} is malformed_event`, async () => {
      await assert.rejects(
        verifyPaystreamWebhook(value, sign(value), SECRET, at),
        (err) => err instanceof PaystreamWebhookError && err.code === "malformed_event",
      );
    });
  }

  test("every billing state is accepted as state", async () => {
    for (const state of BILLING_STATES) {
      const value = JSON.stringify({ ...EVENT, state });
      assert.equal((await verifyPaystreamWebhook(value, sign(value), SECRET, at)).state, state);
    }
  });

  test("an empty secret is a usage error, not a failed check", async () => {
    await assert.rejects(verifyPaystreamWebhook(body, sign(body), "", at), PaystreamUsageError);
    await assert.rejects(verifyPaystreamWebhook(body, sign(body), [], at), PaystreamUsageError);
  });

  test("the header parser keeps well-formed parts only", () => {
    const v1 = "ab".repeat(32);
    const parsed = parseSignatureHeader(` t=12 , v1=${v1},v0=zz,junk,v1=short`);
    assert.equal(parsed.timestamp, 12);
    assert.equal(parsed.signatures.length, 1);
    assert.equal(parseSignatureHeader("t=x,v1=" + v1), undefined);
    assert.equal(parseSignatureHeader("x".repeat(5000)), undefined);
  });
});
