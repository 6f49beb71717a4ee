/**
 * Verifying paystream's product notifications (SPEC §6): the app-webhook sink POSTs every
 * `billing_state.changed` to your app, signed in the scheme of Stripe webhooks —
 * `Paystream-Signature: t=<unix>,v1=<hex>`, HMAC-SHA256 of `"{t}.{raw body}"` under
 * `PAYSTREAM_APP_WEBHOOK_SECRET`.
 *
 * Verify the raw bytes (`await request.text()`), never a re-serialised body; the comparison
 * is constant-time; a timestamp older (or newer) than the tolerance is refused, so a
 * captured request cannot be replayed later. Several secrets may be given (rotation): any
 * one may match, as for Stripe's.
 */

import { PaystreamUsageError, PaystreamWebhookError } from "./errors.js";
import { APP_SIGNATURE_HEADER, hmacBytes } from "./signing.js";
import {
  BILLING_STATES,
  BILLING_STATE_CHANGED,
  type BillingState,
  type BillingStateChangedEvent,
} from "./types.js";

/** The header that carries the notification's signature. */
export const WEBHOOK_SIGNATURE_HEADER = APP_SIGNATURE_HEADER;

/** Accepted age of the signature timestamp, seconds (Stripe's default too). */
export const DEFAULT_TOLERANCE_S = 300;

export interface VerifyOptions {
  /** Accepted distance between the signature's `t` and now, seconds. */
  readonly toleranceS?: number;
  /** Unix seconds to compare with; the current time by default. */
  readonly nowS?: number;
}

const encoder = new TextEncoder();

export interface ParsedSignature {
  readonly timestamp: number;
  /** Every `v1` candidate as 32 bytes (malformed ones are dropped). */
  readonly signatures: readonly Uint8Array[];
}

function fromHex(text: string): Uint8Array | undefined {
  if (!/^[0-9a-fA-F]{64}$/.test(text)) {
    return undefined;
  }
  const bytes = new Uint8Array(32);
  for (let i = 0; i < 32; i++) {
    bytes[i] = Number.parseInt(text.slice(i * 2, i * 2 + 2), 16);
  }
  return bytes;
}

/** `t=...,v1=...[,v1=...]` → its timestamp and signatures, or `undefined` when unusable. */
export function parseSignatureHeader(header: string | null | undefined): ParsedSignature | undefined {
  if (typeof header !== "string" || header.length > 4096) {
    return undefined;
  }
  let timestamp: number | undefined;
  const signatures: Uint8Array[] = [];
  for (const part of header.split(",")) {
    const at = part.indexOf("=");
    if (at < 0) {
      continue;
    }
    const key = part.slice(0, at).trim();
    const value = part.slice(at + 1).trim();
    if (key === "t" && /^\d{1,12}$/.test(value)) {
      timestamp = Number(value);
    } else if (key === "v1") {
      const bytes = fromHex(value);
      if (bytes) {
        signatures.push(bytes);
      }
    }
  }
  return timestamp === undefined || signatures.length === 0 ? undefined : { timestamp, signatures };
}

/** Equal length and equal bytes, in time independent of where they differ. */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) {
    return false;
  }
  let diff = 0;
  for (let i = 0; i < a.length; i++) {
    diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  }
  return diff === 0;
}

function bytesOf(payload: string | Uint8Array | ArrayBuffer): Uint8Array {
  if (typeof payload === "string") {
    return encoder.encode(payload);
  }
  return payload instanceof Uint8Array ? payload : new Uint8Array(payload);
}

const isState = (v: unknown): v is BillingState =>
  typeof v === "string" && (BILLING_STATES as readonly string[]).includes(v);
const isText = (v: unknown): v is string => typeof v === "string" && v.length > 0;

/** The notification in `body`, checked field by field (extra fields are dropped). */
export function parseBillingStateChanged(body: unknown): BillingStateChangedEvent {
  const fail = (what: string): never => {
    throw new PaystreamWebhookError("malformed_event", `notification: unexpected ${what}`);
  };
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return fail("body (not a JSON object)");
  }
  const b = body as Record<string, unknown>;
  if (!isText(b.id)) fail("id");
  if (b.type !== BILLING_STATE_CHANGED) fail("type");
  if (!Number.isSafeInteger(b.created)) fail("created");
  if (!isText(b.stripe_customer_id)) fail("stripe_customer_id");
  if (b.user_id !== null && !isText(b.user_id)) fail("user_id");
  if (b.previous_state !== null && !isState(b.previous_state)) fail("previous_state");
  if (!isState(b.state)) fail("state");
  return {
    id: b.id as string,
    type: BILLING_STATE_CHANGED,
    created: b.created as number,
    stripe_customer_id: b.stripe_customer_id as string,
    user_id: (b.user_id as string | null) ?? null,
    previous_state: (b.previous_state as BillingState | null) ?? null,
    state: b.state as BillingState,
  };
}

/**
 * Check a product notification's signature and return its event.
 *
 * `payload` is the raw body exactly as received, `header` the `Paystream-Signature` value,
 * `secret` your `PAYSTREAM_APP_WEBHOOK_SECRET` (or several during a rotation). Throws
 * `PaystreamWebhookError` with code `invalid_signature` (no header, no matching `v1`,
 * timestamp outside the tolerance: answer 401) or `malformed_event` (signed, but not a
 * notification: answer 400). Deduplicate by the event's `id`: delivery is at least once.
 */
export async function verifyPaystreamWebhook(
  payload: string | Uint8Array | ArrayBuffer,
  header: string | null | undefined,
  secret: string | readonly string[],
  options: VerifyOptions = {},
): Promise<BillingStateChangedEvent> {
  const secrets = (typeof secret === "string" ? [secret] : [...secret]).filter((s) => s !== "");
  if (secrets.length === 0) {
    throw new PaystreamUsageError("missing_secret", "the webhook secret is empty");
  }
  const tolerance = options.toleranceS ?? DEFAULT_TOLERANCE_S;
  const now = options.nowS ?? Math.floor(Date.now() / 1000);
  const parsed = parseSignatureHeader(header);
  if (parsed === undefined) {
    throw new PaystreamWebhookError("invalid_signature", "no usable Paystream-Signature header");
  }
  if (Math.abs(now - parsed.timestamp) > tolerance) {
    throw new PaystreamWebhookError("invalid_signature", "signature timestamp outside the tolerance");
  }
  const body = bytesOf(payload);
  let matched = false;
  for (const candidate of secrets) {
    const expected = await hmacBytes(candidate, parsed.timestamp, body);
    for (const signature of parsed.signatures) {
      matched = timingSafeEqual(expected, signature) || matched;
    }
  }
  if (!matched) {
    throw new PaystreamWebhookError("invalid_signature", "no signature matches");
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(body));
  } catch {
    throw new PaystreamWebhookError("malformed_event", "notification: body is not JSON");
  }
  return parseBillingStateChanged(json);
}
