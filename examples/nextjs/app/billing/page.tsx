/**
 * /billing — where Stripe Checkout's `success_url` (`/billing?session_id={CHECKOUT_SESSION_ID}`)
 * and the app's "billing" link lead.
 *
 * `?session_id=` is not proof of payment (anyone can type it); it only tells the status box
 * that a payment may be on its way (and `?onboarded=1`, the onboarding Server Action's
 * redirect, that onboarding just ended). The state shown is always paystream's, read on the
 * server by `/api/paystream/billing-state`.
 */

import { BillingStatus } from "./billing-status";

export const dynamic = "force-dynamic";

interface BillingPageProps {
  readonly searchParams: Promise<Record<string, string | string[] | undefined>>;
}

export default async function BillingPage({ searchParams }: BillingPageProps) {
  const { session_id: sessionId, onboarded, portal } = await searchParams;
  return (
    <main>
      <h1>Billing</h1>
      {portal === "unavailable" && (
        <p role="alert">We could not open the billing portal just now. Please try again in a moment.</p>
      )}
      <BillingStatus
        fromCheckout={typeof sessionId === "string" && sessionId !== ""}
        fromOnboarding={onboarded === "1"}
      />
    </main>
  );
}
