/**
 * The seam to your app's authentication: the only app-specific piece of this example.
 *
 * paystream never learns who is signed in; the route handlers, the onboarding Server
 * Action and the pages ask this function with the request's headers (cookies included),
 * and they take the Stripe customer id from *your* user record — never from the browser (a
 * query string or a request body could name anybody's customer).
 */

import "server-only";

export interface SignedInUser {
  /** Your own user id (sent to paystream as `user_id`). */
  readonly id: string;
  /**
   * The Stripe customer (`cus_...`) you stored for this user when you created it (before
   * Checkout, with `metadata.user_id`) — `null` before the user has one.
   */
  readonly stripeCustomerId: string | null;
}

/** `user_1:cus_123` → that user; anything else → `undefined`. */
export function parseExampleUser(value: string | undefined): SignedInUser | undefined {
  const match = /^([\w.-]{1,64}):(cus_\w{1,64})$/.exec(value?.trim() ?? "");
  return match ? { id: match[1] as string, stripeCustomerId: match[2] as string } : undefined;
}

/**
 * Whether the sign-in stand-in may be used with the paystream at `ingestUrl`: only a local
 * `paystream up` (a loopback host). Against any deployed paystream it would sign every
 * visitor in as one customer, so a copied `.env` cannot carry it into production.
 */
export function exampleUserAllowed(ingestUrl: string | undefined): boolean {
  let host: string;
  try {
    host = new URL(ingestUrl ?? "").hostname;
  } catch {
    return false;
  }
  return host === "localhost" || host === "[::1]" || /^127(\.\d{1,3}){3}$/.test(host);
}

/**
 * The user signed in on the request with `requestHeaders` (a route handler passes
 * `request.headers`, a Server Action or a page `await headers()` from `next/headers`), or
 * `null` when nobody is.
 *
 * Implement it with your auth: NextAuth/Auth.js `auth()`, Clerk `auth()`, Supabase
 * `getUser()`, or your own session cookie, then look the Stripe customer id up in your
 * database. Until then, `EXAMPLE_SIGNED_IN_USER=user_1:cus_...` signs every visitor in as
 * that one user (to try the example locally; the browser test uses it) — delete it with
 * this body. Unset, it throws, so a copied route cannot run unauthenticated by accident;
 * set beside a paystream that is not on this machine, it throws too.
 */
export async function getSignedInUser(requestHeaders: Headers): Promise<SignedInUser | null> {
  void requestHeaders;
  const exampleUser = parseExampleUser(process.env.EXAMPLE_SIGNED_IN_USER);
  if (exampleUser !== undefined) {
    if (!exampleUserAllowed(process.env.PAYSTREAM_INGEST_URL)) {
      throw new Error(
        "EXAMPLE_SIGNED_IN_USER is for a local `paystream up` only (PAYSTREAM_INGEST_URL is not a loopback address)",
      );
    }
    return exampleUser;
  }
  throw new Error("getSignedInUser() is not implemented: connect your auth in lib/auth.ts");
}
