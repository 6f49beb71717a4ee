"use server";

/**
 * The onboarding steps as a Server Action: `<form action={recordOnboardingStep}>` with a
 * `step` field (`linked`, `started` or `completed`) — no client JavaScript, no API route,
 * and Next refuses a call from another origin (it compares `Origin` with the host).
 *
 * As in the route handler (`app/api/paystream/onboarding/route.ts`), who and which customer
 * come from the session, the event id is stable per customer (a double submit counts once),
 * and the secret stays on the server (`lib/paystream.ts`).
 */

import { PaystreamError, sendAppEvent } from "@paystream/client";
import { headers } from "next/headers";
import { redirect } from "next/navigation";

import { getSignedInUser } from "@/lib/auth";
import { ROUTES } from "@/lib/billing-view";
import { isStep, onboardingEvent } from "@/lib/onboarding";
import { appEvents } from "@/lib/paystream";

/** Where the step leads: billing after `completed` (it polls until paystream has it). */
export async function recordOnboardingStep(form: FormData): Promise<void> {
  const user = await getSignedInUser(await headers());
  if (user === null) {
    redirect(ROUTES.signIn);
  }
  const step = form.get("step");
  if (!isStep(step) || user.stripeCustomerId === null) {
    redirect(`${ROUTES.onboarding}?error=${isStep(step) ? "no_customer" : "unknown_step"}`);
  }
  try {
    await sendAppEvent(appEvents(), onboardingEvent(step, user.stripeCustomerId, user.id));
  } catch (error) {
    if (!(error instanceof PaystreamError)) {
      throw error;
    }
    console.error(`paystream: ${error.name} (${error.code})`);
    redirect(`${ROUTES.onboarding}?error=${error.retryable ? "unavailable" : "failed"}`);
  }
  redirect(step === "completed" ? "/billing?onboarded=1" : ROUTES.onboarding);
}
