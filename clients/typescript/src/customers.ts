/** Reading the customer's canonical billing record: `GET /customers/{id}` on the worker. */

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
} from "./types.js";

export interface CustomerStateConfig extends TransportOptions {
  /** Base URL of the worker's web port (the customer-state API), e.g. `http://worker:6066`. */
  readonly workerUrl: string;
  /** The worker's `PAYSTREAM_API_TOKEN` (sent as a bearer token; never logged or thrown). */
  readonly apiToken: string;
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
};

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
    if (!(name in source) || !check(source[name])) {
      throw new PaystreamResponseError(`customer record: unexpected ${name}`);
    }
    record[name] = source[name];
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
 * 503 (worker starting or rebalancing) and network errors; throws `PaystreamRejectedError`
 * on 401 (wrong token) and other refusals, `PaystreamUnavailableError` when every attempt
 * failed. Note: a worker without `PAYSTREAM_API_TOKEN` answers 404 to everything.
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
  const url = endpointUrl(
    config.workerUrl,
    `customers/${encodeURIComponent(stripeCustomerId)}`,
    "workerUrl",
  );
  const what = "paystream GET /customers/{id}";
  const { response } = await withRetries(
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
  if (response.status === 404) {
    await response.body?.cancel();
    return null;
  }
  if (!response.ok) {
    throw await rejected(what, response);
  }
  let body: unknown;
  try {
    body = await response.json();
  } catch {
    throw new PaystreamResponseError(`${what}: HTTP ${response.status} with a body that is not JSON`);
  }
  return parseCustomerRecord(body);
}
