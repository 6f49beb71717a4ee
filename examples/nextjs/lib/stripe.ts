/**
 * The one Stripe call the example makes: a Billing Portal session for the signed-in
 * customer (Create a portal session, https://docs.stripe.com/api/customer_portal/sessions/create:
 * `POST /v1/billing_portal/sessions`, form-encoded `customer` and `return_url`, the secret
 * key as bearer; the answer's `url` is short-lived, so a session is made per click).
 *
 * `STRIPE_SECRET_KEY` (a restricted key with write access to "Customer portal" is enough)
 * and, for a local stand-in, `STRIPE_API_BASE`. Server-only: the key never reaches a browser.
 */

import "server-only";

const STRIPE_API = "https://api.stripe.com";

export class PortalUnavailableError extends Error {}

export async function billingPortalUrl(customer: string, returnUrl: string): Promise<string> {
  const key = process.env.STRIPE_SECRET_KEY?.trim();
  if (!key) {
    throw new PortalUnavailableError("STRIPE_SECRET_KEY is not set");
  }
  const base = process.env.STRIPE_API_BASE?.trim() || STRIPE_API;
  let response: Response;
  try {
    response = await fetch(`${base.replace(/\/$/, "")}/v1/billing_portal/sessions`, {
      method: "POST",
      headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ customer, return_url: returnUrl }),
      cache: "no-store",
      signal: AbortSignal.timeout(10_000),
    });
  } catch {
    throw new PortalUnavailableError("Stripe is unreachable");
  }
  const session = (await response.json().catch(() => null)) as { url?: unknown } | null;
  if (!response.ok || typeof session?.url !== "string") {
    throw new PortalUnavailableError(`Stripe answered ${response.status}`);
  }
  return session.url;
}
