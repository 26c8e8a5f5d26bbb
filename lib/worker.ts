/**
 * The batch worker: takes one SQS batch, withdraws each job, and says which records must come back.
 *
 * Every record ends in exactly one place: withdrawn (acknowledged), dead-lettered with its reason
 * (then acknowledged), or reported in `batchItemFailures` so SQS delivers it again. It never throws
 * for a per-record problem, and a failed dead-letter send means "deliver again", never "done".
 */
import type { SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { classifyAnswer, classifyStatusCheck, type FailureReason, type RetryReason } from "./classify.ts";
import type { Config } from "./config.ts";
import type { DeadLetterSender } from "./dead-letter.ts";
import { describeError } from "./errors.ts";
import type { Logger } from "./logger.ts";
import { parseWithdrawalBody, type WithdrawalRequest } from "./message.ts";
import { unlimited, type RateLimiter } from "./rate-limiter.ts";
import { deadlineFrom, retryDelay, sleep as defaultSleep } from "./retry.ts";
import type { ScmClient, ScmResult } from "./scm-client.ts";
import type { TokenProvider } from "./token-provider.ts";
import { TokenUnavailableError } from "./errors.ts";

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
  /** Called once per record with its final outcome (the ledger and metrics hang off this). */
  onOutcome?: (outcome: RecordOutcome) => void | Promise<void>;
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
  | { kind: "dead-letter"; reason: Exclude<FailureReason, "invalid_message" | "retries_exhausted">; attempts: number; last: LastAnswer }
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

const NO_ANSWER: LastAnswer = { httpStatus: undefined, errorCode: undefined, errorMsg: undefined };
/** Below this, a call cannot finish before the deadline; do not start it. */
const MIN_CALL_BUDGET_MS = 50;
/** When the context gives no remaining time (a plain script), assume Lambda's default 60 s function. */
const DEFAULT_REMAINING_MS = 60_000;

export function createWorker(deps: WorkerDependencies) {
  const { config, scm, tokens, sendDeadLetter, logger } = deps;
  const limiter = deps.limiter ?? unlimited;
  const now = deps.now ?? Date.now;
  const sleep = deps.sleep ?? defaultSleep;
  const random = deps.random ?? Math.random;

  async function processBatch(event: SQSEvent, context: InvocationContext = {}): Promise<SQSBatchResponse> {
    const started = now();
    const records = Array.isArray(event?.Records) ? event.Records : [];
    const remaining = context.getRemainingTimeInMillis?.() ?? DEFAULT_REMAINING_MS;
    const deadline = deadlineFrom(remaining, config.deadlineMarginMs, started);
    const abort = new AbortController();
    const deadlineTimer = setTimeout(() => abort.abort(new Error("deadline")), Math.max(0, deadline - started));
    const log = logger.child(context.awsRequestId ? { awsRequestId: context.awsRequestId } : {});

    try {
      // Without a token nothing can be withdrawn; leave the whole batch for redelivery.
      try {
        await tokens.getToken();
      } catch (error) {
        log.error("token_unavailable", { code: error instanceof TokenUnavailableError ? error.code : "unknown", error: describeError(error), records: records.length });
        return { batchItemFailures: records.map((r) => ({ itemIdentifier: r.messageId })) };
      }

      const failures: string[] = [];
      const counts = { withdrawn: 0, already_withdrawn: 0, dead_lettered: 0, retrying: 0 };
      const settle = async (record: SQSRecord, outcome: RecordOutcome) => {
        counts[outcome.state] += 1;
        if (outcome.state === "retrying") failures.push(record.messageId);
        try {
          await deps.onOutcome?.(outcome);
        } catch (error) {
          log.warn("outcome_hook_failed", { messageId: record.messageId, error: describeError(error) });
        }
      };

      // Group valid records by certificate: two jobs for one certificate in a batch make one SCM call.
      const groups = new Map<string, { record: SQSRecord; request: WithdrawalRequest }[]>();
      const tasks: (() => Promise<void>)[] = [];
      for (const record of records) {
        const parsed = parseWithdrawalBody(typeof record.body === "string" ? record.body : "");
        if (!parsed.ok) {
          tasks.push(() => handleInvalid(record, parsed.problem, parsed.certificateId, log, settle));
          continue;
        }
        const group = groups.get(parsed.request.certificate_id);
        if (group) group.push({ record, request: parsed.request });
        else groups.set(parsed.request.certificate_id, [{ record, request: parsed.request }]);
      }
      for (const [certificateId, members] of groups) {
        tasks.push(async () => {
          try {
            const result = await withdraw(certificateId, deadline, abort.signal, log, members[0]!.record.messageId);
            await Promise.all(members.map(({ record, request }) => finish(record, request, result, log, settle)));
          } catch (error) {
            // A bug, not an SCM answer: hand the records back rather than guess their fate.
            log.error("withdrawal_crashed", { certificateId, error: describeError(error) });
            for (const { record } of members) if (!failures.includes(record.messageId)) failures.push(record.messageId);
          }
        });
      }
      await runWithConcurrency(tasks, config.batchConcurrency);

      log.info("batch_processed", { records: records.length, ...counts, failures: failures.length, durationMs: now() - started });
      return { batchItemFailures: failures.map((itemIdentifier) => ({ itemIdentifier })) };
    } finally {
      clearTimeout(deadlineTimer);
    }
  }

  /** Calls cancel-cert for one certificate until it is decided, out of attempts, or out of time. */
  async function withdraw(certificateId: string, deadline: number, signal: AbortSignal, log: Logger, messageId: string): Promise<WithdrawalResult> {
    let attempts = 0;
    let transientFailures = 0;
    let tokenRefreshed = false;
    let last: LastAnswer = NO_ANSWER;

    for (;;) {
      let token: string;
      try {
        token = await tokens.getToken();
      } catch {
        return { kind: "transient", reason: "token_unavailable", attempts, last };
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
      last = lastAnswer(result);
      const decision = classifyAnswer(result, { tokenRefreshed });
      let retry: { reason: RetryReason; retryAfterMs: number | undefined };

      switch (decision.kind) {
        case "withdrawn":
          return { kind: "withdrawn", attempts, last };
        case "dead-letter":
          return { kind: "dead-letter", reason: decision.reason, attempts, last };
        case "refresh-token":
          tokenRefreshed = true;
          log.warn("token_rejected", { certificateId, messageId, status: last.httpStatus, errorCode: last.errorCode });
          try {
            await tokens.refresh(token);
          } catch {
            return { kind: "transient", reason: "token_unavailable", attempts, last };
          }
          continue;
        case "check-status": {
          const budgetLeft = deadline - now();
          if (budgetLeft < MIN_CALL_BUDGET_MS) return { kind: "transient", reason: "deadline", attempts, last };
          const details = await scm.getCertificate(certificateId, token, { timeoutMs: Math.min(config.scmTimeoutMs, budgetLeft), signal });
          const check = classifyStatusCheck(details, config.alreadyWithdrawnStatuses);
          if (check.kind === "already-withdrawn") return { kind: "already-withdrawn", attempts, certificateStatus: check.status, last };
          if (check.kind === "rejected") return { kind: "dead-letter", reason: "rejected", attempts, last };
          retry = check;
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
      log.info("withdrawal_retrying", { certificateId, messageId, attempt: attempts, reason: retry.reason, status: last.httpStatus, errorCode: last.errorCode, delayMs: delay });
      try {
        await sleep(delay, signal);
      } catch {
        return { kind: "transient", reason: "deadline", attempts, last };
      }
    }
  }

  /** Acknowledges, dead-letters or hands back one record, given its certificate's result. */
  async function finish(record: SQSRecord, request: WithdrawalRequest, result: WithdrawalResult, log: Logger, settle: Settle) {
    const receiveCount = receiveCountOf(record);
    const base = {
      messageId: record.messageId,
      requestId: request.request_id ?? record.messageId,
      certificateId: request.certificate_id,
      request,
      receiveCount,
    };
    const fields = { certificateId: request.certificate_id, messageId: record.messageId, requestId: base.requestId, source: request.source, batchId: request.batch_id, attempts: result.attempts };

    switch (result.kind) {
      case "withdrawn":
        log.info("withdrawal_succeeded", { ...fields, status: result.last.httpStatus });
        return settle(record, { ...base, state: "withdrawn", attempts: result.attempts, last: result.last });
      case "already-withdrawn":
        log.info("withdrawal_already_withdrawn", { ...fields, certificateStatus: result.certificateStatus, errorCode: result.last.errorCode });
        return settle(record, { ...base, state: "already_withdrawn", attempts: result.attempts, last: result.last });
      case "dead-letter":
        return deadLetter(record, base, result.reason, result.attempts, result.last, fields, log, settle);
      case "transient":
        if (receiveCount >= config.maxReceiveCount) {
          return deadLetter(record, base, "retries_exhausted", result.attempts, result.last, { ...fields, lastReason: result.reason }, log, settle);
        }
        log.warn("withdrawal_left_for_retry", { ...fields, reason: result.reason, status: result.last.httpStatus, errorCode: result.last.errorCode, receiveCount });
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
      log.error("dead_letter_failed", { ...fields, reason, error: describeError(error) });
      return settle(record, { ...base, state: "retrying", reason: "dead_letter_failed", attempts, last });
    }
    log.warn("withdrawal_dead_lettered", { ...fields, reason, status: last.httpStatus, errorCode: last.errorCode });
    return settle(record, { ...base, state: "dead_lettered", reason, attempts, last });
  }

  async function handleInvalid(record: SQSRecord, problem: string, certificateId: string | undefined, log: Logger, settle: Settle) {
    const base = { messageId: record.messageId, requestId: record.messageId, certificateId, request: undefined, receiveCount: receiveCountOf(record) };
    await deadLetter(record, base, "invalid_message", 0, { httpStatus: undefined, errorCode: undefined, errorMsg: problem }, { messageId: record.messageId, problem }, log, settle);
  }

  return { processBatch };
}

type Settle = (record: SQSRecord, outcome: RecordOutcome) => Promise<void>;

function lastAnswer(result: ScmResult): LastAnswer {
  if (result.kind === "network") return { httpStatus: undefined, errorCode: undefined, errorMsg: result.message };
  return { httpStatus: result.status, errorCode: result.errorCode, errorMsg: result.errorMsg };
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
