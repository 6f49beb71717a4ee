/**
 * POST /api/paystream/notifications — paystream's product notifications (SPEC §6): set
 * paystream's `PAYSTREAM_APP_WEBHOOK_URL` to this route's public URL and the same
 * `PAYSTREAM_APP_WEBHOOK_SECRET` on both sides.
 *
 * Each `billing_state.changed` is verified on its raw bytes (`verifyPaystreamWebhook`:
 * HMAC-SHA256, constant-time, timestamp within 5 minutes) and expires the cached state of
 * that customer (`revalidateTag(tag, { expire: 0 })`: the next read asks paystream, no
 * stale answer first — Next's advice for invalidations that come from a webhook), so the
 * billing page shows the new state at its next look instead of after its cache ran out.
 * Delivery is at least once: expiring twice is harmless, so no deduplication is needed.
 *
 * Answers: 200 `{"received": true}`; 401 bad or missing signature; 400 signed but not a
 * notification; 404 while `PAYSTREAM_APP_WEBHOOK_SECRET` is unset (notifications off).
 * paystream retries anything but a 2xx or a permanent 4xx, as its sinks do.
 */

import { PaystreamWebhookError, WEBHOOK_SIGNATURE_HEADER, verifyPaystreamWebhook } from "@paystream/client";
import { revalidateTag } from "next/cache";

import { billingTag, json, notificationSecret } from "@/lib/paystream";

export const dynamic = "force-dynamic";

export async function POST(request: Request): Promise<Response> {
  const secret = notificationSecret();
  if (secret === null) {
    return json({ error: "notifications_off" }, 404);
  }
  const body = await request.text();
  try {
    const event = await verifyPaystreamWebhook(body, request.headers.get(WEBHOOK_SIGNATURE_HEADER), secret);
    revalidateTag(billingTag(event.stripe_customer_id), { expire: 0 });
    return json({ received: true, id: event.id });
  } catch (error) {
    if (error instanceof PaystreamWebhookError) {
      return json({ error: error.code }, error.code === "invalid_signature" ? 401 : 400);
    }
    throw error;
  }
}
