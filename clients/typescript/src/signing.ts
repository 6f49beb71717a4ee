/**
 * The `t=<unix>,v1=<hex>` signature scheme of Stripe webhooks, which paystream uses for app
 * events too (`Paystream-Signature`): HMAC-SHA256 of `"{t}.{raw body}"` with the secret.
 *
 * The server checks it on the raw bytes, so sign exactly the string you send.
 */

import { webCrypto } from "./crypto.js";
import { PaystreamUsageError } from "./errors.js";

/** The header that carries the signature of `POST /events/app`. */
export const APP_SIGNATURE_HEADER = "Paystream-Signature";

export interface SignOptions {
  /** Unix seconds to sign with; the current time by default. */
  readonly timestamp?: number;
}

const encoder = new TextEncoder();

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** HMAC-SHA256 of `"{timestamp}."` followed by `body`, under `secret`. */
export async function hmacBytes(
  secret: string,
  timestamp: number,
  body: Uint8Array,
): Promise<Uint8Array> {
  const { subtle } = await webCrypto();
  const key = await subtle.importKey(
    "raw",
    encoder.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const prefix = encoder.encode(`${timestamp}.`);
  const signed = new Uint8Array(prefix.length + body.length);
  signed.set(prefix);
  signed.set(body, prefix.length);
  return new Uint8Array(await subtle.sign("HMAC", key, signed));
}

/** Hex HMAC-SHA256 of `"{timestamp}.{payload}"` under `secret`. */
export async function hmacSignature(
  payload: string,
  secret: string,
  timestamp: number,
): Promise<string> {
  return hex(await hmacBytes(secret, timestamp, encoder.encode(payload)));
}

/**
 * The `Paystream-Signature` header value for `payload` (the exact body you will send).
 *
 * `secret` is one of the ingest service's `PAYSTREAM_APP_SECRETS`.
 */
export async function signAppEvent(
  payload: string,
  secret: string,
  options: SignOptions = {},
): Promise<string> {
  if (!secret) {
    throw new PaystreamUsageError("missing_secret", "the app-event secret is empty");
  }
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) {
    throw new PaystreamUsageError("invalid_timestamp", "timestamp must be Unix seconds");
  }
  return `t=${timestamp},v1=${await hmacSignature(payload, secret, timestamp)}`;
}
