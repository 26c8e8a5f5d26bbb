/**
 * One certificate's withdrawal within an invocation: cancel-cert until SCM's answer decides, the
 * attempts run out, or the invocation's deadline comes. Every record that asked for the certificate
 * shares the result (one SCM call for several jobs of one certificate in a batch).
 */
import { cancelSucceeded, classifyAnswer, classifyStatusCheck, type RetryReason } from "./classify.ts";
import type { Config } from "./config.ts";
import { DeadlineError, describeError, TokenUnavailableError } from "./errors.ts";
import type { Invocation } from "./invocation.ts";
import type { LogFields } from "./logger.ts";
import {
  NO_ANSWER,
  assertNever,
  type Correlation,
  type LastAnswer,
  type RetryCause,
  type WithdrawalResult,
} from "./outcome.ts";
import { isThrottling, type RateLimiter } from "./rate-limiter.ts";
import { callBudget, MIN_CALL_BUDGET_MS, retryLoop, type AttemptResult, type RetryPolicy } from "./retry.ts";
import type { ScmClient, ScmResult } from "./scm-client.ts";
import { redactOptional as redact } from "./redact.ts";
import { tokenOf, type ScmAuth, type TokenProvider } from "./token-provider.ts";

export type WithdrawConfig = Pick<
  Config,
  "maxAttempts" | "retryBaseDelayMs" | "retryMaxDelayMs" | "scmTimeoutMs" | "alreadyWithdrawnStatuses"
>;

export interface WithdrawTools {
  config: WithdrawConfig;
  scm: ScmClient;
  tokens: TokenProvider;
  limiter: RateLimiter;
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  random: () => number;
}

/** Log lines quote SCM's `error_msg` up to this length (the DLQ attribute keeps up to 1024). */
const LOGGED_ERROR_MSG_LENGTH = 256;

/** The call whose answer asked for a retry, for the `withdrawal_retrying` line. */
interface FailedCall {
  call: "cancel" | "detail";
  result: ScmResult;
  answer: LastAnswer;
}

/** What one call needs to say about itself in the logs of every record that shares it. */
interface CallLog {
  inv: Invocation;
  members: readonly Correlation[];
  started: number;
}

/** A transient failure: why, and the call that failed (for the retry's log line). */
interface Transient {
  reason: RetryReason;
  failed: FailedCall;
}

export async function withdrawCertificate(
  tools: WithdrawTools,
  inv: Invocation,
  certificateId: string,
  members: readonly Correlation[],
): Promise<WithdrawalResult> {
  const { config, scm, tokens } = tools;
  const call: CallLog = { inv, members, started: inv.now() };
  let attempts = 0;
  let tokenRefreshed = false;
  let last: LastAnswer = NO_ANSWER;
  let retryAfterMs: number | undefined;
  const retrying = (reason: RetryCause): WithdrawalResult => ({
    state: "retrying",
    reason,
    attempts,
    last,
    retryAfterMs,
  });
  const done = (value: WithdrawalResult) => ({ kind: "done", value }) as const;
  /**
   * Why the record is left when time runs out: the answer that asked for the retry (a `Retry-After`
   * longer than the invocation is `throttled`, an odd 2xx stays `unexpected_answer` for the DLQ),
   * or `deadline:scm` when nothing answered yet or the last call hung until the deadline cut it.
   */
  let outOfTime: RetryCause = "deadline:scm";
  const policy = retryPolicy(tools, inv);
  /** The time limit of a call started now, or undefined when the deadline leaves too little. */
  const budget = () => {
    const left = callBudget(policy);
    return left === undefined ? undefined : Math.min(config.scmTimeoutMs, left);
  };

  const attempt = async (): Promise<AttemptResult<WithdrawalResult, Transient>> => {
    let token: ScmAuth;
    try {
      token = await tokens.getToken(inv.signal);
      await tools.limiter.take(inv.signal);
    } catch (error) {
      const reason = tokenFailure(call, attempts, error);
      // A rate-limit wait cut by the deadline: the throttling answer before it is the reason.
      return done(retrying(reason === "deadline:scm" ? outOfTime : reason));
    }
    const timeoutMs = budget();
    if (timeoutMs === undefined) return done(retrying(outOfTime));

    attempts += 1;
    const result = await scm.cancelCert(certificateId, token, { timeoutMs, signal: inv.signal });
    observe(inv, tools.limiter, result);
    const decision = classifyAnswer(result, { tokenRefreshed, succeeded: cancelSucceeded(certificateId) });
    last = lastAnswer(result, token, decision);
    let retry: { reason: RetryReason; retryAfterMs: number | undefined };
    let failed: FailedCall = { call: "cancel", result, answer: last };

    switch (decision.kind) {
      case "withdrawn":
        return done({ state: "withdrawn", attempts, last });
      case "dead-letter":
        return done({ state: "dead_lettered", reason: decision.reason, attempts, last });
      case "refresh-token":
        tokenRefreshed = true;
        logEach(call, "warn", "token_rejected", {
          attempt: attempts,
          status: last.httpStatus,
          errorCode: last.errorCode,
          latencyMs: Math.round(result.durationMs),
        });
        try {
          await tokens.refresh(token, inv.signal);
        } catch (error) {
          return done(retrying(tokenFailure(call, attempts, error)));
        }
        return { kind: "again" };
      case "check-status": {
        const checkTimeoutMs = budget();
        if (checkTimeoutMs === undefined) return done(retrying("deadline:scm"));
        const check = await checkStatus(tools, inv, certificateId, token, checkTimeoutMs);
        if (check.kind === "already-withdrawn")
          return done({ state: "already_withdrawn", attempts, certificateStatus: check.status, last });
        if (check.kind === "rejected") return done({ state: "dead_lettered", reason: "rejected", attempts, last });
        retry = check;
        failed = { call: "detail", result: check.details, answer: lastAnswer(check.details, token, check) };
        break;
      }
      case "retry":
        retry = decision;
        break;
      default:
        return assertNever(decision);
    }
    if (retry.retryAfterMs !== undefined) retryAfterMs = Math.max(retryAfterMs ?? 0, retry.retryAfterMs);
    const hung = failed.result.kind === "network" && failed.result.failure === "timeout";
    outOfTime = hung ? "deadline:scm" : retry.reason;
    return { kind: "retry", failure: { reason: retry.reason, failed }, retryAfterMs: retry.retryAfterMs };
  };

  return retryLoop(policy, attempt, {
    exhausted: (failure) => retrying(failure.reason),
    outOfTime: () => retrying(outOfTime),
    beforeWait: (failure, delayMs) => logRetry(call, attempts, failure.reason, failure.failed, delayMs),
  });
}

/** The worker's retry policy: the configured attempts and backoff, within the invocation's deadline. */
function retryPolicy(tools: WithdrawTools, inv: Invocation): RetryPolicy {
  const { config } = tools;
  return {
    maxAttempts: config.maxAttempts,
    baseDelayMs: config.retryBaseDelayMs,
    maxDelayMs: config.retryMaxDelayMs,
    minCallBudgetMs: MIN_CALL_BUDGET_MS,
    deadline: inv.deadline,
    signal: inv.signal,
    now: inv.now,
    random: tools.random,
    sleep: tools.sleep,
  };
}

/** Counts a retry inside the invocation and says why, once per record sharing the call. */
function logRetry(call: CallLog, attempt: number, reason: RetryReason, failed: FailedCall, delayMs: number) {
  call.inv.metrics.count("Retried");
  const { answer } = failed;
  logEach(call, "info", "withdrawal_retrying", {
    attempt,
    call: failed.call,
    reason,
    status: answer.httpStatus,
    errorCode: answer.errorCode,
    errorMsg: cut(answer.errorMsg),
    latencyMs: Math.round(failed.result.durationMs),
    delayMs,
  });
}

/** After `SCM.0010`, the certificate's details decide: already withdrawn, rejected, or worth a retry. */
async function checkStatus(
  tools: WithdrawTools,
  inv: Invocation,
  certificateId: string,
  token: ScmAuth,
  timeoutMs: number,
) {
  const details = await tools.scm.getCertificate(certificateId, token, { timeoutMs, signal: inv.signal });
  observe(inv, tools.limiter, details);
  return { ...classifyStatusCheck(details, tools.config.alreadyWithdrawnStatuses), details };
}

/** One line per record sharing the call, each with its own correlation fields and the call's duration so far. */
function logEach({ inv, members, started }: CallLog, level: "info" | "warn", event: string, fields: LogFields) {
  for (const c of members) inv.log[level](event, { ...c, ...fields, durationMs: inv.now() - started });
}

/** Logs a token that could not be had (or a rate-limit wait cut by the deadline) and names the retry reason. */
function tokenFailure(call: CallLog, attempts: number, error: unknown) {
  const { inv } = call;
  if (error instanceof DeadlineError) return `deadline:${error.subject}` as const;
  if (!(error instanceof TokenUnavailableError) && inv.signal.aborted) return "deadline:scm" as const;
  inv.metrics.count("TokenUnavailable");
  const code = tokenErrorCode(error);
  logEach(call, "warn", "token_unavailable", { attempt: attempts, code, error: describeError(error) });
  return "token_unavailable" as const;
}

export function tokenErrorCode(error: unknown): string {
  return error instanceof TokenUnavailableError || error instanceof DeadlineError ? error.code : "unknown";
}

/** Every SCM answer feeds the latency metric and the rate limiter (which learns the gateway's limit from it). */
function observe(inv: Invocation, limiter: RateLimiter, result: ScmResult) {
  inv.metrics.scmLatency(result.durationMs);
  limiter.observe(result);
  if (isThrottling(result)) inv.metrics.count("Throttled");
}

/**
 * What an answer said, for logs and the DLQ. The token is cut out of anything SCM sent back: a
 * gateway that echoes request headers in its error text must not leak it into logs or the DLQ.
 * An unexpected answer without `error_msg` is quoted by a short excerpt of its body instead.
 */
function lastAnswer(result: ScmResult, auth: ScmAuth, decision: { kind: string; reason?: string }): LastAnswer {
  const token = tokenOf(auth);
  if (result.kind === "network") {
    return { httpStatus: undefined, errorCode: undefined, errorMsg: redact(result.message, token) };
  }
  const unexpected = decision.kind === "retry" && decision.reason === "unexpected_answer";
  const errorMsg = result.errorMsg ?? (unexpected ? result.excerpt : undefined);
  return { httpStatus: result.status, errorCode: redact(result.errorCode, token), errorMsg: redact(errorMsg, token) };
}

export function cut(text: string | undefined): string | undefined {
  return text === undefined || text.length <= LOGGED_ERROR_MSG_LENGTH
    ? text
    : `${text.slice(0, LOGGED_ERROR_MSG_LENGTH)}…`;
}
