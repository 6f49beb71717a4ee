/**
 * GET /api/paystream/billing-state — the signed-in customer's billing state for the page.
 *
 * The customer comes from the session (`getSignedInUser`), never from the request, and the
 * answer carries only what the page shows (no email, no ids). paystream's `null` (customer
 * not known yet) is "syncing", which the page shows as such and polls. With paystream's
 * notifications on, the read is cached until paystream says the state changed
 * (`lib/paystream.ts`, `../notifications/route.ts`).
 */

import { getSignedInUser } from "@/lib/auth";
import type { BillingStateAnswer } from "@/lib/billing-view";
import { billingState, json, paystreamFailure } from "@/lib/paystream";

// Always answered fresh: the state changes under the same URL.
export const dynamic = "force-dynamic";

export async function GET(request: Request): Promise<Response> {
  const user = await getSignedInUser(request.headers);
  if (user === null) {
    return json({ error: "signed_out" }, 401);
  }
  if (user.stripeCustomerId === null) {
    const answer: BillingStateAnswer = { status: "no_customer" };
    return json(answer);
  }
  try {
    return json(await billingState(user.stripeCustomerId, request.signal));
  } catch (error) {
    return paystreamFailure(error);
  }
}
