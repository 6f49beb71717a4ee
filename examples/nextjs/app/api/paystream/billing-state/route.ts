/**
 * GET /api/paystream/billing-state — the signed-in customer's billing state for the page.
 *
 * The customer comes from the session (`getSignedInUser`), never from the request, and the
 * answer carries only what the page shows (no email, no ids). paystream's `null` (customer
 * not known yet) is "syncing", which the page shows as such and polls.
 */

import { getCustomerState } from "@paystream/client";

import { getSignedInUser } from "@/lib/auth";
import { type BillingStateAnswer, billingStateAnswer } from "@/lib/billing-view";
import { customerState, json, paystreamFailure } from "@/lib/paystream";

// Always answered fresh: the state changes under the same URL.
export const dynamic = "force-dynamic";

export async function GET(request: Request): Promise<Response> {
  const user = await getSignedInUser(request);
  if (user === null) {
    return json({ error: "signed_out" }, 401);
  }
  if (user.stripeCustomerId === null) {
    const answer: BillingStateAnswer = { status: "no_customer" };
    return json(answer);
  }
  try {
    const record = await getCustomerState(customerState(), user.stripeCustomerId, {
      signal: request.signal,
    });
    return json(billingStateAnswer(record));
  } catch (error) {
    return paystreamFailure(error);
  }
}
