/**
 * A client-side limit on SCM calls per second (`SCM_MAX_RPS`), per container.
 *
 * Calls are spaced evenly, 1000/rps ms apart, instead of in bursts: Huawei's gateway counts calls per
 * user per second, and an even spacing never crosses a one-second window. The account-wide rate is
 * this limit × the number of containers (the event source's maximum concurrency).
 */
import { sleep } from "./retry.ts";

export interface RateLimiter {
  /** Resolves when the caller may make one call. Rejects if `signal` aborts while waiting. */
  take(signal?: AbortSignal): Promise<void>;
  /** How long a `take()` made now would wait, in ms (0 when a slot is free). */
  waitTime(): number;
}

export interface Clock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = { now: () => Date.now(), sleep };

export function createRateLimiter(callsPerSecond: number, clock: Clock = systemClock): RateLimiter {
  const interval = 1000 / callsPerSecond;
  let nextSlot = -Infinity;
  return {
    async take(signal) {
      const now = clock.now();
      const slot = Math.max(now, nextSlot);
      nextSlot = slot + interval;
      if (slot > now) await clock.sleep(slot - now, signal);
    },
    waitTime() {
      return Math.max(0, nextSlot - clock.now());
    },
  };
}

/** The limiter used when `SCM_MAX_RPS` is unset. */
export const unlimited: RateLimiter = { take: async () => {}, waitTime: () => 0 };
