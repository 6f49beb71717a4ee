/**
 * GET /billing/portal — the "Update payment method" / "Manage subscription" link: opens a
 * Stripe Billing Portal session for the signed-in customer (`lib/stripe.ts`) and redirects
 * there (303); the portal returns to `/billing`. The customer comes from the session, never
 * from the link. When Stripe cannot be reached, the billing page says so
 * (`?portal=unavailable`) instead of an error page.
 */

import { getSignedInUser } from "@/lib/auth";
import { ROUTES } from "@/lib/billing-view";
import { PortalUnavailableError, billingPortalUrl } from "@/lib/stripe";

export const dynamic = "force-dynamic";

/**
 * `/billing` on the host the browser asked for (behind a proxy, the one it forwarded):
 * `next start` builds `request.url` on `localhost`, which is not where the customer is.
 */
function billingUrl(request: Request): URL {
  const url = new URL("/billing", request.url);
  const host = request.headers.get("x-forwarded-host") ?? request.headers.get("host");
  if (host !== null && /^[\w.-]+(:\d+)?$/.test(host)) {
    url.host = host;
  }
  const proto = request.headers.get("x-forwarded-proto");
  if (proto === "https" || proto === "http") {
    url.protocol = `${proto}:`;
  }
  return url;
}

export async function GET(request: Request): Promise<Response> {
  const billing = billingUrl(request);
  const user = await getSignedInUser(request.headers);
  if (user === null) {
    return Response.redirect(new URL(ROUTES.signIn, billing), 303);
  }
  if (user.stripeCustomerId === null) {
    return Response.redirect(new URL(ROUTES.pricing, billing), 303);
  }
  try {
    return Response.redirect(await billingPortalUrl(user.stripeCustomerId, billing.href), 303);
  } catch (error) {
    if (!(error instanceof PortalUnavailableError)) {
      throw error;
    }
    console.error(`stripe: billing portal unavailable (${error.message})`);
    billing.searchParams.set("portal", "unavailable");
    return Response.redirect(billing, 303);
  }
}
