/** Settings from the environment (`process.env` on Node, the platform's env on the edge). */

import type { CustomerStateConfig } from "./customers.js";
import { PaystreamUsageError } from "./errors.js";
import type { AppEventsConfig } from "./events.js";

export type Env = Readonly<Record<string, string | undefined>>;

function optional(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value ? value : undefined;
}

function required(env: Env, name: string): string {
  const value = optional(env, name);
  if (value === undefined) {
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

/**
 * `PAYSTREAM_API_TOKEN` and where to read: `PAYSTREAM_WORKER_URL` (the worker's own API, for
 * an app inside the cluster) when set, else `PAYSTREAM_INGEST_URL` (ingest's public
 * `GET /v1/customers/{id}`: what an app on Vercel uses).
 */
export function customerStateConfigFromEnv(env: Env): CustomerStateConfig {
  const apiToken = required(env, "PAYSTREAM_API_TOKEN");
  const workerUrl = optional(env, "PAYSTREAM_WORKER_URL");
  if (workerUrl !== undefined) {
    return { workerUrl, apiToken };
  }
  return { ingestUrl: required(env, "PAYSTREAM_INGEST_URL"), apiToken };
}
