/**
 * The one vocabulary for a record's fate. The worker's results, its `RecordOutcome`s (the ledger's
 * job states), the `batch_processed` counts and the metrics all use these four words:
 *
 * - `withdrawn`: SCM accepted the withdrawal (acknowledged);
 * - `already_withdrawn`: nothing was under review any more (acknowledged);
 * - `dead_lettered`: sent to the DLQ with a `failure_reason` (then acknowledged);
 * - `retrying`: reported in `batchItemFailures`, so SQS delivers it again, with a reason.
 */
import type { FailureReason, PermanentReason, RetryReason } from "./classify.ts";
import type { DeadlineSubject } from "./errors.ts";
import type { WithdrawalRequest } from "./message.ts";

export const FATES = ["withdrawn", "already_withdrawn", "dead_lettered", "retrying"] as const;
export type Fate = (typeof FATES)[number];

/**
 * Why a record is left for retry: an SCM retry reason, an external call that ran out of the
 * invocation's time (`deadline:secrets_manager`, `deadline:dead_letter`, ...), a DLQ send that
 * failed, or a bug (`crashed`).
 */
export type RetryCause = RetryReason | `deadline:${DeadlineSubject}` | "dead_letter_failed" | "crashed";

/** Dead-letter reasons SCM's answers give at once (the others come from the message or the receive count). */
export type AnswerFailureReason = PermanentReason;

/** What the last SCM answer said, for logs and dead-letter attributes. */
export interface LastAnswer {
  httpStatus: number | undefined;
  errorCode: string | undefined;
  errorMsg: string | undefined;
}

export const NO_ANSWER: LastAnswer = { httpStatus: undefined, errorCode: undefined, errorMsg: undefined };

/** The fate of one certificate's withdrawal in this invocation, shared by every record that asked for it. */
export type WithdrawalResult = { attempts: number; last: LastAnswer } & (
  | { state: "withdrawn" }
  | { state: "already_withdrawn"; certificateStatus: string }
  | { state: "dead_lettered"; reason: AnswerFailureReason }
  /** `retryAfterMs`: the longest `Retry-After` SCM asked for (the redelivery waits at least that long). */
  | { state: "retrying"; reason: RetryCause; retryAfterMs?: number | undefined }
);

/**
 * The fields every per-record log line carries, so one Logs Insights filter (`requestId`,
 * `certificateId`, `messageId`, `batchId`) finds a job's whole story.
 */
export interface Correlation {
  certificateId: string | undefined;
  messageId: string;
  /** The message's `request_id`, default its SQS messageId. */
  requestId: string;
  source: string | undefined;
  batchId: string | undefined;
  receiveCount: number;
  /** The audit trail: who asked for the job and why (the message's `requested_by` and `reason`). */
  requestedBy?: string | undefined;
  requestReason?: string | undefined;
}

/** Which record an outcome is about. */
export interface RecordRef {
  messageId: string;
  requestId: string;
  certificateId: string | undefined;
  request: WithdrawalRequest | undefined;
  receiveCount: number;
}

/** A record's fate with what led to it. */
export type FateDetails = { attempts: number; last: LastAnswer } & (
  | { state: "withdrawn" | "already_withdrawn" }
  | { state: "dead_lettered"; reason: FailureReason }
  | { state: "retrying"; reason: RetryCause }
);

/** One record's final fate, given once per record to `onOutcome` (the ledger records it). */
export type RecordOutcome = RecordRef & FateDetails;

export function assertNever(value: never): never {
  throw new Error(`unhandled case: ${JSON.stringify(value)}`);
}
