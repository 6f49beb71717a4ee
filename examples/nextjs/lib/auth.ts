/**
 * The seam to your app's authentication: the only app-specific piece of this example.
 *
 * paystream never learns who is signed in; the route handlers ask this function, and they
 * take the Stripe customer id from *your* user record — never from the browser (a query
 * string or a request body could name anybody's customer).
 */

export interface SignedInUser {
  /** Your own user id (sent to paystream as `user_id`). */
  readonly id: string;
  /**
   * The Stripe customer (`cus_...`) you stored for this user when you created it (before
   * Checkout, with `metadata.user_id`) — `null` before the user has one.
   */
  readonly stripeCustomerId: string | null;
}

/**
 * The user signed in on `request`, or `null` when nobody is.
 *
 * Implement it with your auth: NextAuth/Auth.js `auth()`, Clerk `auth()`, Supabase
 * `getUser()`, or your own session cookie, then look the Stripe customer id up in your
 * database. Until then it throws, so a copied route cannot run unauthenticated by accident.
 */
export async function getSignedInUser(request: Request): Promise<SignedInUser | null> {
  void request;
  throw new Error("getSignedInUser() is not implemented: connect your auth in lib/auth.ts");
}
