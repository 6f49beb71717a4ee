// The test's implementation of lib/auth.ts's seam: the "session" is two request headers.
export async function getSignedInUser(request) {
  const id = request.headers.get("x-test-user");
  if (!id) {
    return null;
  }
  return { id, stripeCustomerId: request.headers.get("x-test-customer") || null };
}
