import { describe, expect, it } from "vitest";
import {
  backoffDelay,
  callBudget,
  deadlineFrom,
  MIN_CALL_BUDGET_MS,
  retryDelay,
  retryLoop,
  sleep,
  type AttemptResult,
  type RetryPolicy,
} from "../../lib/retry.ts";
import { parseRetryAfter } from "../../lib/scm-client.ts";
import { createRateLimiter, type Clock } from "../../lib/rate-limiter.ts";

const options = { baseMs: 200, capMs: 5000 };

describe("backoff with full jitter", () => {
  it("grows the ceiling exponentially from the base", () => {
    const top = () => 0.999999;
    expect([0, 1, 2, 3, 4].map((n) => backoffDelay(n, options, top))).toEqual([199, 399, 799, 1599, 3199]);
  });
  it("never exceeds the cap, even for huge attempt numbers", () => {
    expect(backoffDelay(5, options, () => 0.999999)).toBe(4999);
    expect(backoffDelay(1000, options, () => 0.999999)).toBe(4999);
  });
  it("can be zero (full jitter, not equal jitter)", () => {
    expect(backoffDelay(3, options, () => 0)).toBe(0);
  });
  it("treats Retry-After as a floor", () => {
    expect(retryDelay(0, 2000, options, () => 0.5)).toBe(2000);
    expect(retryDelay(4, 100, options, () => 0.5)).toBe(1600);
    expect(retryDelay(0, undefined, options, () => 0.5)).toBe(100);
  });
});

describe("Retry-After parsing", () => {
  it("reads delta-seconds and HTTP dates", () => {
    expect(parseRetryAfter("3")).toBe(3000);
    expect(parseRetryAfter("1.5")).toBe(1500);
    const now = Date.parse("2026-11-27T10:00:00Z");
    expect(parseRetryAfter("Fri, 27 Nov 2026 10:00:04 GMT", now)).toBe(4000);
  });
  it("ignores junk and missing values", () => {
    expect(parseRetryAfter(undefined)).toBeUndefined();
    expect(parseRetryAfter("soon")).toBeUndefined();
  });
});

describe("deadline", () => {
  it("keeps the margin free at the end of the invocation", () => {
    expect(deadlineFrom(10_000, 1000, 5)).toBe(9005);
    expect(deadlineFrom(500, 1000, 5)).toBe(5);
  });
});

describe("sleep", () => {
  it("rejects at once when aborted", async () => {
    const controller = new AbortController();
    const pending = sleep(60_000, controller.signal);
    controller.abort(new Error("stop"));
    await expect(pending).rejects.toThrow("stop");
  });
});

describe("rate limiter", () => {
  const fakeClock = () => {
    let t = 1000;
    const slept: number[] = [];
    const clock: Clock = {
      now: () => t,
      sleep: async (ms) => {
        slept.push(ms);
        t += ms;
      },
    };
    return { clock, slept, advance: (ms: number) => (t += ms) };
  };

  it("spaces calls evenly at 1000/rps ms", async () => {
    const { clock, slept } = fakeClock();
    const limiter = createRateLimiter(20, clock);
    for (let i = 0; i < 5; i++) await limiter.take();
    expect(slept).toEqual([50, 50, 50, 50]);
  });
  it("does not bank unused time into a burst", async () => {
    const { clock, slept, advance } = fakeClock();
    const limiter = createRateLimiter(10, clock);
    await limiter.take();
    advance(5000);
    await limiter.take();
    await limiter.take();
    expect(slept).toEqual([100]);
  });
  it("hands out distinct slots to concurrent callers", async () => {
    // Time stands still while they wait: each caller must get its own slot, not the same one.
    const slept: number[] = [];
    const frozen: Clock = { now: () => 1000, sleep: async (ms) => void slept.push(ms) };
    const limiter = createRateLimiter(4, frozen);
    await Promise.all([limiter.take(), limiter.take(), limiter.take()]);
    expect(slept.sort((a, b) => a - b)).toEqual([250, 500]);
  });
});

describe("the SCM retry loop", () => {
  /** A policy on a fake clock that a wait advances; `waits` records each wait. */
  function policy(overrides: Partial<RetryPolicy> = {}) {
    let now = 0;
    const waits: number[] = [];
    const p: RetryPolicy = {
      maxAttempts: 3,
      baseDelayMs: 100,
      maxDelayMs: 1000,
      minCallBudgetMs: MIN_CALL_BUDGET_MS,
      deadline: 10_000,
      now: () => now,
      random: () => 0.5,
      sleep: async (ms) => {
        waits.push(ms);
        now += ms;
      },
      ...overrides,
    };
    return { p, waits };
  }
  const ends = {
    exhausted: (failure: string, failures: number) => `exhausted after ${failures}: ${failure}`,
    outOfTime: (failure: string) => `out of time: ${failure}`,
  };
  /** Each call takes the next step; once they run out, it is done with "end". */
  const script =
    (...steps: AttemptResult<string, string>[]) =>
    async (): Promise<AttemptResult<string, string>> =>
      steps.shift() ?? { kind: "done", value: "end" };

  it("backs off between transient failures and returns the first done", async () => {
    const { p, waits } = policy();
    const attempt = script({ kind: "retry", failure: "503", retryAfterMs: undefined }, { kind: "done", value: "ok" });
    expect(await retryLoop(p, attempt, ends)).toBe("ok");
    expect(waits).toEqual([50]);
  });
  it("gives up at maxAttempts failures; an immediate `again` is not counted and does not wait", async () => {
    const { p, waits } = policy();
    const failure = { kind: "retry", failure: "503", retryAfterMs: undefined } as const;
    const attempt = script(failure, { kind: "again" }, failure, failure);
    expect(await retryLoop(p, attempt, ends)).toBe("exhausted after 3: 503");
    expect(waits).toEqual([50, 100]);
  });
  it("waits at least what Retry-After asked for", async () => {
    const { p, waits } = policy();
    const attempt = script({ kind: "retry", failure: "429", retryAfterMs: 2000 });
    expect(await retryLoop(p, attempt, ends)).toBe("end");
    expect(waits).toEqual([2000]);
  });
  it("does not wait when the wait would leave less than the minimum call budget", async () => {
    const { p, waits } = policy({ deadline: 50 + MIN_CALL_BUDGET_MS - 1 });
    const attempt = script({ kind: "retry", failure: "503", retryAfterMs: undefined });
    expect(await retryLoop(p, attempt, ends)).toBe("out of time: 503");
    expect(waits).toEqual([]);
  });
  it("ends out of time when the wait is cut short", async () => {
    const { p } = policy({ sleep: () => Promise.reject(new Error("aborted")) });
    const attempt = script({ kind: "retry", failure: "503", retryAfterMs: undefined });
    expect(await retryLoop(p, attempt, ends)).toBe("out of time: 503");
  });
  it("gives a call the time to the deadline, or nothing under the minimum call budget", () => {
    expect(callBudget(policy({ deadline: 5000 }).p)).toBe(5000);
    expect(callBudget(policy({ deadline: MIN_CALL_BUDGET_MS }).p)).toBe(MIN_CALL_BUDGET_MS);
    expect(callBudget(policy({ deadline: MIN_CALL_BUDGET_MS - 1 }).p)).toBeUndefined();
  });
});
