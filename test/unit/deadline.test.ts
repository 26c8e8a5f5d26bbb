/** Bounding awaits by the invocation's deadline: withDeadline, and the token provider naming the step that hung. */
import { describe, expect, it } from "vitest";
import { withDeadline } from "../../lib/deadline.ts";
import { DeadlineError } from "../../lib/errors.ts";
import { createTokenProvider } from "../../lib/token-provider.ts";

const never = () => new Promise<never>(() => {});
const TOKEN = "T".repeat(40);

describe("withDeadline", () => {
  it("passes a result that comes in time, and aborts the call's signal at the deadline", async () => {
    const controller = new AbortController();
    expect(await withDeadline("scm", controller.signal, async () => 42)).toBe(42);
    let seen: AbortSignal | undefined;
    const waiting = withDeadline("dead_letter", controller.signal, (signal) => {
      seen = signal;
      return never();
    });
    controller.abort(new Error("deadline"));
    await expect(waiting).rejects.toMatchObject({ name: "DeadlineError", subject: "dead_letter" });
    expect(seen?.aborted).toBe(true);
  });

  it("does not start a call once the deadline has passed, and passes the call's own error through", async () => {
    const controller = new AbortController();
    await expect(
      withDeadline("ledger", controller.signal, async () => Promise.reject(new Error("boom"))),
    ).rejects.toThrow("boom");
    controller.abort();
    let started = false;
    await expect(withDeadline("ledger", controller.signal, async () => void (started = true))).rejects.toBeInstanceOf(
      DeadlineError,
    );
    expect(started).toBe(false);
  });
});

describe("the token provider under a deadline", () => {
  it("names secrets_manager when the secret read hangs, and iam when the exchange does", async () => {
    const hangingRead = createTokenProvider({ readSecret: never, ttlMs: 1000 });
    const first = new AbortController();
    const reading = hangingRead.getToken(first.signal);
    first.abort();
    await expect(reading).rejects.toMatchObject({ subject: "secrets_manager" });

    const iamSecret = JSON.stringify({ iam: { domain: "d", user: "u", password: "p" } });
    const hangingIam = createTokenProvider({ readSecret: async () => iamSecret, ttlMs: 1000, exchangeIam: never });
    const second = new AbortController();
    const exchanging = hangingIam.getToken(second.signal);
    await new Promise((resolve) => setTimeout(resolve, 5));
    second.abort();
    await expect(exchanging).rejects.toMatchObject({ subject: "iam" });
  });

  it("keeps the shared read going for the next caller after one caller gave up", async () => {
    let release: (value: string) => void = () => {};
    const provider = createTokenProvider({
      readSecret: () => new Promise((resolve) => (release = resolve)),
      ttlMs: 1000,
    });
    const gaveUp = new AbortController();
    const first = provider.getToken(gaveUp.signal);
    gaveUp.abort();
    await expect(first).rejects.toBeInstanceOf(DeadlineError);
    const second = provider.getToken(new AbortController().signal);
    release(TOKEN);
    expect(await second).toBe(TOKEN);
  });
});
