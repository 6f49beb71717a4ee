/**
 * paystream on the server side of the app: settings from the environment (read once per
 * request handler call, cheap), and how a paystream error becomes an HTTP answer.
 *
 * Server-only: `PAYSTREAM_APP_SECRET` and `PAYSTREAM_API_TOKEN` must never reach a browser
 * (never prefix them with `NEXT_PUBLIC_`).
 */

import {
  type AppEventsConfig,
  type CustomerStateConfig,
  PaystreamError,
  PaystreamUnavailableError,
  appEventsConfigFromEnv,
  customerStateConfigFromEnv,
} from "@paystream/client";

export function appEvents(): AppEventsConfig {
  return appEventsConfigFromEnv(process.env);
}

export function customerState(): CustomerStateConfig {
  return customerStateConfigFromEnv(process.env);
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
