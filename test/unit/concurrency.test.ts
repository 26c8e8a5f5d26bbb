import { describe, expect, it } from "vitest";
import { forEachConcurrently } from "../../lib/concurrency.ts";

describe("forEachConcurrently", () => {
  it("runs every item once with at most `limit` in flight", async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const seen: number[] = [];
    await forEachConcurrently([1, 2, 3, 4, 5, 6, 7], 3, async (item) => {
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((resolve) => setTimeout(resolve, 5));
      seen.push(item);
      inFlight -= 1;
    });
    expect(seen.sort()).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(maxInFlight).toBe(3);
  });

  it("treats a limit below one as one, and an empty list as nothing to do", async () => {
    const order: number[] = [];
    await forEachConcurrently([1, 2], 0, async (item, index) => void order.push(item * 10 + index));
    expect(order).toEqual([10, 21]);
    await forEachConcurrently([], 4, async () => expect.unreachable());
  });
});
