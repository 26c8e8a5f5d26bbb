/**
 * Bounding awaits by the invocation's deadline. A call that takes a signal is aborted at the deadline;
 * whether or not it honours the signal, the caller stops waiting then and gets a `DeadlineError`
 * naming what it waited for (a late result is dropped, a late rejection is swallowed).
 */
import { DeadlineError, type DeadlineSubject } from "./errors.ts";

/** Runs `call(signal)` and waits for it at most until `signal` aborts; then rejects with `DeadlineError(subject)`. */
export function withDeadline<T>(
  subject: DeadlineSubject | (() => DeadlineSubject),
  signal: AbortSignal,
  call: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const fail = () => new DeadlineError(typeof subject === "function" ? subject() : subject);
  if (signal.aborted) return Promise.reject(fail());
  let running: Promise<T>;
  try {
    running = call(signal);
  } catch (error) {
    return Promise.reject(error);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      running.catch(() => {});
      reject(fail());
    };
    signal.addEventListener("abort", onAbort, { once: true });
    running.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

/** A signal that aborts at `at` (ms since the epoch, by `now`), and a function that stops its timer. */
export function signalAt(at: number, now: () => number): { signal: AbortSignal; clear(): void } {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error("deadline")), Math.max(0, at - now()));
  return { signal: controller.signal, clear: () => clearTimeout(timer) };
}
