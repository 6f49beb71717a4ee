/**
 * Reading the customer's canonical billing record: `GET /v1/customers/{id}` on ingest (its
 * public https host: what an app hosted elsewhere, e.g. on Vercel, can reach), or
 * `GET /customers/{id}` on the worker's web port when the app runs beside it in the cluster.
 */

import { PaystreamResponseError, PaystreamUsageError } from "./errors.js";
import {
  type CallOptions,
  type TransportOptions,
  endpointUrl,
  rejected,
  withRetries,
} from "./http.js";
import {
  BILLING_STATES,
  type BillingState,
  type CustomerRecord,
  type OnboardingStatus,
  SUBSCRIPTION_STATUSES,
} from "./types.js";

export interface CustomerStateConfig extends TransportOptions {
  /** Base URL of paystream's ingest, e.g. `https://paystream.example.com` (`/v1/customers/{id}`). */
  readonly ingestUrl?: string;
  /**
   * Base URL of the worker's web port, e.g. `http://worker:6066` (`/customers/{id}`): for an
   * app inside the cluster; when set it is used instead of `ingestUrl`.
   */
  readonly workerUrl?: string;
  /** paystream's `PAYSTREAM_API_TOKEN` (sent as a bearer token; never logged or thrown). */
  readonly apiToken: string;
}

/** Where the record is read: the worker's own route when `workerUrl` is set, else ingest's. */
export function customerStateUrl(config: CustomerStateConfig, stripeCustomerId: string): URL {
  const path = encodeURIComponent(stripeCustomerId);
  if (config.workerUrl) {
    return endpointUrl(config.workerUrl, `customers/${path}`, "workerUrl");
  }
  if (config.ingestUrl) {
    return endpointUrl(config.ingestUrl, `v1/customers/${path}`, "ingestUrl");
  }
  throw new PaystreamUsageError("missing_setting", "customer state needs ingestUrl or workerUrl");
}

type Checker = (value: unknown) => boolean;

const isString: Checker = (v) => typeof v === "string";
const nullable =
  (check: Checker): Checker =>
  (v) =>
    v === null || check(v);
const oneOf =
  (values: readonly string[]): Checker =>
  (v) =>
    typeof v === "string" && values.includes(v);
const ONBOARDING: readonly OnboardingStatus[] = ["open", "completed"];

const FIELDS: { readonly [K in keyof CustomerRecord]-?: Checker } = {
  stripe_customer_id: isString,
  user_id: nullable(isString),
  email: nullable(isString),
  billing_state: nullable(oneOf(BILLING_STATES)),
  billing_state_changed_at_ms: nullable((v) => Number.isSafeInteger(v)),
  cause_event_id: nullable(isString),
  cause_event_type: nullable(isString),
  onboarding: nullable(oneOf(ONBOARDING)),
  livemode: (v) => typeof v === "boolean",
  subscriptions: () => true,
};

const isSubscription: Checker = (v) => {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    return false;
  }
  const s = v as { id?: unknown; status?: unknown; since_ms?: unknown };
  return (
    (s.id === null || isString(s.id)) &&
    (SUBSCRIPTION_STATUSES as readonly unknown[]).includes(s.status) &&
    Number.isSafeInteger(s.since_ms)
  );
};

/** `subscriptions`, when present: a list of `{id, status, since_ms}`. */
const subscriptionsOk: Checker = (v) => Array.isArray(v) && v.every(isSubscription);

/**
 * Check that `value` is a customer record and return its known fields.
 *
 * Throws `PaystreamResponseError` naming the first field that does not match; fields
 * added by a newer worker are dropped (the record only ever gains fields).
 */
export function parseCustomerRecord(value: unknown): CustomerRecord {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new PaystreamResponseError("customer record: not a JSON object");
  }
  const source = value as Record<string, unknown>;
  const record: Record<string, unknown> = {};
  for (const [name, check] of Object.entries(FIELDS)) {
    if (name === "subscriptions") {
      continue;
    }
    if (!(name in source) || !check(source[name])) {
      throw new PaystreamResponseError(`customer record: unexpected ${name}`);
    }
    record[name] = source[name];
  }
  // Optional: a worker older than the per-subscription model does not send it.
  const subscriptions = source.subscriptions;
  if (subscriptions !== undefined && subscriptions !== null) {
    if (!subscriptionsOk(subscriptions)) {
      throw new PaystreamResponseError("customer record: unexpected subscriptions");
    }
    record.subscriptions = subscriptions;
  }
  return record as unknown as CustomerRecord;
}

/** True for the states in which the customer has working access. */
export function hasAccess(state: BillingState | null): boolean {
  return state === "active" || state === "onboarding_pending";
}

/**
 * The customer's billing record, or `null` when paystream does not know the customer (yet).
 *
 * `null` right after checkout means "still syncing", not "unpaid": poll again. Retries on
 * 503 (worker starting, rebalancing or away) and network errors, honouring `Retry-After`;
 * throws `PaystreamRejectedError` on 401 (wrong token) and other refusals,
 * `PaystreamUnavailableError` when every attempt failed. Note: a paystream without
 * `PAYSTREAM_API_TOKEN` answers 404 to everything.
 */
export async function getCustomerState(
  config: CustomerStateConfig,
  stripeCustomerId: string,
  options: CallOptions = {},
): Promise<CustomerRecord | null> {
  if (!config.apiToken) {
    throw new PaystreamUsageError("missing_token", "the customer-state API token is empty");
  }
  if (typeof stripeCustomerId !== "string" || !/^[\x21-\x7e]{1,255}$/.test(stripeCustomerId)) {
    throw new PaystreamUsageError("invalid_customer", "not a Stripe customer id");
  }
  const url = customerStateUrl(config, stripeCustomerId);
  const what = config.workerUrl ? "paystream GET /customers/{id}" : "paystream GET /v1/customers/{id}";
  const answered = await withRetries(
    what,
    { timeoutMs: 5_000, ...config },
    options,
    async () => ({
      url,
      init: {
        method: "GET",
        headers: { Accept: "application/json", Authorization: `Bearer ${config.apiToken}` },
      },
    }),
  );
  const { response, requestId } = answered;
  if (response.status === 404) {
    await response.body?.cancel();
    return null;
  }
  if (!response.ok) {
    throw await rejected(what, answered);
  }
  let body: unknown;
  try {
    body = await response.json();
  } catch {
    throw new PaystreamResponseError(
      `${what}: HTTP ${response.status} with a body that is not JSON (request ${requestId})`,
      requestId,
    );
  }
  try {
    return parseCustomerRecord(body);
  } catch (error) {
    if (error instanceof PaystreamResponseError) {
      throw new PaystreamResponseError(`${error.message} (request ${requestId})`, requestId);
    }
    throw error;
  }
}
