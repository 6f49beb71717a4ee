/**
 * One root error, `PaystreamError`; retryable and permanent failures are distinct classes.
 *
 * Messages name the endpoint, the HTTP status and paystream's error code, never a secret,
 * a token, a request body or a customer id.
 */

export class PaystreamError extends Error {
  /** A short machine-readable reason, e.g. `invalid_signature`, `unavailable`. */
  readonly code: string;
  /** True when trying again later may succeed. */
  readonly retryable: boolean;

  constructor(code: string, message: string, retryable: boolean, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.retryable = retryable;
  }
}

export interface UnavailableDetails {
  /** The last HTTP status, or `undefined` when the last attempt got no answer. */
  readonly status: number | undefined;
  readonly attempts: number;
  /** The `X-Request-Id` of the call (paystream's answer, else the one sent). */
  readonly requestId: string;
  /** What the last answer's `Retry-After` asked for, in milliseconds, if anything. */
  readonly retryAfterMs: number | undefined;
}

/** paystream could not be reached or said 503 (or a gateway said 502/504/429), every attempt. */
export class PaystreamUnavailableError extends PaystreamError {
  /** The last HTTP status, or `undefined` when the last attempt got no answer. */
  readonly status: number | undefined;
  readonly attempts: number;
  /** The `X-Request-Id` to quote when asking paystream's operators what happened. */
  readonly requestId: string;
  /** paystream's last `Retry-After` in milliseconds (hand it on: a 503 of your own). */
  readonly retryAfterMs: number | undefined;

  constructor(message: string, details: UnavailableDetails, options?: { cause?: unknown }) {
    super("unavailable", message, true, options);
    this.status = details.status;
    this.attempts = details.attempts;
    this.requestId = details.requestId;
    this.retryAfterMs = details.retryAfterMs;
  }
}

/** paystream refused the request for good (401 bad signature or token, 400 malformed, ...). */
export class PaystreamRejectedError extends PaystreamError {
  readonly status: number;
  /** The `X-Request-Id` paystream answered with (it names the request in paystream's logs). */
  readonly requestId: string;

  constructor(code: string, message: string, status: number, requestId: string) {
    super(code, message, false);
    this.status = status;
    this.requestId = requestId;
  }
}

/** paystream answered 2xx with a body that is not what the contract says. */
export class PaystreamResponseError extends PaystreamError {
  /** The request's `X-Request-Id`, when the error came from an answer. */
  readonly requestId: string | undefined;

  constructor(message: string, requestId?: string) {
    super("unexpected_response", message, false);
    this.requestId = requestId;
  }
}

/** A product notification (`billing_state.changed`) whose signature or body is not valid. */
export class PaystreamWebhookError extends PaystreamError {
  constructor(code: "invalid_signature" | "malformed_event", message: string) {
    super(code, message, false);
  }
}

/** A bad argument or setting, found before any request was sent. */
export class PaystreamUsageError extends PaystreamError {
  constructor(code: string, message: string) {
    super(code, message, false);
  }
}
