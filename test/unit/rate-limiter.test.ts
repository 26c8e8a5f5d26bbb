/**
 * The rate limiter's spacing under a late timer and its headroom, with a fake clock whose timers
 * fire when the test says (no real time passes). The basics (even spacing, no banked bursts,
 * distinct slots for concurrent callers) are in retry.test.ts.
 */
import { describe, expect, it } from "vitest";
import {
  createAdaptiveLimiter,
  createRateLimiter,
  GATEWAY_HEADROOM,
  parseStatedLimit,
  type Clock,
  type RateLimiter,
} from "../../lib/rate-limiter.ts";
import type { ScmResult } from "../../lib/scm-client.ts";
import { throttleBody } from "../../local/scm-simulator.ts";

/** A clock with real timer semantics (sleeps end in time order), each sleep `lateBy(n)` ms late. */
function fakeScheduler(lateBy: (sleepNumber: number) => number = () => 0) {
  let t = 1000;
  let sleeps = 0;
  const timers: { at: number; wake: () => void }[] = [];
  const clock: Clock = {
    now: () => t,
    // Like the real sleep: an abort rejects at once and cancels the timer.
    sleep: (ms, signal) =>
      new Promise<void>((wake, fail) => {
        if (signal?.aborted) return fail(signal.reason);
        const timer = { at: t + ms + lateBy(sleeps++), wake };
        timers.push(timer);
        signal?.addEventListener(
          "abort",
          () => {
            timers.splice(timers.indexOf(timer), 1);
            fail(signal.reason);
          },
          { once: true },
        );
      }),
  };
  /** Fires every timer in time order until none is left, letting the callers run in between. */
  const runAll = async () => {
    for (;;) {
      await new Promise((resolve) => setImmediate(resolve));
      if (timers.length === 0) return;
      timers.sort((a, b) => a.at - b.at);
      const next = timers.shift()!;
      t = Math.max(t, next.at);
      next.wake();
    }
  };
  /** Fires timers in time order up to `until` (simulated ms), letting the callers run in between. */
  const runUntil = async (until: number) => {
    for (;;) {
      await new Promise((resolve) => setImmediate(resolve));
      timers.sort((a, b) => a.at - b.at);
      if (timers.length === 0 || timers[0]!.at > until) return void (t = until);
      const next = timers.shift()!;
      t = Math.max(t, next.at);
      next.wake();
    }
  };
  return { clock, runAll, runUntil };
}

const gaps = (times: number[]) => times.slice(1).map((time, i) => time - times[i]!);

describe("rate limiter under load", () => {
  it("keeps calls 1000/rps ms apart even when a timer fires late", async () => {
    // The second caller's timer fires 20 ms late; the third and fourth must not follow it closer
    // than 250 ms, or a gateway counting per sliding second would see 5 calls in one second.
    const { clock, runAll } = fakeScheduler((n) => (n === 0 ? 20 : 0));
    const limiter = createRateLimiter(4, clock);
    const released: number[] = [];
    const callers = Array.from({ length: 4 }, () => limiter.take().then(() => void released.push(clock.now())));
    await runAll();
    await Promise.all(callers);
    expect(released).toEqual([1000, 1270, 1520, 1770]);
    for (const gap of gaps(released)) expect(gap).toBeGreaterThanOrEqual(250);
  });

  it("never lets more than rps calls through in any one-second window, with random lateness", async () => {
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const { clock, runAll } = fakeScheduler(() => Math.floor(random() * 15));
    const limiter = createRateLimiter(10, clock);
    const released: number[] = [];
    const callers = Array.from({ length: 60 }, () => limiter.take().then(() => void released.push(clock.now())));
    await runAll();
    await Promise.all(callers);
    for (const at of released) expect(released.filter((t) => t > at - 1000 && t <= at).length).toBeLessThanOrEqual(10);
  });

  it("leaves the headroom share of the rate unused", async () => {
    const { clock, runAll } = fakeScheduler();
    const limiter = createRateLimiter(20, clock, { headroom: GATEWAY_HEADROOM });
    const released: number[] = [];
    for (let i = 0; i < 3; i++) {
      const taken = limiter.take().then(() => void released.push(clock.now()));
      await runAll();
      await taken;
    }
    expect(gaps(released)).toEqual([1000 / (20 * 0.98), 1000 / (20 * 0.98)]);
  });

  it("rejects a waiting caller whose signal aborts, and serves the next one", async () => {
    const { clock, runAll } = fakeScheduler();
    const limiter = createRateLimiter(4, clock);
    await limiter.take();
    const abort = new AbortController();
    const waiting = limiter.take(abort.signal);
    abort.abort(new Error("deadline"));
    await expect(waiting).rejects.toThrow("deadline");
    const next = limiter.take();
    await runAll();
    await expect(next).resolves.toBeUndefined();
  });
});

const ok = (durationMs = 50): ScmResult => ({
  kind: "answer",
  status: 200,
  body: {},
  errorCode: undefined,
  errorMsg: undefined,
  retryAfterMs: undefined,
  durationMs,
});
/** The gateway's 429, as the SCM client reads the simulator's answer (same body, same `APIG.0308`). */
const throttledAnswer = (limit: number | undefined, durationMs = 50, time?: "1 second" | "1 minute"): ScmResult => {
  const body = throttleBody(limit ?? "unstated", time);
  const { error_code: errorCode, error_msg: errorMsg } = body;
  return { kind: "answer", status: 429, body, errorCode, errorMsg, retryAfterMs: undefined, durationMs };
};

describe("the limit stated by the gateway", () => {
  it.each([
    [
      "The throttling threshold has been reached: policy user over ratelimit,limit:20,time:1 second",
      { calls: 20, windowMs: 1000 },
    ],
    [
      "The throttling threshold has been reached: policy user over ratelimit,limit:600,time:1 minute",
      { calls: 600, windowMs: 60_000 },
    ],
    ["policy ip over ratelimit, limit: 5, time: 2 seconds", { calls: 5, windowMs: 2000 }],
    ["The throttling threshold has been reached: policy user over ratelimit", undefined],
    ["limit:0,time:1 second", undefined],
    [undefined, undefined],
  ])("reads %j", (message, expected) => {
    expect(parseStatedLimit(message)).toEqual(expected);
  });
});

describe("adaptive limiter", () => {
  it("sets no limit until the gateway first throttles", async () => {
    const { clock } = fakeScheduler();
    const limiter = createAdaptiveLimiter({}, clock);
    for (let i = 0; i < 100; i++) {
      await limiter.take();
      limiter.observe(ok());
    }
    expect(limiter.rate()).toBe(Infinity);
    expect(limiter.waitTime()).toBe(0);
  });

  it("on the first throttling, drops to what the gateway let through, under its stated limit, and waits out its window", async () => {
    const { clock, runUntil } = fakeScheduler();
    const limiter = createAdaptiveLimiter({}, clock);
    // 30 calls went through in the last second, then a 429 stating a limit of 20/s.
    for (let i = 0; i < 30; i++) {
      await limiter.take();
      limiter.observe(ok());
    }
    limiter.observe(throttledAnswer(20));
    expect(limiter.rate()).toBeCloseTo(20 * (1 - GATEWAY_HEADROOM));
    expect(limiter.waitTime()).toBe(1000);
    const released: number[] = [];
    const next = limiter.take().then(() => void released.push(clock.now()));
    await runUntil(5000);
    await next;
    expect(released).toEqual([2000]);
  });

  it("cuts multiplicatively on throttling, once per event: answers to calls sent before the cut change nothing", async () => {
    const { clock, runUntil } = fakeScheduler();
    const limiter = createAdaptiveLimiter({ initialRps: 10 }, clock);
    // Ten calls through at 10/s fill the last second's window: the gateway granted 10/s.
    for (let i = 0; i < 10; i++) {
      const taken = limiter.take();
      await runUntil(clock.now() + 100);
      await taken;
      limiter.observe(ok(10));
    }
    const before = limiter.rate();
    limiter.observe(throttledAnswer(undefined, 10));
    const cut = limiter.rate();
    expect(cut).toBeCloseTo(0.85 * Math.min(before, 10));
    // Sent 50 ms ago, before the cut: the same event.
    await runUntil(clock.now() + 20);
    limiter.observe(throttledAnswer(undefined, 50));
    expect(limiter.rate()).toBe(cut);
    // Sent after the cut: the total is still over the limit, cut again.
    limiter.observe(throttledAnswer(undefined, 10));
    expect(limiter.rate()).toBeLessThan(cut);
  });

  it("grows while the rate holds calls back, and not while calls are few", async () => {
    const { clock, runUntil } = fakeScheduler();
    const busy = createAdaptiveLimiter({ initialRps: 5 }, clock);
    const idle = createAdaptiveLimiter({ initialRps: 5 }, clock);
    let running = true;
    // Busy: three callers queue at the limiter. Idle: one call every 2 s, far under 5/s.
    const busyLoops = Array.from({ length: 3 }, async () => {
      while (running) {
        await busy.take();
        busy.observe(ok());
      }
    });
    const idleLoop = (async () => {
      while (running) {
        await idle.take();
        idle.observe(ok());
        await clock.sleep(2000);
      }
    })();
    await runUntil(3000);
    running = false;
    await runUntil(10_000);
    await Promise.all([...busyLoops, idleLoop]);
    expect(busy.rate()).toBeGreaterThan(10);
    expect(idle.rate()).toBe(5);
  });

  it("never goes above the stated limit, nor sends more than it within one window, bursts included", async () => {
    const { clock, runUntil } = fakeScheduler();
    const limiter = createAdaptiveLimiter({ initialRps: 100 }, clock);
    limiter.observe(throttledAnswer(20, 1));
    const released: number[] = [];
    // Batches of 10 with idle gaps between them let the limiter bank a burst; the window cap must hold.
    const batches = (async () => {
      for (let round = 0; round < 20; round++) {
        await Promise.all(
          Array.from({ length: 10 }, async () => {
            await limiter.take();
            released.push(clock.now());
            await clock.sleep(50);
            limiter.observe(ok());
          }),
        );
        await clock.sleep((round % 3) * 150);
      }
    })();
    await runUntil(60_000);
    await batches;
    expect(released).toHaveLength(200);
    expect(limiter.rate()).toBeLessThanOrEqual(20 * (1 - GATEWAY_HEADROOM));
    for (const at of released) expect(released.filter((t) => t > at - 1000 && t <= at).length).toBeLessThanOrEqual(19);
  });
});

describe("adaptive limiter under a tiny stated limit", () => {
  it("still lets one call per window through at limit:1", async () => {
    const { clock, runUntil } = fakeScheduler();
    const limiter = createAdaptiveLimiter({ initialRps: 5 }, clock);
    limiter.observe(throttledAnswer(1, 1));
    const released: number[] = [];
    const calls = Array.from({ length: 3 }, () => limiter.take().then(() => void released.push(clock.now())));
    await runUntil(20_000);
    await Promise.all(calls);
    expect(released).toHaveLength(3);
    for (const gap of gaps(released)) expect(gap).toBeGreaterThanOrEqual(1000);
  });
});

/**
 * N containers, each with its own limiter and 10 callers in a loop (take, call, 50 ms answer), against
 * one gateway that admits L calls per sliding second and answers 429 with the limit above it. None
 * knows L or N. After a warm-up, the total must stay close under L with few 429s.
 */
async function simulate(containers: number, limit: number, seconds: number) {
  const { clock, runUntil } = fakeScheduler();
  const window: number[] = [];
  const log: { at: number; ok: boolean }[] = [];
  const gateway = (): boolean => {
    const now = clock.now();
    while (window.length > 0 && window[0]! <= now - 1000) window.shift();
    if (window.length >= limit) return false;
    window.push(now);
    return true;
  };
  let running = true;
  const caller = async (limiter: RateLimiter) => {
    while (running) {
      await limiter.take();
      const admitted = gateway();
      log.push({ at: clock.now(), ok: admitted });
      await clock.sleep(50);
      limiter.observe(admitted ? ok(50) : throttledAnswer(limit, 50));
      // The worker's backoff after a throttling answer.
      if (!admitted) await clock.sleep(100);
    }
  };
  const limiters = Array.from({ length: containers }, () => createAdaptiveLimiter({}, clock));
  const loops = limiters.flatMap((limiter) => Array.from({ length: 10 }, () => caller(limiter)));
  await runUntil(1000 + seconds * 1000);
  running = false;
  await runUntil(clock.now() + 120_000);
  await Promise.all(loops);
  const steady = log.filter((c) => c.at >= 1000 + 5000 && c.at < 1000 + seconds * 1000);
  const steadySeconds = seconds - 5;
  return {
    rate: steady.filter((c) => c.ok).length / steadySeconds,
    throttledShare: steady.filter((c) => !c.ok).length / steady.length,
    rates: limiters.map((l) => l.rate()),
  };
}

describe("adaptive limiters that share nothing", () => {
  it.each([
    [1, 40],
    [2, 40],
    [5, 40],
    [5, 100],
  ])(
    "converge: %i container(s) under a limit of %i/s take ≥ 0.9 × it with ≤ 3 %% throttled",
    async (containers, limit) => {
      const result = await simulate(containers, limit, 35);
      expect(result.rate).toBeGreaterThanOrEqual(0.9 * limit);
      expect(result.rate).toBeLessThanOrEqual(limit);
      expect(result.throttledShare).toBeLessThanOrEqual(0.03);
      // No container starves.
      for (const rate of result.rates) expect(rate).toBeGreaterThan(limit / containers / 4);
    },
  );
});
