import { describe, expect, it } from "vitest";
import { parseCleanupFilters } from "../../lib/cleanup-config.ts";
import { makeRunId, runCleanup, runIdForEvent, selectJobs } from "../../lib/cleanup.ts";
import { detectOffsetMode, pageSizeFor } from "../../lib/cleanup-listing.ts";
import type { CleanupDependencies, ListedCertificate } from "../../lib/cleanup-types.ts";
import { silentLogger } from "../../lib/logger.ts";
import type { ScmResult } from "../../lib/scm-client.ts";

const ids = (prefix: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({ id: `${prefix}${String(i).padStart(13, "0")}` }));
const cert = (id: string, status = "CHECKING"): ListedCertificate => ({
  id,
  status,
  name: undefined,
  domain: undefined,
});
const filters = (raw: Parameters<typeof parseCleanupFilters>[0] = {}) => parseCleanupFilters(raw).filters;

describe("detectOffsetMode", () => {
  const first = ids("abc", 50);
  it("says records when the probe is the first page shifted by one", () => {
    expect(detectOffsetMode(first, [...first.slice(1), ...ids("def", 1)])).toBe("records");
  });
  it("says pages when the probe shares nothing with the first page", () => {
    expect(detectOffsetMode(first, ids("def", 50))).toBe("pages");
    expect(detectOffsetMode(first, ids("def", 1))).toBe("pages");
  });
  it("tolerates a record or two of drift between the calls", () => {
    expect(detectOffsetMode(first, [...first.slice(3), ...ids("def", 3)])).toBe("records");
    expect(detectOffsetMode(first, [first[49]!, ...ids("def", 49)])).toBe("pages");
  });
  it("gives up when it cannot tell", () => {
    expect(detectOffsetMode(first, [])).toBeUndefined();
    expect(detectOffsetMode(first.slice(0, 1), ids("def", 10))).toBeUndefined();
    expect(detectOffsetMode(first, [...first.slice(0, 20), ...ids("def", 30)])).toBeUndefined();
  });
});

describe("selectJobs", () => {
  it("applies status, duplicate, exclude and cap in that order, in listing order", () => {
    const listed = [
      cert("a000000000000001"),
      cert("a000000000000002", "ISSUED"),
      cert("a000000000000003"),
      cert("a000000000000001", "CHECKING_ORG"),
      cert("a000000000000004"),
      cert("a000000000000005"),
      cert("bad"),
    ];
    const result = selectJobs(listed, filters({ exclude: "a000000000000003", maxJobs: "2" }));
    expect(result.selected.map((j) => j.certificateId)).toEqual(["a000000000000001", "a000000000000004"]);
    expect(result.skipped.map((s) => [s.certificateId, s.reason])).toEqual([
      ["a000000000000002", "status_filtered"],
      ["a000000000000003", "excluded"],
      ["a000000000000001", "duplicate"],
      ["a000000000000005", "over_cap"],
      ["bad", "invalid_id"],
    ]);
    expect(result.found).toBe(6);
  });
});

describe("run ids", () => {
  it("look like cleanup-20261127T101500Z-ab12", () => {
    expect(makeRunId(new Date("2026-11-27T10:15:00.123Z"), "ab12")).toBe("cleanup-20261127T101500Z-ab12");
    expect(makeRunId(new Date())).toMatch(/^cleanup-\d{8}T\d{6}Z-[0-9a-f]{4}$/);
  });
  it("are the same for a retried scheduled event, and differ between events", () => {
    const event = { id: "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", time: "2026-11-27T10:15:00Z" };
    expect(runIdForEvent(event, new Date())).toBe(runIdForEvent(event, new Date(0)));
    expect(runIdForEvent({ ...event, id: "another" }, new Date())).not.toBe(runIdForEvent(event, new Date()));
    expect(runIdForEvent({}, new Date("2026-01-02T03:04:05Z"))).toMatch(/^cleanup-20260102T030405Z-[0-9a-f]{4}$/);
  });
});

/** A hand-written fake of the listing (the integration tests use the real simulator). */
function fakeScm(
  total: number,
  answer?: (offset: number) => ScmResult | undefined,
): CleanupDependencies["scm"] & { offsets: number[] } {
  const all = ids("xyz", total).map((c) => ({ ...c, status: "CHECKING" }));
  const offsets: number[] = [];
  return {
    offsets,
    async listCertificates(query) {
      const offset = Number(query.offset);
      offsets.push(offset);
      const injected = answer?.(offset);
      if (injected) return injected;
      const limit = Number(query.limit);
      return {
        kind: "answer",
        status: 200,
        body: { certificates: all.slice(offset, offset + limit), total_count: total },
        errorCode: undefined,
        errorMsg: undefined,
        retryAfterMs: undefined,
        durationMs: 1,
      };
    },
  };
}

function deps(scm: CleanupDependencies["scm"], now: () => number = Date.now): CleanupDependencies {
  return {
    scm,
    tokens: { getToken: async () => "t".repeat(40), refresh: async () => "u".repeat(40) },
    logger: silentLogger,
    retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 1, timeoutMs: 1000 },
    now,
    sleep: async () => {},
  };
}

describe("runCleanup paging", () => {
  it("reports a list that ends before total_count as ended_early, with a warning", async () => {
    const scm = fakeScm(60, (offset) =>
      offset === 50
        ? {
            kind: "answer",
            status: 200,
            body: { certificates: [], total_count: 60 },
            errorCode: undefined,
            errorMsg: undefined,
            retryAfterMs: undefined,
            durationMs: 1,
          }
        : undefined,
    );
    const report = await runCleanup(deps(scm), {
      runId: "r",
      mode: "dry-run",
      filters: filters({ statuses: "CHECKING" }),
      offsetMode: "records",
    });
    expect(report.passes[0]).toMatchObject({ totalCount: 60, listed: 50, unreachable: 10, truncatedBy: "ended_early" });
    expect(report.warnings[0]).toContain("the listing ended after 50; 10 were not seen");
  });

  it("stops before the deadline and fails the run without enqueueing", async () => {
    let clock = 1000;
    const scm = fakeScm(200);
    const slow = {
      listCertificates: async (...args: Parameters<typeof scm.listCertificates>) => {
        clock += 500;
        return scm.listCertificates(...args);
      },
    };
    const sent: unknown[] = [];
    const d = {
      ...deps(slow, () => clock),
      createSender: () => ({ push: async (m: unknown) => void sent.push(m), flush: async () => {} }),
    };
    await expect(
      runCleanup(d, {
        runId: "r",
        mode: "enqueue",
        filters: filters({ statuses: "CHECKING" }),
        offsetMode: "records",
        deadline: 2000,
      }),
    ).rejects.toMatchObject({
      code: "deadline",
      message:
        "listing CHECKING certificates (offset 100): out of time before the function's deadline; nothing was enqueued",
    });
    expect(sent).toEqual([]);
  });
});

describe("page size", () => {
  it.each([
    [undefined, 50],
    [50, 50],
    [49, 20],
    [20, 20],
    [15, 10],
    [10, 10],
    [5, 10],
  ])("asks the listing for one of its documented sizes (10, 20, 50): %j → %i", (requested, size) => {
    expect(pageSizeFor(requested)).toBe(size);
  });
});
