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
export function retryDelay(retry: number, retryAfterMs: number | undefined, options: BackoffOptions, random: () => number = Math.random): number {
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
