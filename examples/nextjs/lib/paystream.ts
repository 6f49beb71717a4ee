/**
 * paystream on the server side of the app: settings from the environment (read per call,
 * cheap), the billing state read (cached per customer while paystream's notifications
 * keep it fresh), and how a paystream error becomes an HTTP answer.
 *
 * Server-only (`import "server-only"` makes a client import a build error):
 * `PAYSTREAM_APP_SECRET`, `PAYSTREAM_API_TOKEN` and `PAYSTREAM_APP_WEBHOOK_SECRET` must never
 * reach a browser (never prefix them with `NEXT_PUBLIC_`).
 */

import "server-only";

import {
  type AppEventsConfig,
  type CustomerStateConfig,
  PaystreamError,
  PaystreamUnavailableError,
  appEventsConfigFromEnv,
  customerStateConfigFromEnv,
  getCustomerState,
} from "@paystream/client";
import { unstable_cache } from "next/cache";

import { type BillingStateAnswer, billingStateAnswer } from "@/lib/billing-view";

export function appEvents(): AppEventsConfig {
  return appEventsConfigFromEnv(process.env);
}

export function customerState(): CustomerStateConfig {
  return customerStateConfigFromEnv(process.env);
}

/** `PAYSTREAM_APP_WEBHOOK_SECRET` (paystream's sink signs with it), or `null`: notifications off. */
export function notificationSecret(): string | null {
  return process.env.PAYSTREAM_APP_WEBHOOK_SECRET?.trim() || null;
}

/** The cache tag of one customer's billing state (the notification route revalidates it). */
export function billingTag(customer: string): string {
  return `paystream-billing:${customer}`;
}

/**
 * How long a cached state may be served when a notification went missing (a dead-lettered
 * delivery), seconds: `PAYSTREAM_STATE_CACHE_S`, 60 by default; anything but a whole
 * number of seconds is refused, naming the variable.
 */
export function stateCacheSeconds(): number {
  const text = process.env.PAYSTREAM_STATE_CACHE_S?.trim() || "60";
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < 1) {
    throw new Error("invalid setting PAYSTREAM_STATE_CACHE_S: a whole number of seconds, at least 1");
  }
  return value;
}

async function readState(customer: string, signal?: AbortSignal): Promise<BillingStateAnswer> {
  return billingStateAnswer(await getCustomerState(customerState(), customer, { signal }));
}

/**
 * The customer's state as the page shows it. With notifications on, it is cached under
 * `billingTag(customer)` until paystream says it changed (`app/api/paystream/notifications`
 * revalidates the tag), so the page's polls cost paystream nothing; without them, every
 * call asks paystream. An error is never cached.
 */
export async function billingState(customer: string, signal?: AbortSignal): Promise<BillingStateAnswer> {
  if (notificationSecret() === null) {
    return readState(customer, signal);
  }
  const cached = unstable_cache((id: string) => readState(id), ["paystream-billing-state"], {
    tags: [billingTag(customer)],
    revalidate: stateCacheSeconds(),
  });
  return cached(customer);
}

/** JSON answer that no cache keeps (the billing state changes under the same URL). */
export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return Response.json(body, { status, headers: { "Cache-Control": "no-store", ...headers } });
}

/**
 * The answer for an error thrown while talking to paystream: 503 + `Retry-After` when
 * paystream is unavailable (the page keeps polling), 502 when it refused the request
 * (a setup problem: wrong secret or token), 500 for anything else. The log line names the
 * error class and code only — never a secret, a token or a customer id.
 */
export function paystreamFailure(error: unknown): Response {
  if (error instanceof PaystreamUnavailableError) {
    return json({ error: "paystream_unavailable" }, 503, { "Retry-After": "5" });
  }
  if (error instanceof PaystreamError) {
    console.error(`paystream: ${error.name} (${error.code})`);
    return json({ error: "paystream_failed" }, error.retryable ? 503 : 502);
  }
  throw error;
}
