// The test's implementation of lib/auth.ts's seam: the "session" is two request headers.
export async function getSignedInUser(requestHeaders) {
  const id = requestHeaders.get("x-test-user");
  if (!id) {
    return null;
  }
  return { id, stripeCustomerId: requestHeaders.get("x-test-customer") || null };
}
