/**
 * The batch worker: takes one SQS batch, withdraws each job, and says which records must come back.
 *
 * Every record with a messageId ends in exactly one fate (lib/outcome.ts): withdrawn or
 * already_withdrawn (acknowledged), dead_lettered with its reason (then acknowledged), or retrying
 * (reported in `batchItemFailures`, its next delivery delayed by `RETRY_VISIBILITY_SCHEDULE`). Every
 * exit goes through `Invocation.settle`, so every record reaches `onOutcome`. It never throws: a
 * malformed record is skipped (no messageId) or dead-lettered (invalid_message), a bug leaves the
 * unsettled records for retry (`crashed`), and every external call is bounded by the invocation's
 * deadline (`deadline:<what>`). A failed dead-letter send means "deliver again", never "done".
 *
 * Observability: every record gets exactly one outcome log line (`withdrawal_succeeded`,
 * `withdrawal_already_withdrawn`, `withdrawal_dead_lettered`, `withdrawal_left_for_retry`,
 * `dead_letter_failed`, `withdrawal_crashed`, or with the ledger `withdrawal_duplicate_skipped`),
 * and every per-record line carries the same correlation fields (`Correlation`). Each invocation ends
 * with one `batch_processed` line and its metrics (`lib/metrics.ts`, Embedded Metric Format).
 */
import type { SQSBatchResponse, SQSEvent } from "aws-lambda";
import type { FailureReason } from "./classify.ts";
import { forEachConcurrently } from "./concurrency.ts";
import type { Config } from "./config.ts";
import { deadLetterBody, type DeadLetterSender } from "./dead-letter.ts";
import { withDeadline } from "./deadline.ts";
import { DeadlineError, describeError } from "./errors.ts";
import {
  closeInvocation,
  leaveForRetry,
  settleCrashed,
  startInvocation,
  type Invocation,
  type InvocationContext,
} from "./invocation.ts";
import { jobsOf, type Job } from "./jobs.ts";
// Types only: the ledger (and the DynamoDB SDK behind it) is loaded by runtime.ts only when LEDGER_TABLE is set.
import type { ClaimResult, JobRef, LedgerStats } from "./ledger.ts";
import type { Logger, LogFields } from "./logger.ts";
import type { WithdrawalRequest } from "./message.ts";
import { emfSink, type MetricsSink } from "./metrics.ts";
import { assertNever, NO_ANSWER, type LastAnswer, type RecordOutcome, type WithdrawalResult } from "./outcome.ts";
import { unlimited, type RateLimiter } from "./rate-limiter.ts";
import { sleep as defaultSleep } from "./retry.ts";
import type { ScmClient } from "./scm-client.ts";
import type { TokenProvider } from "./token-provider.ts";
import { changeRetryVisibility, type VisibilityChanger } from "./visibility.ts";
import { cut, tokenErrorCode, withdrawCertificate, type WithdrawTools } from "./withdraw-certificate.ts";

export type { InvocationContext } from "./invocation.ts";
export type { Correlation, LastAnswer, RecordOutcome, WithdrawalResult } from "./outcome.ts";

export type WorkerConfig = Pick<
  Config,
  | "maxAttempts"
  | "retryBaseDelayMs"
  | "retryMaxDelayMs"
  | "scmTimeoutMs"
  | "maxReceiveCount"
  | "batchConcurrency"
  | "alreadyWithdrawnStatuses"
  | "deadlineMarginMs"
> &
  Partial<Pick<Config, "retryVisibilitySchedule" | "dlqUrl" | "sqsEndpointOverridden">>;

export interface WorkerDependencies {
  config: WorkerConfig;
  scm: ScmClient;
  tokens: TokenProvider;
  sendDeadLetter: DeadLetterSender;
  logger: Logger;
  limiter?: RateLimiter;
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  random?: () => number;
  /** Called once per record with its final outcome (the ledger hangs off this). */
  onOutcome?: (outcome: RecordOutcome) => void | Promise<void>;
  /**
   * The duplicate guard (lib/ledger.ts, optional): before SCM is called, every job of a certificate
   * is claimed; a job the ledger already holds as withdrawn is acknowledged without a second call.
   * `stats` (failed and skipped writes) feeds the `LedgerWriteFailed` metric.
   */
  ledger?: { claim(job: JobRef): Promise<ClaimResult>; stats?(): Pick<LedgerStats, "failures" | "skipped"> };
  /** Delays the next delivery of records left for retry (sqs:ChangeMessageVisibilityBatch). Optional. */
  changeVisibility?: VisibilityChanger;
  /** Receives each invocation's metrics once, at the end of `processBatch`. Default: EMF lines on stdout. */
  metrics?: MetricsSink;
}

/** The worker's dependencies with every default filled in. */
interface Tools extends WithdrawTools {
  deps: WorkerDependencies;
  config: WorkerConfig;
  now: () => number;
  metricsSink: MetricsSink;
}

type Member = { job: Job; request: WithdrawalRequest };

export function createWorker(deps: WorkerDependencies) {
  const tools: Tools = {
    deps,
    config: deps.config,
    scm: deps.scm,
    tokens: deps.tokens,
    limiter: deps.limiter ?? unlimited,
    now: deps.now ?? Date.now,
    sleep: deps.sleep ?? defaultSleep,
    random: deps.random ?? Math.random,
    metricsSink: deps.metrics ?? emfSink(),
  };
  return { processBatch: (event: SQSEvent, context: InvocationContext = {}) => processBatch(tools, event, context) };
}

async function processBatch(tools: Tools, event: SQSEvent, context: InvocationContext): Promise<SQSBatchResponse> {
  const { deps, now } = tools;
  const inv = startInvocation({
    context,
    deadlineMarginMs: tools.config.deadlineMarginMs,
    logger: deps.logger,
    now,
    onOutcome: deps.onOutcome,
  });
  const ledgerFailuresBefore = ledgerFailures(deps);
  const duplicates = { count: 0 };
  let jobs: Job[] = [];
  let records = 0;
  try {
    records = Array.isArray(event?.Records) ? event.Records.length : 0;
    jobs = jobsOf(event, inv.log);
    // Invalid bodies need no token: they are dead-lettered even when the secret cannot be read.
    const tasks: (() => Promise<void>)[] = jobs
      .filter((job) => !job.parsed.ok)
      .map((job) => () => deadLetterInvalid(tools, inv, job));
    const groups = groupByCertificate(jobs);
    if (groups.size > 0 && (await firstToken(tools, inv, [...groups.values()].flat()))) {
      for (const [certificateId, members] of groups)
        tasks.push(() => runGroup(tools, inv, certificateId, members, duplicates));
    }
    await forEachConcurrently(tasks, tools.config.batchConcurrency, (task) => task());
  } catch (error) {
    await settleCrashed(inv, jobs, error, inv.started);
  }
  try {
    await changeRetryVisibility(tools.deps.changeVisibility, inv, tools.config, tools.random);
  } catch (error) {
    // A bug there must not change the batch's answer: the records just come back after the queue's timeout.
    inv.log.warn("visibility_change_failed", { error: describeError(error), records: inv.retries.length });
  }
  // Every ledger write of this invocation (claims, and outcomes through onOutcome) has finished by now.
  const ledgerFailed = ledgerFailures(deps) - ledgerFailuresBefore;
  if (ledgerFailed > 0) inv.metrics.count("LedgerWriteFailed", ledgerFailed);
  return closeInvocation(inv, records, tools.metricsSink, deps.ledger ? { duplicates: duplicates.count } : {});
}

/** Valid jobs grouped by certificate: two jobs for one certificate in a batch make one SCM call. */
function groupByCertificate(jobs: readonly Job[]): Map<string, Member[]> {
  const groups = new Map<string, Member[]>();
  for (const job of jobs) {
    if (!job.parsed.ok) continue;
    const { request } = job.parsed;
    const group = groups.get(request.certificate_id);
    if (group) group.push({ job, request });
    else groups.set(request.certificate_id, [{ job, request }]);
  }
  return groups;
}

/**
 * Without a token nothing can be withdrawn: the valid jobs are left for retry (one `token_unavailable`
 * line for the batch). Bounded by the deadline: a hanging Secrets Manager or IAM is `deadline:<which>`.
 */
async function firstToken(tools: Tools, inv: Invocation, members: readonly Member[]): Promise<boolean> {
  try {
    await tools.tokens.getToken(inv.signal);
    return true;
  } catch (error) {
    inv.metrics.count("TokenUnavailable");
    inv.log.error("token_unavailable", {
      code: tokenErrorCode(error),
      error: describeError(error),
      records: members.length,
    });
    const reason = error instanceof DeadlineError ? (`deadline:${error.subject}` as const) : "token_unavailable";
    await Promise.all(
      members.map(({ job }) =>
        leaveForRetry(inv, job, reason, {
          attempts: 0,
          last: NO_ANSWER,
          fields: { attempt: 0, durationMs: inv.now() - inv.started },
        }),
      ),
    );
    return false;
  }
}

/** One certificate's jobs: the ledger's duplicate guard, one withdrawal, then each record's fate. */
async function runGroup(
  tools: Tools,
  inv: Invocation,
  certificateId: string,
  group: readonly Member[],
  duplicates: { count: number },
) {
  const started = inv.now();
  let members = group;
  try {
    if (tools.deps.ledger) {
      members = await claimAll(tools.deps.ledger, inv, group, started);
      duplicates.count += group.length - members.length;
      if (members.length === 0) return;
    }
    const result = await withdrawCertificate(
      tools,
      inv,
      certificateId,
      members.map((m) => m.job.correlation),
    );
    await Promise.all(members.map(({ job }) => finishRecord(tools, inv, job, result, started)));
  } catch (error) {
    // A bug, not an SCM answer: hand the records back rather than guess their fate.
    await settleCrashed(
      inv,
      members.map((m) => m.job),
      error,
      started,
    );
  }
}

/**
 * Claims every job of one certificate's group at once (one conditional write each) and returns the
 * members still to withdraw. A job answered `already_withdrawn_in_ledger` is acknowledged: not in
 * `batchItemFailures`, no outcome (its success is already recorded), one `withdrawal_duplicate_skipped`
 * line. A claim that fails means "proceed" (the ledger never decides a job's fate); one that runs out
 * of time leaves the job for retry (`deadline:ledger`: nothing could be withdrawn after it anyway).
 */
async function claimAll(
  ledger: NonNullable<WorkerDependencies["ledger"]>,
  inv: Invocation,
  group: readonly Member[],
  started: number,
): Promise<Member[]> {
  const answers = await Promise.all(
    group.map(async ({ job }): Promise<ClaimResult | "deadline"> => {
      const { requestId, batchId, certificateId, source } = job.correlation;
      try {
        return await withDeadline("ledger", inv.signal, () =>
          ledger.claim({ requestId, batchId, certificateId, source }),
        );
      } catch (error) {
        return error instanceof DeadlineError ? "deadline" : "proceed";
      }
    }),
  );
  const remaining: Member[] = [];
  for (const [index, member] of group.entries()) {
    const answer = answers[index];
    const fields = { attempt: 0, durationMs: inv.now() - started };
    if (answer === "deadline")
      await leaveForRetry(inv, member.job, "deadline:ledger", { attempts: 0, last: NO_ANSWER, fields });
    else if (answer !== "already_withdrawn_in_ledger") remaining.push(member);
    else {
      inv.log.info("withdrawal_duplicate_skipped", { ...member.job.correlation, ...fields });
    }
  }
  return remaining;
}

/** Acknowledges, dead-letters or hands back one record, given its certificate's result. */
async function finishRecord(tools: Tools, inv: Invocation, job: Job, result: WithdrawalResult, started: number) {
  const { attempts, last } = result;
  const fields = { attempt: attempts, status: last.httpStatus, errorCode: last.errorCode };
  const durationMs = () => inv.now() - started;
  switch (result.state) {
    case "withdrawn":
      return inv.settle(
        job,
        { state: "withdrawn", attempts, last },
        { level: "info", event: "withdrawal_succeeded", fields: { ...fields, durationMs: durationMs() } },
      );
    case "already_withdrawn": {
      const line = { ...fields, certificateStatus: result.certificateStatus, durationMs: durationMs() };
      return inv.settle(
        job,
        { state: "already_withdrawn", attempts, last },
        { level: "info", event: "withdrawal_already_withdrawn", fields: line },
      );
    }
    case "dead_lettered":
      return deadLetter(
        tools,
        inv,
        job,
        { reason: result.reason, attempts, last },
        { ...fields, errorMsg: cut(last.errorMsg) },
        started,
      );
    case "retrying":
      if (job.correlation.receiveCount >= tools.config.maxReceiveCount) {
        // An answer nobody expected keeps its own reason, so `dlq list` tells it from an outage.
        const reason = result.reason === "unexpected_answer" ? "unexpected_answer" : "retries_exhausted";
        return deadLetter(
          tools,
          inv,
          job,
          { reason, attempts, last },
          { ...fields, errorMsg: cut(last.errorMsg), lastReason: result.reason },
          started,
        );
      }
      return leaveForRetry(inv, job, result.reason, {
        attempts,
        last,
        retryAfterMs: result.retryAfterMs,
        fields: { ...fields, errorMsg: cut(last.errorMsg), durationMs: durationMs() },
      });
    default:
      return assertNever(result);
  }
}

function deadLetterInvalid(tools: Tools, inv: Invocation, job: Job) {
  const problem = job.parsed.ok ? "" : job.parsed.problem;
  const last: LastAnswer = { httpStatus: undefined, errorCode: undefined, errorMsg: problem };
  return deadLetter(
    tools,
    inv,
    job,
    { reason: "invalid_message", attempts: 0, last },
    { attempt: 0, problem },
    inv.now(),
  );
}

/** Sends a record to the DLQ, bounded by the invocation's end; a failed or late send leaves it for retry. */
async function deadLetter(
  tools: Tools,
  inv: Invocation,
  job: Job,
  letter: { reason: FailureReason; attempts: number; last: LastAnswer },
  fields: LogFields,
  started: number,
) {
  const { record, correlation } = job;
  const { reason, attempts, last } = letter;
  try {
    await withDeadline("dead_letter", inv.settleSignal, (signal) =>
      tools.deps.sendDeadLetter(
        {
          ...deadLetterBody(record.body),
          reason,
          sourceMessageId: record.messageId,
          certificateId: correlation.certificateId,
          httpStatus: last.httpStatus,
          errorCode: last.errorCode,
          errorMsg: last.errorMsg,
          attempts,
          receiveCount: correlation.receiveCount,
          failedAt: new Date(inv.now()),
        },
        signal,
      ),
    );
  } catch (error) {
    const retryReason = error instanceof DeadlineError ? (`deadline:${error.subject}` as const) : "dead_letter_failed";
    const line = { ...fields, reason, retryReason, error: describeError(error), durationMs: inv.now() - started };
    return inv.settle(
      job,
      { state: "retrying", reason: retryReason, attempts, last },
      { level: "error", event: "dead_letter_failed", fields: line },
    );
  }
  const line = { ...fields, reason, durationMs: inv.now() - started };
  return inv.settle(
    job,
    { state: "dead_lettered", reason, attempts, last },
    { level: "warn", event: "withdrawal_dead_lettered", fields: line },
  );
}

/** Failed and skipped ledger writes so far (0 without a ledger). */
function ledgerFailures(deps: WorkerDependencies): number {
  const stats = deps.ledger?.stats?.();
  return stats ? stats.failures + stats.skipped : 0;
}
