/**
 * The batch worker: takes one SQS batch, withdraws each job, and says which records must come back.
 *
 * Every record ends in exactly one place: withdrawn (acknowledged), dead-lettered with its reason
 * (then acknowledged), or reported in `batchItemFailures` so SQS delivers it again. It never throws
 * for a per-record problem, and a failed dead-letter send means "deliver again", never "done".
 *
 * Observability: every record gets exactly one outcome log line (`withdrawal_succeeded`,
 * `withdrawal_already_withdrawn`, `withdrawal_dead_lettered`, `withdrawal_left_for_retry`,
 * `dead_letter_failed`, `withdrawal_crashed`, or with the ledger `withdrawal_duplicate_skipped`),
 * and every per-record line carries the same
 * correlation fields ({@link Correlation}). Each invocation ends with one `batch_processed` line and
 * its metrics (`lib/metrics.ts`, Embedded Metric Format).
 */
import type { SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import {
  cancelSucceeded,
  classifyAnswer,
  classifyStatusCheck,
  THROTTLING_CODES,
  type FailureReason,
  type PermanentReason,
  type RetryReason,
} from "./classify.ts";
import type { Config } from "./config.ts";
import type { DeadLetterSender } from "./dead-letter.ts";
import { describeError, TokenUnavailableError } from "./errors.ts";
// Types only: the ledger (and the DynamoDB SDK behind it) is loaded by runtime.ts only when LEDGER_TABLE is set.
import type { ClaimResult, JobRef, LedgerStats } from "./ledger.ts";
import type { Logger } from "./logger.ts";
import { parseWithdrawalBody, type WithdrawalRequest } from "./message.ts";
import { createMetricsRecorder, emfSink, type MetricsRecorder, type MetricsSink } from "./metrics.ts";
import { unlimited, type RateLimiter } from "./rate-limiter.ts";
import { deadlineFrom, retryDelay, sleep as defaultSleep } from "./retry.ts";
import type { ScmClient, ScmResult } from "./scm-client.ts";
import type { TokenProvider } from "./token-provider.ts";

export type WorkerConfig = Pick<
  Config,
  "maxAttempts" | "retryBaseDelayMs" | "retryMaxDelayMs" | "scmTimeoutMs" | "maxReceiveCount" | "batchConcurrency" | "alreadyWithdrawnStatuses" | "deadlineMarginMs"
>;

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
  /** Receives each invocation's metrics once, at the end of `processBatch`. Default: EMF lines on stdout. */
  metrics?: MetricsSink;
}

/** The subset of the Lambda context the worker uses. */
export interface InvocationContext {
  getRemainingTimeInMillis?: () => number;
  awsRequestId?: string;
}

/** What the last SCM answer said, for logs and dead-letter attributes. */
export interface LastAnswer {
  httpStatus: number | undefined;
  errorCode: string | undefined;
  errorMsg: string | undefined;
}

/** The fate of one certificate's withdrawal within this invocation. */
export type WithdrawalResult =
  | { kind: "withdrawn"; attempts: number; last: LastAnswer }
  | { kind: "already-withdrawn"; attempts: number; certificateStatus: string; last: LastAnswer }
  | { kind: "dead-letter"; reason: PermanentReason; attempts: number; last: LastAnswer }
  | { kind: "transient"; reason: RetryReason | "deadline"; attempts: number; last: LastAnswer };

export type RecordOutcome = {
  messageId: string;
  requestId: string;
  certificateId: string | undefined;
  request: WithdrawalRequest | undefined;
  receiveCount: number;
} & (
  | { state: "withdrawn" | "already_withdrawn"; attempts: number; last: LastAnswer }
  | { state: "dead_lettered"; reason: FailureReason; attempts: number; last: LastAnswer }
  | { state: "retrying"; reason: string; attempts: number; last: LastAnswer }
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
}

const NO_ANSWER: LastAnswer = { httpStatus: undefined, errorCode: undefined, errorMsg: undefined };
/** Below this, a call cannot finish before the deadline; do not start it. */
const MIN_CALL_BUDGET_MS = 50;
/** When the context gives no remaining time (a plain script), assume Lambda's default 60 s function. */
const DEFAULT_REMAINING_MS = 60_000;
/** Log lines quote SCM's `error_msg` up to this length (the DLQ attribute keeps up to 1024). */
const LOGGED_ERROR_MSG_LENGTH = 256;
/** Fields read from a body that failed the schema are untrusted: cut them for the logs. */
const LOOSE_FIELD_LENGTH = 128;

interface Job {
  record: SQSRecord;
  correlation: Correlation;
  parsed: ReturnType<typeof parseWithdrawalBody>;
}

export function createWorker(deps: WorkerDependencies) {
  const { config, scm, tokens, sendDeadLetter, logger } = deps;
  const limiter = deps.limiter ?? unlimited;
  const now = deps.now ?? Date.now;
  const sleep = deps.sleep ?? defaultSleep;
  const random = deps.random ?? Math.random;
  const metricsSink = deps.metrics ?? emfSink();

  async function processBatch(event: SQSEvent, context: InvocationContext = {}): Promise<SQSBatchResponse> {
    const started = now();
    const records = Array.isArray(event?.Records) ? event.Records : [];
    const remaining = context.getRemainingTimeInMillis?.() ?? DEFAULT_REMAINING_MS;
    const deadline = deadlineFrom(remaining, config.deadlineMarginMs, started);
    const abort = new AbortController();
    const deadlineTimer = setTimeout(() => abort.abort(new Error("deadline")), Math.max(0, deadline - started));
    const log = logger.child(context.awsRequestId ? { awsRequestId: context.awsRequestId } : {});
    const metrics = createMetricsRecorder();
    const failures: string[] = [];
    const counts = { withdrawn: 0, already_withdrawn: 0, dead_lettered: 0, retrying: 0 };
    /** Records acknowledged because the ledger says their job was already withdrawn (no SCM call). */
    let duplicates = 0;
    const ledgerFailuresBefore = ledgerFailures();

    try {
      // Parse every body first: each record's correlation fields are known before anything can fail.
      const jobs = records.map(toJob);

      // Without a token nothing can be withdrawn; leave the whole batch for redelivery.
      // (An empty event needs no token: don't spend a Secrets Manager read on it.)
      try {
        if (jobs.length > 0) await tokens.getToken();
      } catch (error) {
        metrics.count("TokenUnavailable");
        log.error("token_unavailable", { code: tokenErrorCode(error), error: describeError(error), records: records.length });
        for (const { record, correlation } of jobs) {
          failures.push(record.messageId);
          counts.retrying += 1;
          metrics.count("LeftForRetry");
          log.warn("withdrawal_left_for_retry", { ...correlation, attempt: 0, reason: "token_unavailable", durationMs: now() - started });
        }
        return { batchItemFailures: failures.map((itemIdentifier) => ({ itemIdentifier })) };
      }

      const settled = new Set<string>();
      const settle: Settle = async (record, outcome) => {
        settled.add(record.messageId);
        counts[outcome.state] += 1;
        countOutcome(metrics, outcome);
        if (outcome.state === "retrying") failures.push(record.messageId);
        try {
          await deps.onOutcome?.(outcome);
        } catch (error) {
          log.warn("outcome_hook_failed", { ...correlationOf(outcome), error: describeError(error) });
        }
      };

      // Group valid records by certificate: two jobs for one certificate in a batch make one SCM call.
      const groups = new Map<string, { job: Job; request: WithdrawalRequest }[]>();
      const tasks: (() => Promise<void>)[] = [];
      for (const job of jobs) {
        const { parsed } = job;
        if (!parsed.ok) {
          tasks.push(() => handleInvalid(job, parsed.problem, log, settle));
          continue;
        }
        const group = groups.get(parsed.request.certificate_id);
        if (group) group.push({ job, request: parsed.request });
        else groups.set(parsed.request.certificate_id, [{ job, request: parsed.request }]);
      }
      for (const [certificateId, group] of groups) {
        tasks.push(async () => {
          const taskStarted = now();
          let members = group;
          try {
            // The duplicate guard: jobs the ledger already holds as withdrawn are done; withdraw the rest once.
            if (deps.ledger) {
              members = await claimAll(deps.ledger, group, log, taskStarted);
              for (const { job } of group) if (!members.some((m) => m.job === job)) settled.add(job.record.messageId);
              duplicates += group.length - members.length;
              if (members.length === 0) return;
            }
            const correlations = members.map((m) => m.job.correlation);
            const result = await withdraw(certificateId, deadline, abort.signal, log, correlations, taskStarted, metrics);
            await Promise.all(members.map(({ job, request }) => finish(job, request, result, taskStarted, log, settle)));
          } catch (error) {
            // A bug, not an SCM answer: hand the records back rather than guess their fate.
            for (const { job } of members) {
              if (settled.has(job.record.messageId) || failures.includes(job.record.messageId)) continue;
              failures.push(job.record.messageId);
              counts.retrying += 1;
              metrics.count("LeftForRetry");
              log.error("withdrawal_crashed", { ...job.correlation, error: describeError(error), durationMs: now() - taskStarted });
            }
          }
        });
      }
      await runWithConcurrency(tasks, config.batchConcurrency);
      return { batchItemFailures: failures.map((itemIdentifier) => ({ itemIdentifier })) };
    } finally {
      clearTimeout(deadlineTimer);
      // Every ledger write of this invocation (claims, and outcomes through onOutcome) has finished by now.
      const ledgerFailed = ledgerFailures() - ledgerFailuresBefore;
      if (ledgerFailed > 0) metrics.count("LedgerWriteFailed", ledgerFailed);
      const snapshot = metrics.snapshot();
      log.info("batch_processed", {
        records: records.length,
        ...counts,
        ...(deps.ledger ? { duplicates } : {}),
        failures: failures.length,
        scmCalls: snapshot.scmLatencyMs.length,
        durationMs: now() - started,
      });
      try {
        metricsSink(snapshot, now());
      } catch (error) {
        log.warn("metrics_failed", { error: describeError(error) });
      }
    }
  }

  /** Failed and skipped ledger writes so far (0 without a ledger). */
  function ledgerFailures(): number {
    const stats = deps.ledger?.stats?.();
    return stats ? stats.failures + stats.skipped : 0;
  }

  /**
   * Claims every job of one certificate's group at once (one conditional write each) and returns the
   * members still to withdraw. A job answered `already_withdrawn_in_ledger` is acknowledged: not in
   * `batchItemFailures`, no outcome (its success is already recorded), one `withdrawal_duplicate_skipped`
   * line. A claim that fails for any reason means "proceed" (the ledger never decides a job's fate).
   */
  async function claimAll<M extends { job: Job; request: WithdrawalRequest }>(ledger: NonNullable<WorkerDependencies["ledger"]>, group: readonly M[], log: Logger, started: number): Promise<M[]> {
    const answers = await Promise.all(
      group.map(async ({ job }): Promise<ClaimResult> => {
        const { requestId, batchId, certificateId, source } = job.correlation;
        try {
          return await ledger.claim({ requestId, batchId, certificateId, source });
        } catch {
          return "proceed";
        }
      }),
    );
    const remaining: M[] = [];
    group.forEach((member, index) => {
      if (answers[index] !== "already_withdrawn_in_ledger") return void remaining.push(member);
      log.info("withdrawal_duplicate_skipped", { ...member.job.correlation, attempt: 0, durationMs: now() - started });
    });
    return remaining;
  }

  /** Calls cancel-cert for one certificate until it is decided, out of attempts, or out of time. */
  async function withdraw(
    certificateId: string,
    deadline: number,
    signal: AbortSignal,
    log: Logger,
    members: readonly Correlation[],
    started: number,
    metrics: MetricsRecorder,
  ): Promise<WithdrawalResult> {
    let attempts = 0;
    let transientFailures = 0;
    let tokenRefreshed = false;
    let last: LastAnswer = NO_ANSWER;
    // Lines about a call concern every record that shares it.
    const each = (emit: (fields: Correlation) => void) => members.forEach(emit);
    const tokenLost = (error: unknown): WithdrawalResult => {
      metrics.count("TokenUnavailable");
      each((c) => log.warn("token_unavailable", { ...c, attempt: attempts, code: tokenErrorCode(error), error: describeError(error), durationMs: now() - started }));
      return { kind: "transient", reason: "token_unavailable", attempts, last };
    };
    const observe = (result: ScmResult) => {
      metrics.scmLatency(result.durationMs);
      if (isThrottling(result)) metrics.count("Throttled");
    };

    for (;;) {
      let token: string;
      try {
        token = await tokens.getToken();
      } catch (error) {
        return tokenLost(error);
      }
      try {
        await limiter.take(signal);
      } catch {
        return { kind: "transient", reason: "deadline", attempts, last };
      }
      const budget = deadline - now();
      if (budget < MIN_CALL_BUDGET_MS) return { kind: "transient", reason: "deadline", attempts, last };

      attempts += 1;
      const result = await scm.cancelCert(certificateId, token, { timeoutMs: Math.min(config.scmTimeoutMs, budget), signal });
      observe(result);
      const decision = classifyAnswer(result, { tokenRefreshed, succeeded: cancelSucceeded(certificateId) });
      last = lastAnswer(result, token, decision);
      let retry: { reason: RetryReason; retryAfterMs: number | undefined };
      let failed: { call: "cancel" | "detail"; result: ScmResult; answer: LastAnswer } = { call: "cancel", result, answer: last };

      switch (decision.kind) {
        case "withdrawn":
          return { kind: "withdrawn", attempts, last };
        case "dead-letter":
          return { kind: "dead-letter", reason: decision.reason, attempts, last };
        case "refresh-token":
          tokenRefreshed = true;
          each((c) => log.warn("token_rejected", { ...c, attempt: attempts, status: last.httpStatus, errorCode: last.errorCode, latencyMs: Math.round(result.durationMs), durationMs: now() - started }));
          try {
            await tokens.refresh(token);
          } catch (error) {
            return tokenLost(error);
          }
          continue;
        case "check-status": {
          const budgetLeft = deadline - now();
          if (budgetLeft < MIN_CALL_BUDGET_MS) return { kind: "transient", reason: "deadline", attempts, last };
          const details = await scm.getCertificate(certificateId, token, { timeoutMs: Math.min(config.scmTimeoutMs, budgetLeft), signal });
          observe(details);
          const check = classifyStatusCheck(details, config.alreadyWithdrawnStatuses);
          if (check.kind === "already-withdrawn") return { kind: "already-withdrawn", attempts, certificateStatus: check.status, last };
          if (check.kind === "rejected") return { kind: "dead-letter", reason: "rejected", attempts, last };
          retry = check;
          failed = { call: "detail", result: details, answer: lastAnswer(details, token, check) };
          break;
        }
        case "retry":
          retry = decision;
          break;
        default:
          return assertNever(decision);
      }

      transientFailures += 1;
      if (transientFailures >= config.maxAttempts) return { kind: "transient", reason: retry.reason, attempts, last };
      const delay = retryDelay(transientFailures - 1, retry.retryAfterMs, { baseMs: config.retryBaseDelayMs, capMs: config.retryMaxDelayMs }, random);
      if (now() + delay + MIN_CALL_BUDGET_MS > deadline) return { kind: "transient", reason: "deadline", attempts, last };
      metrics.count("Retried");
      each((c) =>
        log.info("withdrawal_retrying", {
          ...c,
          attempt: attempts,
          call: failed.call,
          reason: retry.reason,
          status: failed.answer.httpStatus,
          errorCode: failed.answer.errorCode,
          errorMsg: cut(failed.answer.errorMsg),
          latencyMs: Math.round(failed.result.durationMs),
          delayMs: delay,
          durationMs: now() - started,
        }),
      );
      try {
        await sleep(delay, signal);
      } catch {
        return { kind: "transient", reason: "deadline", attempts, last };
      }
    }
  }

  /** Acknowledges, dead-letters or hands back one record, given its certificate's result. */
  async function finish(job: Job, request: WithdrawalRequest, result: WithdrawalResult, started: number, log: Logger, settle: Settle) {
    const { record, correlation } = job;
    const base = {
      messageId: record.messageId,
      requestId: correlation.requestId,
      certificateId: request.certificate_id,
      request,
      receiveCount: correlation.receiveCount,
    };
    const fields = { ...correlation, attempt: result.attempts, status: result.last.httpStatus, errorCode: result.last.errorCode };

    switch (result.kind) {
      case "withdrawn":
        log.info("withdrawal_succeeded", { ...fields, durationMs: now() - started });
        return settle(record, { ...base, state: "withdrawn", attempts: result.attempts, last: result.last });
      case "already-withdrawn":
        log.info("withdrawal_already_withdrawn", { ...fields, certificateStatus: result.certificateStatus, durationMs: now() - started });
        return settle(record, { ...base, state: "already_withdrawn", attempts: result.attempts, last: result.last });
      case "dead-letter":
        return deadLetter(record, base, result.reason, result.attempts, result.last, { ...fields, errorMsg: cut(result.last.errorMsg) }, started, log, settle);
      case "transient":
        if (correlation.receiveCount >= config.maxReceiveCount) {
          // An answer nobody expected keeps its own reason, so `dlq list` tells it from an outage.
          const reason = result.reason === "unexpected_answer" ? "unexpected_answer" : "retries_exhausted";
          const logged = { ...fields, errorMsg: cut(result.last.errorMsg), lastReason: result.reason };
          return deadLetter(record, base, reason, result.attempts, result.last, logged, started, log, settle);
        }
        log.warn("withdrawal_left_for_retry", { ...fields, reason: result.reason, errorMsg: cut(result.last.errorMsg), durationMs: now() - started });
        return settle(record, { ...base, state: "retrying", reason: result.reason, attempts: result.attempts, last: result.last });
      default:
        return assertNever(result);
    }
  }

  async function deadLetter(
    record: SQSRecord,
    base: Omit<RecordOutcome, "state" | "attempts" | "last" | "reason">,
    reason: FailureReason,
    attempts: number,
    last: LastAnswer,
    fields: Record<string, unknown>,
    started: number,
    log: Logger,
    settle: Settle,
  ) {
    try {
      await sendDeadLetter({
        body: record.body,
        reason,
        sourceMessageId: record.messageId,
        certificateId: base.certificateId,
        httpStatus: last.httpStatus,
        errorCode: last.errorCode,
        errorMsg: last.errorMsg,
        attempts,
        receiveCount: base.receiveCount,
        failedAt: new Date(now()),
      });
    } catch (error) {
      log.error("dead_letter_failed", { ...fields, reason, error: describeError(error), durationMs: now() - started });
      return settle(record, { ...base, state: "retrying", reason: "dead_letter_failed", attempts, last });
    }
    log.warn("withdrawal_dead_lettered", { ...fields, reason, durationMs: now() - started });
    return settle(record, { ...base, state: "dead_lettered", reason, attempts, last });
  }

  async function handleInvalid(job: Job, problem: string, log: Logger, settle: Settle) {
    const started = now();
    const { record, correlation } = job;
    const base = { messageId: record.messageId, requestId: correlation.requestId, certificateId: correlation.certificateId, request: undefined, receiveCount: correlation.receiveCount };
    const last = { httpStatus: undefined, errorCode: undefined, errorMsg: problem };
    await deadLetter(record, base, "invalid_message", 0, last, { ...correlation, attempt: 0, problem }, started, log, settle);
  }

  return { processBatch };
}

type Settle = (record: SQSRecord, outcome: RecordOutcome) => Promise<void>;

function toJob(record: SQSRecord): Job {
  const body = typeof record.body === "string" ? record.body : "";
  const parsed = parseWithdrawalBody(body);
  const receiveCount = receiveCountOf(record);
  if (parsed.ok) {
    const { request } = parsed;
    return {
      record,
      parsed,
      correlation: { certificateId: request.certificate_id, messageId: record.messageId, requestId: request.request_id ?? record.messageId, source: request.source, batchId: request.batch_id, receiveCount },
    };
  }
  // The body failed the schema, but whatever correlation it carries still helps find the job.
  const loose = looseFields(body);
  return {
    record,
    parsed,
    correlation: {
      certificateId: parsed.certificateId === undefined ? undefined : parsed.certificateId.slice(0, LOOSE_FIELD_LENGTH),
      messageId: record.messageId,
      requestId: loose.request_id || record.messageId,
      source: loose.source,
      batchId: loose.batch_id,
      receiveCount,
    },
  };
}

function looseFields(body: string): { request_id?: string; source?: string; batch_id?: string } {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return {};
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) return {};
  const record = json as Record<string, unknown>;
  const pick = (key: string) => (typeof record[key] === "string" ? (record[key] as string).slice(0, LOOSE_FIELD_LENGTH) : undefined);
  return { request_id: pick("request_id"), source: pick("source"), batch_id: pick("batch_id") };
}

function correlationOf(outcome: RecordOutcome): Partial<Correlation> {
  return {
    certificateId: outcome.certificateId,
    messageId: outcome.messageId,
    requestId: outcome.requestId,
    source: outcome.request?.source,
    batchId: outcome.request?.batch_id,
    receiveCount: outcome.receiveCount,
  };
}

function countOutcome(metrics: MetricsRecorder, outcome: RecordOutcome): void {
  switch (outcome.state) {
    case "withdrawn":
      return metrics.count("Withdrawn");
    case "already_withdrawn":
      return metrics.count("AlreadyWithdrawn");
    case "dead_lettered":
      return metrics.deadLettered(outcome.reason);
    case "retrying":
      metrics.count("LeftForRetry");
      if (outcome.reason === "dead_letter_failed") metrics.count("DeadLetterFailed");
      return;
    default:
      return assertNever(outcome);
  }
}

function isThrottling(result: ScmResult): boolean {
  if (result.kind !== "answer") return false;
  return result.status === 429 || (result.errorCode !== undefined && (THROTTLING_CODES as readonly string[]).includes(result.errorCode));
}

function tokenErrorCode(error: unknown): string {
  return error instanceof TokenUnavailableError ? error.code : "unknown";
}

/**
 * What an answer said, for logs and the DLQ. The token is cut out of anything SCM sent back: a
 * gateway that echoes request headers in its error text must not leak it into logs or the DLQ.
 * An unexpected answer without `error_msg` is quoted by a short excerpt of its body instead.
 */
function lastAnswer(result: ScmResult, token: string, decision: { kind: string; reason?: string }): LastAnswer {
  if (result.kind === "network") return { httpStatus: undefined, errorCode: undefined, errorMsg: redact(result.message, token) };
  const unexpected = decision.kind === "retry" && decision.reason === "unexpected_answer";
  const errorMsg = result.errorMsg ?? (unexpected ? result.excerpt : undefined);
  return { httpStatus: result.status, errorCode: redact(result.errorCode, token), errorMsg: redact(errorMsg, token) };
}

function redact(text: string | undefined, secret: string): string | undefined {
  return text === undefined || secret === "" || !text.includes(secret) ? text : text.split(secret).join("[redacted]");
}

function cut(text: string | undefined): string | undefined {
  return text === undefined || text.length <= LOGGED_ERROR_MSG_LENGTH ? text : `${text.slice(0, LOGGED_ERROR_MSG_LENGTH)}…`;
}

function receiveCountOf(record: SQSRecord): number {
  const count = Number(record.attributes?.ApproximateReceiveCount);
  return Number.isInteger(count) && count > 0 ? count : 1;
}

/** Runs tasks with at most `limit` in flight; tasks must not throw (each settles its own records). */
export async function runWithConcurrency(tasks: readonly (() => Promise<void>)[], limit: number): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < tasks.length) {
      const task = tasks[next++]!;
      await task();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, lane));
}

function assertNever(value: never): never {
  throw new Error(`unhandled case: ${JSON.stringify(value)}`);
}
