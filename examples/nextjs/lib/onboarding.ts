/**
 * Onboarding steps as paystream app events (used by `app/api/paystream/onboarding/route.ts`;
 * a route file may only export its handlers and route settings).
 */

import type { AppEventInput } from "@paystream/client";

export const STEPS = {
  linked: "customer.linked",
  started: "onboarding.started",
  completed: "onboarding.completed",
} as const;

export type Step = keyof typeof STEPS;

export function isStep(value: unknown): value is Step {
  return typeof value === "string" && Object.hasOwn(STEPS, value);
}

export async function stepOf(request: Request): Promise<Step | null> {
  try {
    const body: unknown = await request.json();
    const step = typeof body === "object" && body !== null ? (body as { step?: unknown }).step : null;
    return isStep(step) ? step : null;
  } catch {
    return null;
  }
}

/** The app event for `step` of `userId` on `customer`, with an id stable across retries. */
export function onboardingEvent(step: Step, customer: string, userId: string): AppEventInput {
  const type = STEPS[step];
  if (type === "customer.linked") {
    return { id: `${type}:${customer}:${userId}`, type, stripe_customer_id: customer, user_id: userId };
  }
  return { id: `${type}:${customer}`, type, stripe_customer_id: customer, user_id: userId };
}
