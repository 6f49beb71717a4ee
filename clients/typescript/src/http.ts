/**
 * The one HTTP path of the client: `fetch` with a per-attempt timeout, retried with
 * bounded exponential back-off and full jitter on 503 (and 429/502/504 from gateways in
 * front of paystream) and on network errors. The decisions are plain functions.
 *
 * Back-off: "full jitter" — a uniform delay in [0, min(max, base * 2^(n-1))) — from the
 * AWS Architecture Blog, "Exponential Backoff And Jitter". A `Retry-After` (RFC 9110
 * §10.2.3: delta-seconds or an HTTP date) is honoured up to `maxRetryAfterMs`: the next
 * attempt waits what the server asked for; a longer wait is not done in-process (a request
 * handler must not hang for minutes) — the call fails with `PaystreamUnavailableError`
 * carrying `retryAfterMs`, which the caller can hand on (a 503 + `Retry-After` of its own).
 *
 * Every call carries one `X-Request-Id` (the same on each retry: ingest logs it and puts
 * it on the event) and a `User-Agent`; errors carry the request id paystream answered with.
 */

import { webCrypto } from "./crypto.js";
import { PaystreamRejectedError, PaystreamUnavailableError, PaystreamUsageError } from "./errors.js";
import { VERSION } from "./version.js";

export interface RetryPolicy {
  /** Attempts in all, the first included (1 = no retry). */
  readonly maxAttempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** The longest `Retry-After` waited for; a longer one ends the retries at once. */
  readonly maxRetryAfterMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  maxAttempts: 4,
  baseDelayMs: 200,
  maxDelayMs: 2000,
  maxRetryAfterMs: 5000,
};

/** The `User-Agent` the client sends (a runtime that forbids the header ignores it). */
export const USER_AGENT = `paystream-client-typescript/${VERSION}`;

/** The header that carries the correlation id (sent, and read back from answers). */
export const REQUEST_ID_HEADER = "X-Request-Id";

/** Statuses worth another attempt: paystream's 503, and what gateways/proxies answer. */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([429, 502, 503, 504]);

export interface TransportOptions {
  /** A `fetch` implementation; the global one by default. */
  readonly fetch?: typeof fetch;
  /** Timeout of one attempt in milliseconds. */
  readonly timeoutMs?: number;
  readonly retry?: Partial<RetryPolicy>;
  /** Appended to the client's `User-Agent` (e.g. `my-app/1.2`). */
  readonly userAgent?: string;
}

export interface CallOptions {
  /** Aborts the call, retries and back-off included (the signal's reason is thrown). */
  readonly signal?: AbortSignal;
  /** The `X-Request-Id` to send (a fresh `req_...` by default), e.g. your own request's. */
  readonly requestId?: string;
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
    Number.isFinite(policy.maxDelayMs) &&
    policy.maxRetryAfterMs >= 0 &&
    Number.isFinite(policy.maxRetryAfterMs);
  if (!ok) {
    throw new PaystreamUsageError(
      "invalid_retry_policy",
      "retry needs 1 <= maxAttempts <= 20, 0 <= baseDelayMs <= maxDelayMs and a finite maxRetryAfterMs >= 0",
    );
  }
  return policy;
}

/**
 * Milliseconds to wait after failed attempt number `attempt` (1-based), or `undefined`
 * when the server asked for a longer wait than `maxRetryAfterMs` (stop retrying).
 *
 * `random` returns a number in [0, 1); `retryAfterMs` is what the server asked for.
 */
export function backoffDelayMs(
  attempt: number,
  policy: RetryPolicy,
  random: () => number = Math.random,
  retryAfterMs?: number,
): number | undefined {
  if (retryAfterMs !== undefined && retryAfterMs > policy.maxRetryAfterMs) {
    return undefined;
  }
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  const jittered = Math.floor(random() * ceiling);
  return Math.max(jittered, retryAfterMs ?? 0);
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

export async function rejected(what: string, answer: Attempted): Promise<PaystreamRejectedError> {
  const { response, requestId } = answer;
  const code = await errorCode(response);
  return new PaystreamRejectedError(
    code,
    `${what}: HTTP ${response.status} (${code}, request ${requestId})`,
    response.status,
    requestId,
  );
}

export interface Attempted {
  readonly response: Response;
  readonly attempts: number;
  /** The request id paystream answered with, else the one sent. */
  readonly requestId: string;
}

/** A fresh request id: `req_` and 32 hex digits (what ingest accepts as a correlation id). */
export async function newRequestId(): Promise<string> {
  const bytes = (await webCrypto()).getRandomValues(new Uint8Array(16));
  return `req_${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

const SANE_ID = /^[\x21-\x7e]{1,128}$/;

function answeredId(response: Response, sent: string): string {
  const id = response.headers.get(REQUEST_ID_HEADER);
  return id !== null && SANE_ID.test(id) ? id : sent;
}

/** The headers every request carries, beside its own. */
export function commonHeaders(transport: TransportOptions, requestId: string): Record<string, string> {
  const agent = transport.userAgent ? `${USER_AGENT} ${transport.userAgent}` : USER_AGENT;
  return { "User-Agent": agent, [REQUEST_ID_HEADER]: requestId };
}

/**
 * Send the request `build(attempt)` returns until it gets an answer that is not retryable.
 *
 * Throws `PaystreamUnavailableError` when every attempt failed (or the server asked for a
 * wait above `maxRetryAfterMs`), or the signal's reason.
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
  const sentId = call.requestId ?? (await newRequestId());
  let requestId = sentId;
  let lastStatus: number | undefined;
  let lastError: unknown;
  for (let attempt = 1; ; attempt++) {
    if (signal?.aborted) {
      throw signal.reason;
    }
    const { url, init } = await build(attempt);
    const headers = { ...commonHeaders(transport, sentId), ...(init.headers as Record<string, string>) };
    let retryAfterMs: number | undefined;
    try {
      const response = await fetchOnce(doFetch, url, { ...init, headers }, timeoutMs, signal);
      requestId = answeredId(response, sentId);
      if (!RETRYABLE_STATUSES.has(response.status)) {
        return { response, attempts: attempt, requestId };
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
    const delay = backoffDelayMs(attempt, policy, Math.random, retryAfterMs);
    if (attempt >= policy.maxAttempts || delay === undefined) {
      const last = lastStatus === undefined ? "no answer" : `HTTP ${lastStatus}`;
      throw new PaystreamUnavailableError(
        `${what}: unavailable after ${attempt} attempt(s) (last: ${last}, request ${requestId})`,
        { status: lastStatus, attempts: attempt, requestId, retryAfterMs },
        lastError === undefined ? undefined : { cause: lastError },
      );
    }
    await sleep(delay, signal);
  }
}
