/**
 * Retry timing, p-retry style: the delay is a pure function of the attempt, the total budget is the
 * Lambda's remaining time minus a margin, and sleeps are abortable.
 *
 * Backoff is "full jitter" (https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/):
 * delay = random(0, min(cap, base · 2^n)). Huawei asks throttled clients to wait 2 to 5 s with
 * backoff and randomness, so a `Retry-After` from SCM is a floor, never shortened.
 */

export interface BackoffOptions {
  baseMs: number;
  capMs: number;
}

/** The delay before retry number `retry` (0 for the first retry). */
export function backoffDelay(retry: number, options: BackoffOptions, random: () => number = Math.random): number {
  const ceiling = Math.min(options.capMs, options.baseMs * 2 ** Math.min(retry, 30));
  return Math.floor(random() * ceiling);
}

/** The wait before the next call: the jittered backoff, but never less than what SCM asked for. */
export function retryDelay(
  retry: number,
  retryAfterMs: number | undefined,
  options: BackoffOptions,
  random: () => number = Math.random,
): number {
  const jittered = backoffDelay(retry, options, random);
  return retryAfterMs === undefined ? jittered : Math.max(retryAfterMs, jittered);
}

/** Sleeps `ms`, or rejects at once with the signal's reason when it is aborted. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** The moment (ms since epoch) after which nothing new may start, leaving `marginMs` to finish up. */
export function deadlineFrom(remainingMs: number, marginMs: number, nowMs: number): number {
  return nowMs + Math.max(0, remainingMs - marginMs);
}

/**
 * Below this much time before the deadline an SCM call is not started: it could not finish, yet it would
 * still spend one of the gateway's rate-limited calls (and a cancel SCM carries out but whose answer we
 * never read leaves the record's fate unknown). 100 ms is the shortest call time limit the configuration
 * accepts (SCM_TIMEOUT_MS ≥ 100), so no call starts with less time than the shortest one allowed.
 */
export const MIN_CALL_BUDGET_MS = 100;

/** How an SCM call is retried: one policy for the worker's withdrawals and the sweep's listing. */
export interface RetryPolicy {
  /** Calls allowed for transient failures, the first one included. */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** A call is not started with less time than this before the deadline (see {@link MIN_CALL_BUDGET_MS}). */
  minCallBudgetMs: number;
  /** The moment (ms since epoch) by which every call must have finished. */
  deadline: number;
  /** Cuts a wait short (the invocation's deadline). */
  signal?: AbortSignal | undefined;
  now: () => number;
  random: () => number;
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** What one attempt decided. */
export type AttemptResult<T, F> =
  | { kind: "done"; value: T }
  /** Try again at once, without backoff and without counting a failure (e.g. with a refreshed token). */
  | { kind: "again" }
  /** A transient failure: wait (never less than `retryAfterMs`) and try again. */
  | { kind: "retry"; failure: F; retryAfterMs: number | undefined };

/** How a retry loop that did not get a `done` ends; each may return a value or throw. */
export interface RetryEnds<T, F> {
  /** The transient failures reached `maxAttempts`. */
  exhausted(failure: F, failures: number): T;
  /** The wait would leave less than the minimum call budget before the deadline, or it was cut short. */
  outOfTime(failure: F): T;
  /** Called just before each wait (to log and count the retry). */
  beforeWait?(failure: F, delayMs: number, failures: number): void;
}

/** The time a call may take from now, or undefined when that is under the policy's minimum call budget. */
export function callBudget(policy: RetryPolicy): number | undefined {
  const left = policy.deadline - policy.now();
  return left < policy.minCallBudgetMs ? undefined : left;
}

/**
 * Runs `attempt` until it is done, backing off between transient failures with {@link retryDelay}. The
 * attempt checks {@link callBudget} before its call; the loop checks that the wait leaves one.
 */
export async function retryLoop<T, F>(
  policy: RetryPolicy,
  attempt: () => Promise<AttemptResult<T, F>>,
  ends: RetryEnds<T, F>,
): Promise<T> {
  const backoff = { baseMs: policy.baseDelayMs, capMs: policy.maxDelayMs };
  let failures = 0;
  for (;;) {
    const result = await attempt();
    if (result.kind === "done") return result.value;
    if (result.kind === "again") continue;
    failures += 1;
    if (failures >= policy.maxAttempts) return ends.exhausted(result.failure, failures);
    const delayMs = retryDelay(failures - 1, result.retryAfterMs, backoff, policy.random);
    if (policy.now() + delayMs + policy.minCallBudgetMs > policy.deadline) return ends.outOfTime(result.failure);
    ends.beforeWait?.(result.failure, delayMs, failures);
    try {
      await policy.sleep(delayMs, policy.signal);
    } catch {
      return ends.outOfTime(result.failure);
    }
  }
}
