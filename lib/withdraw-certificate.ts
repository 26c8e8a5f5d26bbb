/**
 * One certificate's withdrawal within an invocation: cancel-cert until SCM's answer decides, the
 * attempts run out, or the invocation's deadline comes. Every record that asked for the certificate
 * shares the result (one SCM call for several jobs of one certificate in a batch).
 */
import {
  cancelSucceeded,
  classifyAnswer,
  classifyStatusCheck,
  type RetryReason,
} from "./classify.ts";
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
import { retryDelay } from "./retry.ts";
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

/** Below this, a call cannot finish before the deadline; do not start it. */
const MIN_CALL_BUDGET_MS = 50;
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

export async function withdrawCertificate(
  tools: WithdrawTools,
  inv: Invocation,
  certificateId: string,
  members: readonly Correlation[],
): Promise<WithdrawalResult> {
  const { config, scm, tokens } = tools;
  const call: CallLog = { inv, members, started: inv.now() };
  let attempts = 0;
  let transientFailures = 0;
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
  const budget = () => Math.min(config.scmTimeoutMs, inv.deadline - inv.now());
  /**
   * Why the record is left when time runs out: the answer that asked for the retry (a `Retry-After`
   * longer than the invocation is `throttled`, an odd 2xx stays `unexpected_answer` for the DLQ),
   * or `deadline:scm` when nothing answered yet or the last call hung until the deadline cut it.
   */
  let outOfTime: RetryCause = "deadline:scm";

  for (;;) {
    let token: ScmAuth;
    try {
      token = await tokens.getToken(inv.signal);
      await tools.limiter.take(inv.signal);
    } catch (error) {
      const reason = tokenFailure(call, attempts, error);
      // A rate-limit wait cut by the deadline: the throttling answer before it is the reason.
      return retrying(reason === "deadline:scm" ? outOfTime : reason);
    }
    if (budget() < MIN_CALL_BUDGET_MS) return retrying(outOfTime);

    attempts += 1;
    const result = await scm.cancelCert(certificateId, token, { timeoutMs: budget(), signal: inv.signal });
    observe(inv, tools.limiter, result);
    const decision = classifyAnswer(result, { tokenRefreshed, succeeded: cancelSucceeded(certificateId) });
    last = lastAnswer(result, token, decision);
    let retry: { reason: RetryReason; retryAfterMs: number | undefined };
    let failed: FailedCall = { call: "cancel", result, answer: last };

    switch (decision.kind) {
      case "withdrawn":
        return { state: "withdrawn", attempts, last };
      case "dead-letter":
        return { state: "dead_lettered", reason: decision.reason, attempts, last };
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
          return retrying(tokenFailure(call, attempts, error));
        }
        continue;
      case "check-status": {
        if (budget() < MIN_CALL_BUDGET_MS) return retrying("deadline:scm");
        const check = await checkStatus(tools, inv, certificateId, token, budget());
        if (check.kind === "already-withdrawn")
          return { state: "already_withdrawn", attempts, certificateStatus: check.status, last };
        if (check.kind === "rejected") return { state: "dead_lettered", reason: "rejected", attempts, last };
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
    transientFailures += 1;
    if (transientFailures >= config.maxAttempts) return retrying(retry.reason);
    const hung = failed.result.kind === "network" && failed.result.failure === "timeout";
    outOfTime = hung ? "deadline:scm" : retry.reason;
    const backoff = { baseMs: config.retryBaseDelayMs, capMs: config.retryMaxDelayMs };
    const delay = retryDelay(transientFailures - 1, retry.retryAfterMs, backoff, tools.random);
    if (inv.now() + delay + MIN_CALL_BUDGET_MS > inv.deadline) return retrying(outOfTime);
    logRetry(call, attempts, retry.reason, failed, delay);
    try {
      await tools.sleep(delay, inv.signal);
    } catch {
      return retrying(outOfTime);
    }
  }
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
