/**
 * What the billing page shows, as a pure function of what the server said (no React, no
 * fetch), so every state has a message and none is a dead end.
 *
 * The page never decides the state itself: a `?session_id=` in the URL only says the
 * browser came back from Stripe Checkout, which anybody can type. It changes the wording
 * ("we are confirming your payment") and how long the page keeps asking, never the state.
 */

import {
  type BillingState,
  type CustomerRecord,
  type OnboardingStatus,
  hasAccess,
} from "@paystream/client";

/** What `GET /api/paystream/billing-state` answers with 200 (only what the page shows). */
export type BillingStateAnswer =
  /** paystream has not seen a payment for this customer yet (right after checkout). */
  | { readonly status: "syncing" }
  /** The signed-in user has no Stripe customer: never went to checkout. */
  | { readonly status: "no_customer" }
  | {
      readonly status: "known";
      readonly billingState: BillingState;
      readonly changedAtMs: number | null;
      readonly onboarding: OnboardingStatus | null;
    };

/** Everything the page can be in: the route's answers plus what the browser saw. */
export type PageState =
  | BillingStateAnswer
  | { readonly status: "loading" }
  /** The route answered 503 or the network failed: keep asking. */
  | { readonly status: "unavailable" }
  | { readonly status: "signed_out" };

/** The route's answer for paystream's record (`null`: paystream does not know it yet). */
export function billingStateAnswer(record: CustomerRecord | null): BillingStateAnswer {
  if (record === null || record.billing_state === null) {
    return { status: "syncing" };
  }
  return {
    status: "known",
    billingState: record.billing_state,
    changedAtMs: record.billing_state_changed_at_ms,
    onboarding: record.onboarding,
  };
}

/** Where the actions lead: your app's own pages (adapt them). */
export const ROUTES = {
  dashboard: "/",
  onboarding: "/onboarding",
  /** A route of yours that opens a Stripe Billing Portal session for the signed-in user. */
  updatePayment: "/billing/portal",
  pricing: "/pricing",
  signIn: "/sign-in",
  support: "mailto:support@example.com",
} as const;

export interface BillingView {
  readonly tone: "success" | "info" | "warning" | "error";
  readonly title: string;
  readonly body: string;
  readonly action: { readonly label: string; readonly href: string } | null;
  /** Ask the server again (the state may still change because of what just happened). */
  readonly keepPolling: boolean;
}

export interface ViewContext {
  /** The browser came back from Stripe Checkout (`?session_id=`): a payment may be on its way. */
  readonly fromCheckout: boolean;
  /** How long this page has been waiting. */
  readonly waitedMs: number;
  /**
   * The browser came from finishing onboarding (`?onboarded=1`, the Server Action's
   * redirect): paystream may not have the step yet, so `onboarding_pending` is shown as
   * "finishing" for a while, polling, rather than asking for onboarding again.
   */
  readonly fromOnboarding?: boolean;
}

function finishingSetup(): BillingView {
  return {
    tone: "info",
    title: "Finishing your setup…",
    body: "Your onboarding is done; we are switching everything on. This page updates by itself.",
    action: null,
    keepPolling: true,
  };
}

/** After this long, "still syncing" says so plainly and offers support (and keeps polling). */
export const SLOW_AFTER_MS = 60_000;
/** After checkout, a state without access is shown as "confirming" for this long first. */
export const CHECKOUT_GRACE_MS = 120_000;

/** Delay before poll number `n` (0-based): 1 s, growing by half each time, at most 10 s. */
export function nextPollDelayMs(n: number): number {
  return Math.min(10_000, Math.round(1000 * 1.5 ** n));
}

function syncing(context: ViewContext, reachable: boolean): BillingView {
  const slow = context.waitedMs >= SLOW_AFTER_MS;
  const title = context.fromCheckout
    ? "Thanks! We are confirming your payment"
    : "We are still syncing your billing details";
  const body = slow
    ? "This is taking longer than usual. Your payment is safe with Stripe, and this page " +
      "updates by itself as soon as it is confirmed. You can also leave and come back later."
    : reachable
      ? "This usually takes a few seconds. This page updates by itself."
      : "We cannot reach our billing service right now. This page keeps trying by itself.";
  return {
    tone: "info",
    title,
    body,
    action: slow ? { label: "Contact support", href: ROUTES.support } : null,
    keepPolling: true,
  };
}

function assertNever(value: never): never {
  throw new Error(`unhandled billing state: ${String(value)}`);
}

function ofState(state: BillingState): BillingView {
  switch (state) {
    case "active":
      return {
        tone: "success",
        title: "You are all set",
        body: "Your subscription is active.",
        action: { label: "Go to your dashboard", href: ROUTES.dashboard },
        keepPolling: false,
      };
    case "onboarding_pending":
      return {
        tone: "success",
        title: "Payment received — let's finish setting up",
        body: "Your subscription is paid. Complete onboarding to start using everything.",
        action: { label: "Continue onboarding", href: ROUTES.onboarding },
        keepPolling: false,
      };
    case "payment_failed":
      return {
        tone: "error",
        title: "Your last payment failed",
        body: "Please update your card so your subscription continues without interruption.",
        action: { label: "Update payment method", href: ROUTES.updatePayment },
        keepPolling: false,
      };
    case "paused":
      return {
        tone: "warning",
        title: "Your subscription is paused",
        body: "Billing is on hold. Resume whenever you are ready.",
        action: { label: "Manage subscription", href: ROUTES.updatePayment },
        keepPolling: false,
      };
    case "refunded":
      return {
        tone: "warning",
        title: "Your payment was refunded",
        body: "The full amount is on its way back to you. Contact us if this is unexpected.",
        action: { label: "Contact support", href: ROUTES.support },
        keepPolling: false,
      };
    case "canceled":
      return {
        tone: "warning",
        title: "Your subscription has ended",
        body: "You can subscribe again at any time.",
        action: { label: "Choose a plan", href: ROUTES.pricing },
        keepPolling: false,
      };
    default:
      return assertNever(state);
  }
}

/** The view for `state`: a title, a sentence, at most one action, and whether to poll. */
export function describeBilling(state: PageState, context: ViewContext): BillingView {
  switch (state.status) {
    case "loading":
      return {
        tone: "info",
        title: "Checking your billing status…",
        body: "One moment.",
        action: null,
        keepPolling: true,
      };
    case "signed_out":
      return {
        tone: "info",
        title: "Please sign in",
        body: "Sign in to see your billing status.",
        action: { label: "Sign in", href: ROUTES.signIn },
        keepPolling: false,
      };
    case "unavailable":
      return syncing(context, false);
    case "syncing":
      return syncing(context, true);
    case "no_customer":
      return context.fromCheckout && context.waitedMs < CHECKOUT_GRACE_MS
        ? syncing(context, true)
        : {
            tone: "info",
            title: "No subscription yet",
            body: "Choose a plan to get started.",
            action: { label: "Choose a plan", href: ROUTES.pricing },
            keepPolling: false,
          };
    case "known": {
      // Back from checkout with a state that has no access (an earlier failed payment, say):
      // the new payment may simply not have arrived yet, so confirm before showing it.
      const waiting =
        context.fromCheckout &&
        !hasAccess(state.billingState) &&
        context.waitedMs < CHECKOUT_GRACE_MS;
      if (waiting) {
        return syncing(context, true);
      }
      const finishing =
        context.fromOnboarding === true &&
        state.billingState === "onboarding_pending" &&
        context.waitedMs < CHECKOUT_GRACE_MS;
      return finishing ? finishingSetup() : ofState(state.billingState);
    }
    default:
      return assertNever(state);
  }
}
