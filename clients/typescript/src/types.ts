/**
 * The wire types of paystream's first-party contract (SPEC §3 and §5).
 *
 * They mirror what the services really accept and answer: the app event is what
 * `ingest/envelope.py` (`parse_app_event`) admits, the customer record is what ingest's
 * `GET /v1/customers/{id}` and the worker's `GET /customers/{id}` serialise
 * (`CustomerRecord.public()` in `processors/lifecycle.py`), the notification is what the
 * app-webhook sink (`sinks/app_webhook.py`) POSTs. The package's e2e test compiles the
 * live answers against these types.
 */

/** The first-party event types `POST /events/app` accepts. */
export const APP_EVENT_TYPES = [
  "onboarding.started",
  "onboarding.completed",
  "customer.linked",
] as const;

export type AppEventType = (typeof APP_EVENT_TYPES)[number];

interface AppEventBase {
  /** Unique per event and stable across retries: paystream applies every id once. */
  readonly id: string;
  /** Unix seconds when the step happened in the product. */
  readonly created: number;
  /** The Stripe customer (`cus_...`) the step belongs to. */
  readonly stripe_customer_id: string;
}

/** `onboarding.started` opens onboarding; `onboarding.completed` closes it (→ `active`). */
export interface OnboardingEvent extends AppEventBase {
  readonly type: "onboarding.started" | "onboarding.completed";
  /** The product's own user id, when known. */
  readonly user_id?: string | null;
}

/** `customer.linked` ties the product's user to the Stripe customer (after sign-up). */
export interface CustomerLinkedEvent extends AppEventBase {
  readonly type: "customer.linked";
  readonly user_id: string;
}

/** The JSON body of `POST /events/app`. */
export type AppEvent = OnboardingEvent | CustomerLinkedEvent;

/** An app event before `id` and `created` are filled in (`sendAppEvent` does it once). */
export type AppEventInput =
  | (Omit<OnboardingEvent, "id" | "created"> & { readonly id?: string; readonly created?: number })
  | (Omit<CustomerLinkedEvent, "id" | "created"> & {
      readonly id?: string;
      readonly created?: number;
    });

/** The billing states of SPEC §5. */
export const BILLING_STATES = [
  "onboarding_pending",
  "active",
  "payment_failed",
  "paused",
  "refunded",
  "canceled",
] as const;

export type BillingState = (typeof BILLING_STATES)[number];

/** Where the customer's onboarding stands: opened by checkout or `onboarding.started`. */
export type OnboardingStatus = "open" | "completed";

/** The canonical billing record, exactly as `GET /customers/{id}` returns it. */
export interface CustomerRecord {
  readonly stripe_customer_id: string;
  /** The product's user id (from `customer.linked` or Stripe `metadata.user_id`). */
  readonly user_id: string | null;
  /** The newest email any event carried. */
  readonly email: string | null;
  /** `null` while only app events are known (no Stripe event has set a state yet). */
  readonly billing_state: BillingState | null;
  /** When `billing_state` last changed, Unix milliseconds; `null` when it never did. */
  readonly billing_state_changed_at_ms: number | null;
  /** The event that caused the current state (a Stripe `evt_...` or an app event id). */
  readonly cause_event_id: string | null;
  readonly cause_event_type: string | null;
  readonly onboarding: OnboardingStatus | null;
  readonly livemode: boolean;
  /**
   * Each subscription's status and since when (SPEC §5). Optional: paystream releases before
   * the per-subscription model do not send it. Read `billing_state` for decisions; this is
   * for display (which plan or add-on failed).
   */
  readonly subscriptions?: SubscriptionRecords;
}

/** What paystream knows of one subscription (SPEC §5). */
export const SUBSCRIPTION_STATUSES = ["paid", "failing", "paused", "ended"] as const;
export type SubscriptionStatus = (typeof SUBSCRIPTION_STATUSES)[number];

/** One subscription as the record carries it. */
export interface SubscriptionRecord {
  /** Stripe's subscription id (`sub_...`); null for one carried over from an older record. */
  readonly id: string | null;
  /** `paid` (active or trialing), `failing`, `paused` or `ended` (terminal). */
  readonly status: SubscriptionStatus;
  /** Since when (Unix milliseconds) the subscription has had this status. */
  readonly since_ms: number;
}

/** The record's subscriptions, ordered by id. */
export type SubscriptionRecords = readonly SubscriptionRecord[];

/** The one notification type paystream POSTs to the product (SPEC §6). */
export const BILLING_STATE_CHANGED = "billing_state.changed";

/** The body of a product notification: a customer's billing state changed. */
export interface BillingStateChangedEvent {
  /** Deterministic per state change: the same change is never two ids (deduplicate by it). */
  readonly id: string;
  readonly type: typeof BILLING_STATE_CHANGED;
  /** Unix seconds of the change. */
  readonly created: number;
  readonly stripe_customer_id: string;
  readonly user_id: string | null;
  readonly previous_state: BillingState | null;
  readonly state: BillingState;
}
