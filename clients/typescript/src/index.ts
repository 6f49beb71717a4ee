/**
 * paystream's client for Node (>= 18) and edge runtimes: no dependencies, Web Crypto and
 * `fetch` only.
 *
 * - `sendAppEvent` reports a product step (`onboarding.started`, `onboarding.completed`,
 *   `customer.linked`) to `POST /events/app`, signed with `PAYSTREAM_APP_SECRET`.
 * - `getCustomerState` reads the customer's billing record (`GET /customers/{id}`).
 */

export type { CustomerStateConfig } from "./customers.js";
export { getCustomerState, hasAccess, parseCustomerRecord } from "./customers.js";
export type { Env } from "./config.js";
export { appEventsConfigFromEnv, customerStateConfigFromEnv } from "./config.js";
export {
  PaystreamError,
  PaystreamRejectedError,
  PaystreamResponseError,
  PaystreamUnavailableError,
  PaystreamUsageError,
} from "./errors.js";
export type { AppEventsConfig, SentAppEvent } from "./events.js";
export { createAppEvent, sendAppEvent } from "./events.js";
export type { CallOptions, RetryPolicy, TransportOptions } from "./http.js";
export {
  DEFAULT_RETRY,
  RETRYABLE_STATUSES,
  backoffDelayMs,
  parseRetryAfter,
  retryPolicy,
} from "./http.js";
export type { SignOptions } from "./signing.js";
export { APP_SIGNATURE_HEADER, hmacSignature, signAppEvent } from "./signing.js";
export type {
  AppEvent,
  AppEventInput,
  AppEventType,
  BillingState,
  CustomerLinkedEvent,
  CustomerRecord,
  OnboardingEvent,
  OnboardingStatus,
} from "./types.js";
export { APP_EVENT_TYPES, BILLING_STATES } from "./types.js";
