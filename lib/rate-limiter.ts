/**
 * Client-side limits on SCM calls per second, per container.
 *
 * - {@link createRateLimiter}: a fixed rate (calls spaced evenly, 1000/rps ms apart).
 * - {@link createAdaptiveLimiter}: what the worker uses. Huawei publishes no rate limit for SCM, and the
 *   Lambda containers share nothing, so each container finds its own share (AIMD, as TCP does): it
 *   raises its rate while calls go through and cuts it when the API gateway throttles. Containers that
 *   all cut on throttling and all raise in proportion converge on a total just under the gateway's
 *   limit, whatever their number. When the gateway's `error_msg` states the limit
 *   (`...ratelimit,limit:20,time:1 second`), no container goes above it.
 *
 * Calls are spaced evenly instead of in bursts: Huawei's gateway counts calls per user per second, and
 * an even spacing never crosses a one-second window. The spacing holds between the moments calls are
 * actually let through, so a late timer never squeezes two calls together.
 */
import { THROTTLING_CODES } from "./classify.ts";
import { sleep } from "./retry.ts";
import type { ScmResult } from "./scm-client.ts";

export interface RateLimiter {
  /** Resolves when the caller may make one call. Rejects if `signal` aborts while waiting. */
  take(signal?: AbortSignal): Promise<void>;
  /** How long a `take()` made now would wait, in ms (0 when a slot is free). */
  waitTime(): number;
  /** What an SCM call answered: an adaptive limiter learns from it; a fixed one ignores it. */
  observe(result: ScmResult): void;
  /** The current rate in calls per second (Infinity: no limit). */
  rate(): number;
}

export interface Clock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = { now: () => Date.now(), sleep };

/**
 * The share of a limit left unused. The gateway counts calls when they arrive, and calls sent exactly
 * 1000/rps ms apart arrive a millisecond or two closer now and then (network and event-loop jitter,
 * whole-millisecond clocks): at exactly the limit, that alone was about 4 % of 429s in the bench
 * (5 containers × 4/s against 20/s); 2 % below it, none.
 */
export const GATEWAY_HEADROOM = 0.02;

export interface RateLimiterOptions {
  /** Share of `callsPerSecond` left unused (0 to <1), e.g. {@link GATEWAY_HEADROOM}. Default 0. */
  headroom?: number;
}

/** A fixed rate: `callsPerSecond`, less the headroom. */
export function createRateLimiter(
  callsPerSecond: number,
  clock: Clock = systemClock,
  options: RateLimiterOptions = {},
): RateLimiter {
  const rate = callsPerSecond * (1 - (options.headroom ?? 0));
  const spacer = createSpacer(
    () => 1000 / rate,
    () => -Infinity,
    clock,
  );
  return { ...spacer, observe: () => {}, rate: () => rate };
}

/** The limiter for tests and tools that want none. */
export const unlimited: RateLimiter = {
  take: async () => {},
  waitTime: () => 0,
  observe: () => {},
  rate: () => Infinity,
};

// ---------------------------------------------------------------------------------------------
// Spacing
// ---------------------------------------------------------------------------------------------

/**
 * Lets callers through `interval()` ms apart on average (GCRA, the virtual-scheduling form of a token
 * bucket), and none before `notBefore()`. `tolerance(interval)` ms of unused time may be caught up in a
 * burst (0: strict spacing). The interval is read again at every release, so a rate cut applies to
 * callers already waiting.
 */
function createSpacer(
  interval: () => number,
  notBefore: () => number,
  clock: Clock,
  tolerance: (interval: number) => number = () => 0,
  onRelease: (at: number) => void = () => {},
) {
  /** Theoretical arrival time over the slots handed out (concurrent callers each reserve their own slot). */
  let reserved = -Infinity;
  /** Theoretical arrival time over the moments callers were actually let through. */
  let released = -Infinity;
  /** When a caller last had to wait: the limit is what holds the calls back. */
  let lastWaited = -Infinity;
  const earliest = (tat: number) => Math.max(tat - tolerance(interval()), notBefore());
  return {
    async take(signal?: AbortSignal) {
      const now = clock.now();
      let slot = Math.max(now, earliest(reserved), earliest(released));
      reserved = Math.max(slot, reserved) + interval();
      if (slot > now) {
        lastWaited = now;
        await clock.sleep(slot - now, signal);
      }
      // Timers fire late on a busy event loop. If the caller before us was let through late, our slot
      // is now closer to it than the rate allows, and a gateway counting calls per sliding second sees
      // one call too many. So the rate is kept between the moments calls are really let through, not
      // only between the slots reserved in advance.
      for (;;) {
        const at = Math.max(clock.now(), slot);
        const first = earliest(released);
        if (at >= first) {
          released = Math.max(at, released) + interval();
          onRelease(at);
          break;
        }
        slot = first;
        lastWaited = at;
        await clock.sleep(first - at, signal);
      }
      reserved = Math.max(reserved, released);
    },
    waitTime() {
      return Math.max(0, earliest(reserved) - clock.now(), earliest(released) - clock.now());
    },
    /** True when callers had to wait within the last `withinMs`: calls are held back by the rate. */
    saturated(withinMs: number) {
      return clock.now() - lastWaited <= withinMs;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Adaptive (AIMD)
// ---------------------------------------------------------------------------------------------

/** A limit stated by the gateway: `calls` per `windowMs`. */
export interface StatedLimit {
  calls: number;
  windowMs: number;
}

const UNIT_MS = { second: 1000, minute: 60_000, hour: 3_600_000, day: 86_400_000 } as const;

/**
 * The limit in a throttling message: Huawei's gateway says
 * `The throttling threshold has been reached: policy user over ratelimit,limit:20,time:1 second`
 * (or `time:1 minute`). Undefined when the message states none.
 */
export function parseStatedLimit(errorMsg: string | undefined): StatedLimit | undefined {
  const match = /limit\s*:\s*(\d+(?:\.\d+)?)\s*,\s*time\s*:\s*(\d+(?:\.\d+)?)?\s*(second|minute|hour|day)s?\b/i.exec(
    errorMsg ?? "",
  );
  if (!match) return undefined;
  const calls = Number(match[1]);
  const windowMs = Number(match[2] ?? 1) * UNIT_MS[match[3]!.toLowerCase() as keyof typeof UNIT_MS];
  return calls > 0 && windowMs > 0 ? { calls, windowMs } : undefined;
}

/** A throttling answer: HTTP 429, or the gateway's throttling code under any status. */
export function isThrottling(result: ScmResult): boolean {
  if (result.kind !== "answer") return false;
  return (
    result.status === 429 ||
    (result.errorCode !== undefined && (THROTTLING_CODES as readonly string[]).includes(result.errorCode))
  );
}

/** The tuning. The defaults are the ones the bench (`bench/throttling.ts`) measured; see the README. */
export const ADAPTIVE_DEFAULTS = {
  /** Share of a stated limit left unused ({@link GATEWAY_HEADROOM}). */
  headroom: GATEWAY_HEADROOM,
  /** On throttling, the rate becomes this × the calls the gateway let through in its last window. */
  decrease: 0.85,
  /**
   * The same, on the first throttling after a start with no limit. The gateway's window was full then,
   * so what it let through is exactly this container's share of the limit: keep only a margin.
   */
  firstDecrease: 0.95,
  /** Until the first throttling: + this many calls/s per call that went through (the rate grows e-fold per second). */
  slowStartStep: 1,
  /** After it, per second: + this share of the container's own rate (N containers raise their total by it)... */
  increasePerSecond: 0.01,
  /**
   * ...and + this share of the stated limit (or, when none was stated, of the rate before the last cut):
   * the additive part, which evens out the shares, so a container that joined late does not starve.
   */
  additivePerSecond: 0.005,
  /** Never below this, so a container always gets some calls through and can learn again. */
  minRps: 0.5,
  /**
   * Unused time a container may catch up in a burst, ms. A Lambda container sends nothing between
   * batches (the last answer of one, the first call of the next): without this, that gap alone kept one
   * container at 0.8× the limit in the bench. Once the gateway has stated its limit, the container also
   * never sends more than the ceiling within one of the gateway's windows, so a burst cannot cross it.
   */
  burstMs: 100,
} as const;

export interface AdaptiveLimiterOptions extends Partial<typeof ADAPTIVE_DEFAULTS> {
  /** Starting rate (`SCM_MAX_RPS`); undefined: no limit until the gateway first throttles. */
  initialRps?: number | undefined;
  /** Called when the rate is cut (for a log line). */
  onCut?: (event: { rate: number; previous: number; statedLimit: StatedLimit | undefined }) => void;
}

/**
 * AIMD per container:
 * - **slow start**: from `initialRps` (or no limit), + `slowStartStep` calls/s per call that went
 *   through, until the first throttling answer;
 * - **throttled**: the rate becomes `decrease` × itself, or what the gateway let through in its last
 *   window if that is less (so the total of all containers drops below the limit at once, however far
 *   over it was); leaving the no-limit start, `firstDecrease` × what the gateway let through, after
 *   waiting out that window (it is full). Capped by the stated limit less the headroom. Answers to calls
 *   sent before the last cut are the same event and change nothing;
 * - **otherwise**: + `increasePerSecond` × rate + `additivePerSecond` × the stated limit, per second,
 *   only while the rate is what holds calls back.
 * Answers that the gateway let through (any status but 429/5xx) count as going through; network
 * failures and 5xx say nothing about the limit.
 */
export function createAdaptiveLimiter(options: AdaptiveLimiterOptions = {}, clock: Clock = systemClock): RateLimiter {
  const tuning = { ...ADAPTIVE_DEFAULTS, ...options };
  let rate = options.initialRps ?? Infinity;
  let ceiling = Infinity;
  let windowMs = 1000;
  let slowStart = true;
  let lastCut = -Infinity;
  let pauseUntil = -Infinity;
  /** What the additive increase is a share of: the stated limit, else the rate before the last cut. */
  let scale = 0;
  let firstCall = Infinity;
  /** When calls went through, over the last window (for the rate the gateway granted). */
  const admitted: number[] = [];
  /** When calls were sent, over the last window (for the ceiling per window). */
  const sent: number[] = [];
  const trim = (times: number[], now: number) => {
    while (times.length > 0 && times[0]! <= now - windowMs) times.shift();
    return times;
  };
  const granted = (now: number) => (trim(admitted, now).length * 1000) / windowMs;
  /** No call before the pause ends, nor while this window already holds the ceiling's worth of calls. */
  const notBefore = () => {
    // At least one call per window, however low the stated limit.
    const windowCap = Math.max(1, Math.floor((ceiling * windowMs) / 1000));
    const inWindow = trim(sent, clock.now());
    const full = inWindow.length >= windowCap ? inWindow[inWindow.length - windowCap]! + windowMs : -Infinity;
    return Math.max(pauseUntil, full);
  };
  const spacer = createSpacer(
    () => (Number.isFinite(rate) ? 1000 / rate : 0),
    notBefore,
    clock,
    (interval) => Math.max(0, tuning.burstMs - interval),
    (at) => {
      if (Number.isFinite(ceiling)) sent.push(at);
    },
  );

  function throttled(result: ScmResult & { kind: "answer" }, now: number) {
    const stated = parseStatedLimit(result.errorMsg);
    if (stated) {
      windowMs = stated.windowMs;
      ceiling = ((stated.calls * 1000) / stated.windowMs) * (1 - tuning.headroom);
      scale = ceiling;
    }
    if (now - result.durationMs < lastCut) {
      rate = Math.min(rate, ceiling);
      return;
    }
    const previous = rate;
    const first = !Number.isFinite(previous);
    // Cut the rate, and at least down to what the gateway let through in its window (this container's
    // real share: a Lambda container sends nothing between batches, so it may use less than its rate).
    // That count is known once the container has sent for a whole window, or sent without limit (which
    // fills the window at once); plus one call, as a count over one window is whole calls.
    const measured = first || now - firstCall >= windowMs;
    const share = measured ? granted(now) + (first ? 0 : 1000 / windowMs) : Infinity;
    const cut = first ? tuning.firstDecrease * share : Math.min(tuning.decrease * rate, share);
    rate = Math.max(tuning.minRps, Math.min(cut, ceiling));
    if (!Number.isFinite(ceiling)) scale = Number.isFinite(previous) ? previous : rate;
    // Leaving the no-limit start, the gateway's window is full: wait it out before sending again.
    if (first) pauseUntil = now + windowMs;
    slowStart = false;
    lastCut = now;
    options.onCut?.({ rate, previous, statedLimit: stated });
  }

  function wentThrough(now: number) {
    trim(admitted, now).push(now);
    if (!Number.isFinite(rate) || !spacer.saturated(Math.max(1000, 2000 / rate))) return;
    // Per call, so that per second the rate grows by the step (slow start) or by the shares.
    rate += slowStart ? tuning.slowStartStep : tuning.increasePerSecond + (tuning.additivePerSecond * scale) / rate;
    rate = Math.min(rate, ceiling);
  }

  return {
    take: spacer.take,
    waitTime: spacer.waitTime,
    rate: () => rate,
    observe(result) {
      if (result.kind !== "answer") return;
      const now = clock.now();
      firstCall = Math.min(firstCall, now - result.durationMs);
      if (isThrottling(result)) throttled(result, now);
      else if (result.status < 500) wentThrough(now);
    },
  };
}
