/** / — stands for your app's dashboard (where "Go to your dashboard" leads). */

import Link from "next/link";

export default function Home() {
  return (
    <main>
      <h1>Dashboard</h1>
      <p>
        Your app goes here. <Link href="/billing">Billing</Link> · <Link href="/onboarding">Onboarding</Link>
      </p>
    </main>
  );
}
