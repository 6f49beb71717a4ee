/** Sending first-party app events to `POST /events/app`, signed and retried safely. */

import { webCrypto } from "./crypto.js";
import { PaystreamResponseError, PaystreamUsageError } from "./errors.js";
import {
  type CallOptions,
  type TransportOptions,
  endpointUrl,
  rejected,
  withRetries,
} from "./http.js";
import { APP_SIGNATURE_HEADER, signAppEvent } from "./signing.js";
import { APP_EVENT_TYPES, type AppEvent, type AppEventInput } from "./types.js";

export interface AppEventsConfig extends TransportOptions {
  /** Base URL of paystream's ingest service, e.g. `https://paystream.example.com`. */
  readonly ingestUrl: string;
  /** One of ingest's `PAYSTREAM_APP_SECRETS`. */
  readonly secret: string;
}

export interface SentAppEvent {
  /** The event as sent (its `id` is what paystream deduplicates by). */
  readonly event: AppEvent;
  /** How many requests it took (retries after 503 or a network error included). */
  readonly attempts: number;
  /** The call's `X-Request-Id` (ingest's correlation id of the event). */
  readonly requestId: string;
}

/** What ingest accepts as an id: printable ASCII without spaces, 1–255 characters. */
const TOKEN = /^[\x21-\x7e]{1,255}$/;

function invalid(message: string): PaystreamUsageError {
  return new PaystreamUsageError("invalid_event", message);
}

/**
 * The complete event for `input`: checked as ingest checks it, `id` and `created` filled in.
 *
 * Pass your own `id` to make a step idempotent across requests too (for example
 * `onboarding.completed:<user id>`, so a double submit is applied once).
 */
export async function createAppEvent(
  input: AppEventInput,
  nowMs: number = Date.now(),
): Promise<AppEvent> {
  const id = input.id ?? `app_${(await webCrypto()).randomUUID()}`;
  const created = input.created ?? Math.floor(nowMs / 1000);
  if (!TOKEN.test(id)) {
    throw invalid("id must be 1-255 printable ASCII characters without spaces");
  }
  if (!(APP_EVENT_TYPES as readonly string[]).includes(input.type)) {
    throw invalid(`type must be one of ${APP_EVENT_TYPES.join(", ")}`);
  }
  if (!Number.isSafeInteger(created) || created < 0) {
    throw invalid("created must be Unix seconds");
  }
  const customer = input.stripe_customer_id;
  if (typeof customer !== "string" || !customer.startsWith("cus_") || !TOKEN.test(customer)) {
    throw invalid("stripe_customer_id must be a Stripe customer id (cus_...)");
  }
  const userId = input.user_id ?? null;
  if (userId !== null && (typeof userId !== "string" || !TOKEN.test(userId))) {
    throw invalid("user_id must be 1-255 printable ASCII characters without spaces");
  }
  if (input.type === "customer.linked") {
    if (userId === null) {
      throw invalid("customer.linked needs a user_id");
    }
    return { id, type: input.type, created, stripe_customer_id: customer, user_id: userId };
  }
  return { id, type: input.type, created, stripe_customer_id: customer, user_id: userId };
}

/**
 * Sign and send one app event; resolves once paystream has it durably (ingest's 200).
 *
 * Retries on 503 and network errors with bounded, jittered back-off; every attempt carries
 * the same event id (re-signed with a fresh timestamp), so a retry after a lost answer
 * is applied once. Throws `PaystreamRejectedError` (401 bad signature, 400 malformed,
 * 404 endpoint off), `PaystreamUnavailableError` when every attempt failed, or
 * `PaystreamUsageError` for a bad event or setting (before sending anything).
 */
export async function sendAppEvent(
  config: AppEventsConfig,
  input: AppEventInput,
  options: CallOptions = {},
): Promise<SentAppEvent> {
  if (!config.secret) {
    throw new PaystreamUsageError("missing_secret", "the app-event secret is empty");
  }
  const url = endpointUrl(config.ingestUrl, "events/app", "ingestUrl");
  const event = await createAppEvent(input);
  const body = JSON.stringify(event);
  const what = "paystream POST /events/app";
  const answered = await withRetries(what, config, options, async () => ({
    url,
    init: {
      method: "POST",
      body,
      headers: {
        "Content-Type": "application/json",
        [APP_SIGNATURE_HEADER]: await signAppEvent(body, config.secret),
      },
    },
  }));
  const { response, attempts, requestId } = answered;
  if (!response.ok) {
    throw await rejected(what, answered);
  }
  let answer: unknown;
  try {
    answer = await response.json();
  } catch {
    answer = undefined;
  }
  const { received, id } = (answer ?? {}) as { received?: unknown; id?: unknown };
  if (received !== true || id !== event.id) {
    throw new PaystreamResponseError(
      `${what}: HTTP ${response.status} without the receipt (request ${requestId})`,
      requestId,
    );
  }
  return { event, attempts, requestId };
}
