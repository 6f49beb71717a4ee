/**
 * paystream's client for Node (>= 20) and edge runtimes: no dependencies, Web Crypto and
 * `fetch` only. ESM (`import`) and CommonJS (`require`) builds.
 *
 * - `new Paystream({ ... })` (or `Paystream.fromEnv()`): the methods below as one object.
 * - `sendAppEvent` reports a product step (`onboarding.started`, `onboarding.completed`,
 *   `customer.linked`) to `POST /events/app`, signed with `PAYSTREAM_APP_SECRET`.
 * - `getCustomerState` reads the customer's billing record (ingest's `GET /v1/customers/{id}`).
 * - `verifyPaystreamWebhook` checks a `billing_state.changed` notification paystream POSTed.
 */

export type { PaystreamOptions } from "./client.js";
export { Paystream } from "./client.js";
export type { CustomerStateConfig } from "./customers.js";
export { customerStateUrl, getCustomerState, hasAccess, parseCustomerRecord } from "./customers.js";
export type { Env } from "./config.js";
export { appEventsConfigFromEnv, customerStateConfigFromEnv } from "./config.js";
export type { UnavailableDetails } from "./errors.js";
export {
  PaystreamError,
  PaystreamRejectedError,
  PaystreamResponseError,
  PaystreamUnavailableError,
  PaystreamUsageError,
  PaystreamWebhookError,
} from "./errors.js";
export type { AppEventsConfig, SentAppEvent } from "./events.js";
export { createAppEvent, sendAppEvent } from "./events.js";
export type { CallOptions, RetryPolicy, TransportOptions } from "./http.js";
export {
  DEFAULT_RETRY,
  REQUEST_ID_HEADER,
  RETRYABLE_STATUSES,
  USER_AGENT,
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
  BillingStateChangedEvent,
  CustomerLinkedEvent,
  CustomerRecord,
  OnboardingEvent,
  OnboardingStatus,
  SubscriptionRecord,
  SubscriptionRecords,
  SubscriptionStatus,
} from "./types.js";
export {
  APP_EVENT_TYPES,
  BILLING_STATES,
  BILLING_STATE_CHANGED,
  SUBSCRIPTION_STATUSES,
} from "./types.js";
export { VERSION } from "./version.js";
export type { ParsedSignature, VerifyOptions } from "./webhooks.js";
export {
  DEFAULT_TOLERANCE_S,
  WEBHOOK_SIGNATURE_HEADER,
  parseBillingStateChanged,
  parseSignatureHeader,
  verifyPaystreamWebhook,
} from "./webhooks.js";
