/**
 * /billing — where Stripe Checkout's `success_url` (`/billing?session_id={CHECKOUT_SESSION_ID}`)
 * and the app's "billing" link lead.
 *
 * `?session_id=` is not proof of payment (anyone can type it); it only tells the status box
 * that a payment may be on its way (and `?onboarded=1`, the onboarding Server Action's
 * redirect, that onboarding just ended). The state shown is always paystream's, read on the
 * server: here for the first render (cached until paystream's notification when those are
 * on, `lib/paystream.ts`), then by `/api/paystream/billing-state` while it may change.
 */

import { PaystreamError } from "@paystream/client";
import { headers } from "next/headers";

import { getSignedInUser } from "@/lib/auth";
import type { PageState } from "@/lib/billing-view";
import { billingState } from "@/lib/paystream";

import { BillingStatus } from "./billing-status";

/** The signed-in customer's state, as the status route would answer it. */
async function initialState(): Promise<PageState> {
  const user = await getSignedInUser(await headers());
  if (user === null) {
    return { status: "signed_out" };
  }
  if (user.stripeCustomerId === null) {
    return { status: "no_customer" };
  }
  try {
    return await billingState(user.stripeCustomerId);
  } catch (error) {
    if (error instanceof PaystreamError) {
      console.error(`paystream: ${error.name} (${error.code})`);
      return { status: "unavailable" };
    }
    throw error;
  }
}

export const dynamic = "force-dynamic";

interface BillingPageProps {
  readonly searchParams: Promise<Record<string, string | string[] | undefined>>;
}

export default async function BillingPage({ searchParams }: BillingPageProps) {
  const { session_id: sessionId, onboarded, portal } = await searchParams;
  const initial = await initialState();
  return (
    <main>
      <h1>Billing</h1>
      {portal === "unavailable" && (
        <p role="alert">We could not open the billing portal just now. Please try again in a moment.</p>
      )}
      <BillingStatus
        fromCheckout={typeof sessionId === "string" && sessionId !== ""}
        fromOnboarding={onboarded === "1"}
        initial={initial}
      />
    </main>
  );
}
