"use client";

/**
 * The billing status box: asks `/api/paystream/billing-state` and shows `describeBilling`'s
 * view, polling with growing delays while the state may still change (after checkout,
 * while syncing, while paystream is unreachable). Every view has a next step.
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
}

export function BillingStatus({ fromCheckout, fromOnboarding }: BillingStatusProps) {
  const [startedAt] = useState(() => Date.now());
  const [seen, setSeen] = useState<{ state: PageState; at: number }>({
    state: { status: "loading" },
    at: startedAt,
  });

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
    void poll(0);
    return () => {
      controller.abort();
      clearTimeout(timer);
    };
  }, [fromCheckout, fromOnboarding, startedAt]);

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
