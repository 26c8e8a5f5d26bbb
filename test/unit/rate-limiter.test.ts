/**
 * The rate limiter's spacing under a late timer and its headroom, with a fake clock whose timers
 * fire when the test says (no real time passes). The basics (even spacing, no banked bursts,
 * distinct slots for concurrent callers) are in retry.test.ts.
 */
import { describe, expect, it } from "vitest";
import { createRateLimiter, GATEWAY_HEADROOM, type Clock } from "../../lib/rate-limiter.ts";

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
        signal?.addEventListener("abort", () => {
          timers.splice(timers.indexOf(timer), 1);
          fail(signal.reason);
        }, { once: true });
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
  return { clock, runAll };
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
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
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
