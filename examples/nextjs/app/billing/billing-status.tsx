"use client";

/**
 * The billing status box: shows `describeBilling`'s view of the state the page rendered
 * with (`initial`, read on the server), and asks `/api/paystream/billing-state` again with
 * growing delays only while the state may still change (after checkout or onboarding, while
 * syncing, while paystream is unreachable). A settled state is not polled. Every view has a
 * next step.
 */

import { useEffect, useState } from "react";

import {
  type BillingStateAnswer,
  type PageState,
  describeBilling,
  nextPollDelayMs,
} from "@/lib/billing-view";

const ENDPOINT = "/api/paystream/billing-state";

async function fetchState(signal: AbortSignal): Promise<PageState> {
  try {
    const response = await fetch(ENDPOINT, { cache: "no-store", signal });
    if (response.status === 401) {
      return { status: "signed_out" };
    }
    if (!response.ok) {
      return { status: "unavailable" };
    }
    return (await response.json()) as BillingStateAnswer;
  } catch {
    return { status: "unavailable" };
  }
}

export interface BillingStatusProps {
  /** The page was opened from Stripe Checkout's success URL (wording only, never the state). */
  readonly fromCheckout: boolean;
  /** The page was opened right after onboarding was completed (wording and polling only). */
  readonly fromOnboarding: boolean;
  /** What the server read while rendering the page. */
  readonly initial: PageState;
}

export function BillingStatus({ fromCheckout, fromOnboarding, initial }: BillingStatusProps) {
  const [startedAt] = useState(() => Date.now());
  const [seen, setSeen] = useState<{ state: PageState; at: number }>({
    state: initial,
    at: startedAt,
  });
  const [first] = useState(initial);

  useEffect(() => {
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const poll = async (n: number): Promise<void> => {
      const state = await fetchState(controller.signal);
      if (controller.signal.aborted) {
        return;
      }
      const at = Date.now();
      setSeen({ state, at });
      if (describeBilling(state, { fromCheckout, fromOnboarding, waitedMs: at - startedAt }).keepPolling) {
        timer = setTimeout(() => void poll(n + 1), nextPollDelayMs(n));
      }
    };
    if (describeBilling(first, { fromCheckout, fromOnboarding, waitedMs: 0 }).keepPolling) {
      timer = setTimeout(() => void poll(1), nextPollDelayMs(0));
    }
    return () => {
      controller.abort();
      clearTimeout(timer);
    };
  }, [fromCheckout, fromOnboarding, first, startedAt]);

  const view = describeBilling(seen.state, {
    fromCheckout,
    fromOnboarding,
    waitedMs: seen.at - startedAt,
  });
  return (
    <section role="status" aria-live="polite" data-tone={view.tone}>
      <h2>{view.title}</h2>
      <p>{view.body}</p>
      {view.action !== null && <a href={view.action.href}>{view.action.label}</a>}
      {view.keepPolling && <p aria-hidden="true">Checking again automatically…</p>}
    </section>
  );
}
