import { describe, expect, it } from "vitest";
import { DEFAULT_STALL_TIMEOUT_MS } from "../../cli/batch.ts";
import { DEFAULT_RETRY_VISIBILITY_SCHEDULE, parseVisibilitySchedule } from "../../lib/config.ts";

describe("following a batch (bulk --wait, batch status --watch)", () => {
  it("does not call a batch stalled while a job may still be waiting out the default backoff between deliveries", () => {
    const longestWaitMs = Math.max(...parseVisibilitySchedule(DEFAULT_RETRY_VISIBILITY_SCHEDULE)!) * 1000;
    expect(DEFAULT_STALL_TIMEOUT_MS).toBeGreaterThanOrEqual(2 * longestWaitMs);
  });
});
