/**
 * /onboarding — where "Continue onboarding" leads: your setup steps, then one button that
 * records `onboarding.completed` through the Server Action (`./actions.ts`), which turns the
 * customer from `onboarding_pending` into `active` in paystream.
 */

import { recordOnboardingStep } from "./actions";

export const dynamic = "force-dynamic";

const PROBLEMS: Record<string, string> = {
  unavailable: "We could not record that just now. Please try again in a moment.",
  failed: "Something is wrong on our side; we have been notified. Please contact support.",
  no_customer: "Choose a plan first: your onboarding starts after checkout.",
  unknown_step: "That step does not exist.",
};

interface OnboardingPageProps {
  readonly searchParams: Promise<Record<string, string | string[] | undefined>>;
}

export default async function OnboardingPage({ searchParams }: OnboardingPageProps) {
  const { error } = await searchParams;
  const problem = typeof error === "string" ? PROBLEMS[error] : undefined;
  return (
    <main>
      <h1>Finish setting up</h1>
      {problem !== undefined && <p role="alert">{problem}</p>}
      <p>Your own setup steps go here (connect a data source, invite your team, …).</p>
      <form action={recordOnboardingStep}>
        <button type="submit" name="step" value="completed">
          Finish setup
        </button>
      </form>
    </main>
  );
}
