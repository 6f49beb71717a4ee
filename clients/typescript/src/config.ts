/** Settings from the environment (`process.env` on Node, the platform's env on the edge). */

import type { CustomerStateConfig } from "./customers.js";
import { PaystreamUsageError } from "./errors.js";
import type { AppEventsConfig } from "./events.js";

export type Env = Readonly<Record<string, string | undefined>>;

function required(env: Env, name: string): string {
  const value = env[name]?.trim();
  if (!value) {
    throw new PaystreamUsageError("missing_setting", `${name} is not set`);
  }
  return value;
}

/** `PAYSTREAM_INGEST_URL` and `PAYSTREAM_APP_SECRET` (one of ingest's `PAYSTREAM_APP_SECRETS`). */
export function appEventsConfigFromEnv(env: Env): AppEventsConfig {
  return {
    ingestUrl: required(env, "PAYSTREAM_INGEST_URL"),
    secret: required(env, "PAYSTREAM_APP_SECRET"),
  };
}

/** `PAYSTREAM_WORKER_URL` and `PAYSTREAM_API_TOKEN` (the worker's customer-state API). */
export function customerStateConfigFromEnv(env: Env): CustomerStateConfig {
  return {
    workerUrl: required(env, "PAYSTREAM_WORKER_URL"),
    apiToken: required(env, "PAYSTREAM_API_TOKEN"),
  };
}
