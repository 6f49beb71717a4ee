/**
 * POST /api/paystream/onboarding — record an onboarding step of the signed-in user.
 *
 * Body: `{"step": "linked" | "started" | "completed"}`:
 * - `linked` after sign-up, once the user has a Stripe customer (`customer.linked`),
 * - `started` when onboarding begins (`onboarding.started`),
 * - `completed` when it is done (`onboarding.completed`: `onboarding_pending` → `active`).
 *
 * Who and which customer come from the session, never from the body. Event ids are
 * derived from the customer (and user), so a double click or a browser retry is applied
 * once by paystream. The body must be JSON: a cross-site HTML form cannot send that
 * without a CORS preflight, which complements your auth's own CSRF protection.
 */

import { sendAppEvent } from "@paystream/client";

import { getSignedInUser } from "@/lib/auth";
import { STEPS, onboardingEvent, stepOf } from "@/lib/onboarding";
import { appEvents, json, paystreamFailure } from "@/lib/paystream";

export async function POST(request: Request): Promise<Response> {
  const user = await getSignedInUser(request.headers);
  if (user === null) {
    return json({ error: "signed_out" }, 401);
  }
  if (!request.headers.get("Content-Type")?.startsWith("application/json")) {
    return json({ error: "json_required" }, 415);
  }
  const step = await stepOf(request);
  if (step === null) {
    return json({ error: "unknown_step", steps: Object.keys(STEPS) }, 400);
  }
  if (user.stripeCustomerId === null) {
    return json({ error: "no_customer" }, 409);
  }
  try {
    const sent = await sendAppEvent(
      appEvents(),
      onboardingEvent(step, user.stripeCustomerId, user.id),
      { signal: request.signal },
    );
    return json({ recorded: sent.event.type });
  } catch (error) {
    return paystreamFailure(error);
  }
}
