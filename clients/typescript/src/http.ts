/**
 * The one HTTP path of the client: `fetch` with a per-attempt timeout, retried with
 * bounded exponential back-off and full jitter on 503 (and 429/502/504 from gateways in
 * front of paystream) and on network errors. The decisions are plain functions.
 *
 * Back-off: "full jitter" — a uniform delay in [0, min(max, base * 2^(n-1))) — from the
 * AWS Architecture Blog, "Exponential Backoff And Jitter"; a `Retry-After` raises the
 * delay to what the server asked for, never above `maxDelayMs`, so the total is bounded.
 */

import { PaystreamRejectedError, PaystreamUnavailableError, PaystreamUsageError } from "./errors.js";

export interface RetryPolicy {
  /** Attempts in all, the first included (1 = no retry). */
  readonly maxAttempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 4, baseDelayMs: 200, maxDelayMs: 2000 };

/** Statuses worth another attempt: paystream's 503, and what gateways/proxies answer. */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([429, 502, 503, 504]);

export interface TransportOptions {
  /** A `fetch` implementation; the global one by default. */
  readonly fetch?: typeof fetch;
  /** Timeout of one attempt in milliseconds. */
  readonly timeoutMs?: number;
  readonly retry?: Partial<RetryPolicy>;
}

export interface CallOptions {
  /** Aborts the call, retries and back-off included (the signal's reason is thrown). */
  readonly signal?: AbortSignal;
}

/** The policy with defaults filled in; a bad value is a usage error. */
export function retryPolicy(partial: Partial<RetryPolicy> = {}): RetryPolicy {
  const policy = { ...DEFAULT_RETRY, ...partial };
  const ok =
    Number.isInteger(policy.maxAttempts) &&
    policy.maxAttempts >= 1 &&
    policy.maxAttempts <= 20 &&
    policy.baseDelayMs >= 0 &&
    policy.maxDelayMs >= policy.baseDelayMs &&
    Number.isFinite(policy.maxDelayMs);
  if (!ok) {
    throw new PaystreamUsageError(
      "invalid_retry_policy",
      "retry needs 1 <= maxAttempts <= 20 and 0 <= baseDelayMs <= maxDelayMs",
    );
  }
  return policy;
}

/**
 * Milliseconds to wait after failed attempt number `attempt` (1-based).
 *
 * `random` returns a number in [0, 1); `retryAfterMs` is what the server asked for.
 */
export function backoffDelayMs(
  attempt: number,
  policy: RetryPolicy,
  random: () => number = Math.random,
  retryAfterMs?: number,
): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  const jittered = Math.floor(random() * ceiling);
  const asked = retryAfterMs === undefined ? 0 : Math.min(retryAfterMs, policy.maxDelayMs);
  return Math.max(jittered, asked);
}

/** `Retry-After` in milliseconds (delta-seconds or an HTTP date), or `undefined`. */
export function parseRetryAfter(value: string | null, nowMs: number = Date.now()): number | undefined {
  if (value === null) {
    return undefined;
  }
  const text = value.trim();
  if (/^\d+$/.test(text)) {
    return Number(text) * 1000;
  }
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs);
}

/** `path` (no leading slash) under `base`, keeping any path prefix `base` has. */
export function endpointUrl(base: string, path: string, setting: string): URL {
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw new PaystreamUsageError("invalid_url", `${setting} is not a URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new PaystreamUsageError("invalid_url", `${setting} must be an http(s) URL`);
  }
  if (!url.pathname.endsWith("/")) {
    url.pathname += "/";
  }
  return new URL(path, url);
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

async function fetchOnce(
  doFetch: typeof fetch,
  url: URL,
  init: RequestInit,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<Response> {
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(signal?.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  const timer = setTimeout(() => controller.abort(new Error("attempt timed out")), timeoutMs);
  try {
    return await doFetch(url, { ...init, signal: controller.signal });
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  }
}

/** paystream's `{"error": "<code>"}` when the body is one, else `http_<status>`. */
export async function errorCode(response: Response): Promise<string> {
  try {
    const text = await response.text();
    const body: unknown = text.length <= 4096 ? JSON.parse(text) : undefined;
    const code = (body as { error?: unknown } | undefined)?.error;
    if (typeof code === "string" && /^[a-z][a-z0-9_]{0,63}$/.test(code)) {
      return code;
    }
  } catch {
    // not JSON: fall through to the status
  }
  return `http_${response.status}`;
}

export async function rejected(what: string, response: Response): Promise<PaystreamRejectedError> {
  const code = await errorCode(response);
  return new PaystreamRejectedError(code, `${what}: HTTP ${response.status} (${code})`, response.status);
}

export interface Attempted {
  readonly response: Response;
  readonly attempts: number;
}

/**
 * Send the request `build(attempt)` returns until it gets an answer that is not retryable.
 *
 * Throws `PaystreamUnavailableError` when every attempt failed, or the signal's reason.
 */
export async function withRetries(
  what: string,
  transport: TransportOptions,
  call: CallOptions,
  build: (attempt: number) => Promise<{ url: URL; init: RequestInit }>,
): Promise<Attempted> {
  const policy = retryPolicy(transport.retry);
  const doFetch = transport.fetch ?? globalThis.fetch;
  const timeoutMs = transport.timeoutMs ?? 10_000;
  const signal = call.signal;
  let lastStatus: number | undefined;
  let lastError: unknown;
  for (let attempt = 1; ; attempt++) {
    if (signal?.aborted) {
      throw signal.reason;
    }
    const { url, init } = await build(attempt);
    let retryAfterMs: number | undefined;
    try {
      const response = await fetchOnce(doFetch, url, init, timeoutMs, signal);
      if (!RETRYABLE_STATUSES.has(response.status)) {
        return { response, attempts: attempt };
      }
      lastStatus = response.status;
      lastError = undefined;
      retryAfterMs = parseRetryAfter(response.headers.get("Retry-After"));
      await response.body?.cancel();
    } catch (error) {
      if (signal?.aborted) {
        throw signal.reason;
      }
      lastStatus = undefined;
      lastError = error;
    }
    if (attempt >= policy.maxAttempts) {
      const last = lastStatus === undefined ? "no answer" : `HTTP ${lastStatus}`;
      throw new PaystreamUnavailableError(
        `${what}: unavailable after ${attempt} attempt(s) (last: ${last})`,
        lastStatus,
        attempt,
        lastError === undefined ? undefined : { cause: lastError },
      );
    }
    await sleep(backoffDelayMs(attempt, policy, Math.random, retryAfterMs), signal);
  }
}
