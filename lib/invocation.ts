/**
 * One invocation's state, as one object: its deadlines and their signals, its logger and metrics,
 * and `settle`, the single exit every record goes through (one outcome line, one count, one
 * `onOutcome` call). `finish` settles whatever a bug left unsettled, changes the visibility of the
 * records left for retry, and writes the `batch_processed` line and the metrics.
 */
import type { SQSBatchResponse } from "aws-lambda";
import { withDeadline, signalAt } from "./deadline.ts";
import { describeError } from "./errors.ts";
import type { Job } from "./jobs.ts";
import type { Logger, LogFields } from "./logger.ts";
import { createMetricsRecorder, type MetricsRecorder, type MetricsSink } from "./metrics.ts";
import {
  assertNever,
  NO_ANSWER,
  type FateDetails,
  type RecordOutcome,
  type RecordRef,
  type RetryCause,
} from "./outcome.ts";
import { deadlineFrom } from "./retry.ts";

/** The subset of the Lambda context the worker uses. */
export interface InvocationContext {
  getRemainingTimeInMillis?: () => number;
  awsRequestId?: string;
}

/** When the context gives no remaining time (a plain script), assume Lambda's default 60 s function. */
const DEFAULT_REMAINING_MS = 60_000;
/**
 * Settling (dead letters, ledger writes, visibility changes) stops this long before the function's
 * own timeout, so the response always leaves in time (middy's early timeout fires 5 ms before).
 */
const SETTLE_RESERVE_MS = 100;

export interface InvocationOptions {
  context: InvocationContext;
  deadlineMarginMs: number;
  logger: Logger;
  now: () => number;
  onOutcome?: ((outcome: RecordOutcome) => void | Promise<void>) | undefined;
}

/** What `settle` writes: the record's one outcome line. */
export interface OutcomeLine {
  level: "info" | "warn" | "error";
  event: string;
  fields: LogFields;
}

export interface RetryEntry {
  job: Job;
  /** The longest `Retry-After` SCM asked for, if any. */
  retryAfterMs: number | undefined;
}

export interface Invocation {
  readonly started: number;
  /** No new SCM call starts after this (remaining time minus DEADLINE_MARGIN_MS). */
  readonly deadline: number;
  /** Aborted at `deadline`. */
  readonly signal: AbortSignal;
  /** Aborted just before the function's timeout: the end of settling. */
  readonly settleSignal: AbortSignal;
  readonly log: Logger;
  readonly metrics: MetricsRecorder;
  now(): number;
  isSettled(job: Job): boolean;
  /** Gives a record its fate: once per record; a second call is ignored. */
  settle(job: Job, fate: FateDetails, line: OutcomeLine, retryAfterMs?: number): Promise<void>;
  /** Records left for retry so far. */
  readonly retries: readonly RetryEntry[];
  /** The per-fate counts for `batch_processed`. */
  readonly counts: Readonly<Record<FateDetails["state"], number>>;
  /** Stops the deadline timers. */
  close(): void;
}

export function startInvocation(options: InvocationOptions): Invocation {
  const { now, onOutcome } = options;
  const started = now();
  const remaining = options.context.getRemainingTimeInMillis?.() ?? DEFAULT_REMAINING_MS;
  const deadline = deadlineFrom(remaining, options.deadlineMarginMs, started);
  const settleBy = Math.max(deadline, started + remaining - SETTLE_RESERVE_MS);
  const work = signalAt(deadline, now);
  const settling = signalAt(settleBy, now);
  const log = options.logger.child(options.context.awsRequestId ? { awsRequestId: options.context.awsRequestId } : {});
  const metrics = createMetricsRecorder();
  const settled = new Set<string>();
  const retries: RetryEntry[] = [];
  const counts = { withdrawn: 0, already_withdrawn: 0, dead_lettered: 0, retrying: 0 };

  const settle = async (job: Job, fate: FateDetails, line: OutcomeLine, retryAfterMs?: number) => {
    if (settled.has(job.record.messageId)) return;
    settled.add(job.record.messageId);
    counts[fate.state] += 1;
    countFate(metrics, fate);
    if (fate.state === "retrying") retries.push({ job, retryAfterMs });
    log[line.level](line.event, { ...job.correlation, ...line.fields });
    if (!onOutcome) return;
    const outcome: RecordOutcome = { ...refOf(job), ...fate };
    try {
      await withDeadline("ledger", settling.signal, async () => onOutcome(outcome));
    } catch (error) {
      log.warn("outcome_hook_failed", { ...job.correlation, error: describeError(error) });
    }
  };

  return {
    started,
    deadline,
    signal: work.signal,
    settleSignal: settling.signal,
    log,
    metrics,
    now,
    isSettled: (job) => settled.has(job.record.messageId),
    settle,
    retries,
    counts,
    close() {
      work.clear();
      settling.clear();
    },
  };
}

/** Leaves a record for retry: the one place that writes `withdrawal_left_for_retry`. */
export function leaveForRetry(
  inv: Invocation,
  job: Job,
  reason: RetryCause,
  details: { attempts: number; last: FateDetails["last"]; fields: LogFields; retryAfterMs?: number | undefined },
) {
  const fate: FateDetails = { state: "retrying", reason, attempts: details.attempts, last: details.last };
  return inv.settle(
    job,
    fate,
    { level: "warn", event: "withdrawal_left_for_retry", fields: { ...details.fields, reason } },
    details.retryAfterMs,
  );
}

/** Settles every record a bug left without a fate as `crashed` (left for retry: nothing is guessed). */
export async function settleCrashed(
  inv: Invocation,
  jobs: readonly Job[],
  error: unknown,
  since: number,
): Promise<void> {
  const fields = { error: describeError(error), durationMs: inv.now() - since };
  const unsettled = jobs.filter((job) => !inv.isSettled(job));
  await Promise.all(
    unsettled.map((job) =>
      inv.settle(
        job,
        { state: "retrying", reason: "crashed", attempts: 0, last: NO_ANSWER },
        { level: "error", event: "withdrawal_crashed", fields },
      ),
    ),
  );
}

/** The response, the `batch_processed` line and the metrics; `extra` adds fields to the line. */
export function closeInvocation(
  inv: Invocation,
  records: number,
  metricsSink: MetricsSink,
  extra: LogFields,
): SQSBatchResponse {
  inv.close();
  const failures = inv.retries.map(({ job }) => ({ itemIdentifier: job.record.messageId }));
  const snapshot = inv.metrics.snapshot();
  inv.log.info("batch_processed", {
    records,
    ...inv.counts,
    ...extra,
    failures: failures.length,
    scmCalls: snapshot.scmLatencyMs.length,
    durationMs: inv.now() - inv.started,
  });
  try {
    metricsSink(snapshot, inv.now());
  } catch (error) {
    inv.log.warn("metrics_failed", { error: describeError(error) });
  }
  return { batchItemFailures: failures };
}

function refOf({ record, correlation, parsed }: Job): RecordRef {
  return {
    messageId: record.messageId,
    requestId: correlation.requestId,
    certificateId: correlation.certificateId,
    request: parsed.ok ? parsed.request : undefined,
    receiveCount: correlation.receiveCount,
  };
}

function countFate(metrics: MetricsRecorder, fate: FateDetails): void {
  switch (fate.state) {
    case "withdrawn":
      metrics.count("Withdrawn");
      return;
    case "already_withdrawn":
      metrics.count("AlreadyWithdrawn");
      return;
    case "dead_lettered":
      metrics.deadLettered(fate.reason);
      return;
    case "retrying":
      metrics.count("LeftForRetry");
      if (fate.reason === "dead_letter_failed" || fate.reason === "deadline:dead_letter")
        metrics.count("DeadLetterFailed");
      return;
    default:
      assertNever(fate);
  }
}
