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

/** paystream could not be reached or said 503 (or a gateway said 502/504/429), every attempt. */
export class PaystreamUnavailableError extends PaystreamError {
  /** The last HTTP status, or `undefined` when the last attempt got no answer. */
  readonly status: number | undefined;
  readonly attempts: number;

  constructor(
    message: string,
    status: number | undefined,
    attempts: number,
    options?: { cause?: unknown },
  ) {
    super("unavailable", message, true, options);
    this.status = status;
    this.attempts = attempts;
  }
}

/** paystream refused the request for good (401 bad signature or token, 400 malformed, ...). */
export class PaystreamRejectedError extends PaystreamError {
  readonly status: number;

  constructor(code: string, message: string, status: number) {
    super(code, message, false);
    this.status = status;
  }
}

/** paystream answered 2xx with a body that is not what the contract says. */
export class PaystreamResponseError extends PaystreamError {
  constructor(message: string) {
    super("unexpected_response", message, false);
  }
}

/** A bad argument or setting, found before any request was sent. */
export class PaystreamUsageError extends PaystreamError {
  constructor(code: string, message: string) {
    super(code, message, false);
  }
}
