/**
 * A client-side limit on SCM calls per second (`SCM_MAX_RPS`), per container.
 *
 * Calls are spaced evenly, 1000/rps ms apart, instead of in bursts: Huawei's gateway counts calls per
 * user per second, and an even spacing never crosses a one-second window. The spacing holds between
 * the moments calls are actually let through, so a late timer never squeezes two calls together.
 * The account-wide rate is this limit × the number of containers (the event source's maximum
 * concurrency).
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

/**
 * The share of `SCM_MAX_RPS` the worker leaves unused. The gateway counts calls when they arrive, and
 * calls sent exactly 1000/rps ms apart arrive a millisecond or two closer now and then (network and
 * event-loop jitter, whole-millisecond clocks): at exactly the limit, that alone was about 4 % of 429s
 * in the bench (comparison 5, 5 containers × 4/s against 20/s); 2 % below it, none.
 */
export const GATEWAY_HEADROOM = 0.02;

export interface RateLimiterOptions {
  /** Share of `callsPerSecond` left unused (0 to <1), e.g. {@link GATEWAY_HEADROOM}. Default 0. */
  headroom?: number;
}

export function createRateLimiter(callsPerSecond: number, clock: Clock = systemClock, options: RateLimiterOptions = {}): RateLimiter {
  const interval = 1000 / (callsPerSecond * (1 - (options.headroom ?? 0)));
  /** The earliest time the next caller may be given (concurrent callers each reserve their own slot). */
  let nextSlot = -Infinity;
  /** When the most recent caller was actually let through. */
  let lastRelease = -Infinity;
  return {
    async take(signal) {
      const now = clock.now();
      let slot = Math.max(now, nextSlot, lastRelease + interval);
      nextSlot = slot + interval;
      if (slot > now) await clock.sleep(slot - now, signal);
      // Timers fire late on a busy event loop. If the caller before us was let through late, our slot
      // is now less than `interval` after it, and a gateway counting calls per sliding second sees one
      // call too many (about a third of the 429s in bench comparison 5). So the spacing is kept between
      // the moments calls are really let through, not only between the slots reserved in advance.
      for (;;) {
        const at = Math.max(clock.now(), slot);
        const earliest = lastRelease + interval;
        if (at >= earliest) {
          lastRelease = at;
          break;
        }
        slot = earliest;
        await clock.sleep(earliest - at, signal);
      }
      nextSlot = Math.max(nextSlot, lastRelease + interval);
    },
    waitTime() {
      return Math.max(0, nextSlot - clock.now(), lastRelease + interval - clock.now());
    },
  };
}

/** The limiter used when `SCM_MAX_RPS` is unset. */
export const unlimited: RateLimiter = { take: async () => {}, waitTime: () => 0 };
