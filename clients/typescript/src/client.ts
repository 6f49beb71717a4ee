/**
 * `new Paystream({ ... })`: the client as one object, holding the settings and transport
 * once; each method is the function of the same name with them filled in.
 */

import { type Env } from "./config.js";
import { type CustomerStateConfig, getCustomerState } from "./customers.js";
import { PaystreamUsageError } from "./errors.js";
import { type SentAppEvent, sendAppEvent } from "./events.js";
import { type CallOptions, type RetryPolicy, type TransportOptions, endpointUrl } from "./http.js";
import type { AppEventInput, BillingStateChangedEvent, CustomerRecord } from "./types.js";
import { type VerifyOptions, verifyPaystreamWebhook } from "./webhooks.js";

export interface PaystreamOptions {
  /** Base URL of paystream's ingest (`PAYSTREAM_INGEST_URL`): app events and, by default, state. */
  readonly ingestUrl?: string;
  /** The worker's web port (`PAYSTREAM_WORKER_URL`), for an app inside the cluster: state reads. */
  readonly workerUrl?: string;
  /** One of ingest's `PAYSTREAM_APP_SECRETS` (`PAYSTREAM_APP_SECRET`): signs app events. */
  readonly appSecret?: string;
  /** paystream's `PAYSTREAM_API_TOKEN`: reads the customer state. */
  readonly apiToken?: string;
  /** `PAYSTREAM_APP_WEBHOOK_SECRET` (or several, rotating): verifies notifications. */
  readonly webhookSecret?: string | readonly string[];
  readonly fetch?: typeof fetch;
  /** Timeout of one attempt, milliseconds (10 s for events, 5 s for state reads by default). */
  readonly timeoutMs?: number;
  /** Attempts, back-off and the longest `Retry-After` waited for (`maxRetryAfterMs`). */
  readonly retry?: Partial<RetryPolicy>;
  /** Appended to the `User-Agent`, e.g. `my-app/1.2`. */
  readonly userAgent?: string;
}

function setting(value: string | undefined, name: string, option: string): string {
  if (!value) {
    throw new PaystreamUsageError("missing_setting", `Paystream: ${option} (${name}) is not set`);
  }
  return value;
}

export class Paystream {
  readonly #options: PaystreamOptions;
  readonly #transport: TransportOptions;

  /** Checks the URLs it is given at once; each secret is required by the method that uses it. */
  constructor(options: PaystreamOptions) {
    if (!options.ingestUrl && !options.workerUrl) {
      throw new PaystreamUsageError(
        "missing_setting",
        "Paystream: ingestUrl (PAYSTREAM_INGEST_URL) is not set",
      );
    }
    if (options.ingestUrl) endpointUrl(options.ingestUrl, "", "ingestUrl");
    if (options.workerUrl) endpointUrl(options.workerUrl, "", "workerUrl");
    this.#options = { ...options };
    const { fetch, timeoutMs, retry, userAgent } = options;
    this.#transport = {
      ...(fetch && { fetch }),
      ...(timeoutMs !== undefined && { timeoutMs }),
      ...(retry && { retry }),
      ...(userAgent && { userAgent }),
    };
  }

  /**
   * From `PAYSTREAM_INGEST_URL`, `PAYSTREAM_WORKER_URL`, `PAYSTREAM_APP_SECRET`,
   * `PAYSTREAM_API_TOKEN` and `PAYSTREAM_APP_WEBHOOK_SECRET` (`process.env` by default).
   */
  static fromEnv(
    env?: Env,
    extra: Pick<PaystreamOptions, "fetch" | "timeoutMs" | "retry" | "userAgent"> = {},
  ): Paystream {
    const source = env ?? (globalThis as { process?: { env: Env } }).process?.env ?? {};
    return new Paystream({ ...fromEnvSettings(source), ...extra });
  }

  /** `sendAppEvent` with the app secret: resolves once ingest has the event durably. */
  async sendAppEvent(input: AppEventInput, options: CallOptions = {}): Promise<SentAppEvent> {
    const { ingestUrl, appSecret } = this.#options;
    return sendAppEvent(
      {
        ...this.#transport,
        ingestUrl: setting(ingestUrl, "PAYSTREAM_INGEST_URL", "ingestUrl"),
        secret: setting(appSecret, "PAYSTREAM_APP_SECRET", "appSecret"),
      },
      input,
      options,
    );
  }

  /** The customer's billing record, or `null` while paystream does not know the customer. */
  async getCustomerState(stripeCustomerId: string, options: CallOptions = {}): Promise<CustomerRecord | null> {
    const { ingestUrl, workerUrl, apiToken } = this.#options;
    const config: CustomerStateConfig = {
      ...this.#transport,
      ...(workerUrl ? { workerUrl } : { ingestUrl: setting(ingestUrl, "PAYSTREAM_INGEST_URL", "ingestUrl") }),
      apiToken: setting(apiToken, "PAYSTREAM_API_TOKEN", "apiToken"),
    };
    return getCustomerState(config, stripeCustomerId, options);
  }

  /** `verifyPaystreamWebhook` with the webhook secret(s). */
  async verifyWebhook(
    payload: string | Uint8Array | ArrayBuffer,
    header: string | null | undefined,
    options: VerifyOptions = {},
  ): Promise<BillingStateChangedEvent> {
    const secret = this.#options.webhookSecret;
    const secrets = secret === undefined ? [] : typeof secret === "string" ? [secret] : secret;
    if (secrets.length === 0) {
      setting(undefined, "PAYSTREAM_APP_WEBHOOK_SECRET", "webhookSecret");
    }
    return verifyPaystreamWebhook(payload, header, secrets, options);
  }
}

interface EnvSettings {
  ingestUrl?: string;
  workerUrl?: string;
  appSecret?: string;
  apiToken?: string;
  webhookSecret?: readonly string[];
}

function fromEnvSettings(env: Env): EnvSettings {
  const read = (name: string): string | undefined => env[name]?.trim() || undefined;
  const secrets = read("PAYSTREAM_APP_WEBHOOK_SECRET")?.split(",").map((s) => s.trim()).filter(Boolean);
  const options: EnvSettings = {};
  const pairs = [
    ["ingestUrl", "PAYSTREAM_INGEST_URL"],
    ["workerUrl", "PAYSTREAM_WORKER_URL"],
    ["appSecret", "PAYSTREAM_APP_SECRET"],
    ["apiToken", "PAYSTREAM_API_TOKEN"],
  ] as const;
  for (const [option, name] of pairs) {
    const value = read(name);
    if (value !== undefined) options[option] = value;
  }
  if (secrets && secrets.length > 0) options.webhookSecret = secrets;
  return options;
}
