/**
 * The demo certificates: one per row of the outcome table.
 *
 * `npm start` seeds the SCM simulator with these, the sample events in `events/` use the same ids,
 * and the tests use them as named fixtures, so "scs1000000000004 is forbidden" means the same thing
 * everywhere. Ids follow the documented shape: exactly 16 characters [A-Za-z0-9].
 */
export const DEMO = {
  /** Application under review: cancel-cert answers 200 and the certificate moves to CANCELCHECKING. */
  withdrawn: "scs1000000000001",
  /** Already withdrawn (status PAID): cancel-cert answers 400 SCM.0010, the details show PAID. */
  alreadyWithdrawn: "scs1000000000002",
  /** Issued certificate: cancel-cert answers 400 SCM.0010, the details show ISSUED, so it is rejected. */
  rejected: "scs1000000000003",
  /** The token's user may not touch it: 403. */
  forbidden: "scs1000000000004",
  /** Not known to SCM: 404. */
  notFound: "scs1000000000005",
  /** Under review, but the first two calls answer 503: withdrawn after retries. */
  transientThenWithdrawn: "scs1000000000006",
  /** Under review, but every call answers 500: dead-lettered as retries_exhausted after MAX_RECEIVE_COUNT receives. */
  alwaysFailing: "scs1000000000007",
  /** Under review, first call throttled (429 APIG.0308, Retry-After: 1): withdrawn after the wait. */
  throttledThenWithdrawn: "scs1000000000008",
} as const;

export type DemoName = keyof typeof DEMO;

/** A body that is not JSON, and one whose certificate_id breaks the schema: both are `invalid_message`. */
export const DEMO_INVALID_BODIES = ["this is not json", '{"certificate_id":"../../etc/passwd"}'] as const;
