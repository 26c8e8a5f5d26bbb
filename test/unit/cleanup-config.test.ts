import { describe, expect, it } from "vitest";
import { ConfigError } from "../../lib/config.ts";
import {
  DEFAULT_CLEANUP_REASON,
  loadCleanupConfig,
  parseCleanupFilters,
  parseMinAge,
} from "../../lib/cleanup-config.ts";

const valid = {
  SCM_ENDPOINT: "https://scm.ap-southeast-1.myhuaweicloud.com",
  SCM_TOKEN_SECRET_ID: "scm-withdraw/token",
};

function problemsOf(env: Record<string, string>) {
  try {
    loadCleanupConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems.map((p) => p.variable);
  }
  throw new Error("expected a ConfigError");
}

describe("loadCleanupConfig", () => {
  it("is a dry run over the review statuses by default, with a cap of 100", () => {
    const config = loadCleanupConfig(valid);
    expect(config).toMatchObject({
      mode: "dry-run",
      offsetMode: "auto",
      queueUrl: undefined,
      maxAttempts: 3,
      deadlineMarginMs: 10_000,
    });
    expect(config.filters).toEqual({
      statuses: ["CHECKING", "CHECKING_ORG", "SUPPLEMENTCHECKING"],
      content: undefined,
      exclude: new Set(),
      maxJobs: 100,
      reason: DEFAULT_CLEANUP_REASON,
    });
  });

  it("reads LOG_LEVEL in any case, else Lambda's AWS_LAMBDA_LOG_LEVEL, like the worker", () => {
    expect(loadCleanupConfig({ ...valid, LOG_LEVEL: "DEBUG" }).logLevel).toBe("debug");
    expect(loadCleanupConfig({ ...valid, AWS_LAMBDA_LOG_LEVEL: "WARN" }).logLevel).toBe("warn");
    expect(problemsOf({ ...valid, LOG_LEVEL: "LOUD" })).toEqual(["LOG_LEVEL"]);
  });

  it("reads every filter", () => {
    const config = loadCleanupConfig({
      ...valid,
      CLEANUP_MODE: "enqueue",
      WITHDRAWAL_QUEUE_URL: "https://sqs.eu-west-1.amazonaws.com/123456789012/scm-withdraw-prod-withdrawals",
      CLEANUP_STATUSES: "checking, CHECKING_ORG",
      CLEANUP_CONTENT: " example.com ",
      CLEANUP_EXCLUDE: "scs1481110651012,scs1481110651013 scs1481110651012",
      CLEANUP_MAX_JOBS: "25",
      CLEANUP_REASON: "stale",
      CLEANUP_OFFSET_MODE: "pages",
    });
    expect(config.mode).toBe("enqueue");
    expect(config.offsetMode).toBe("pages");
    expect(config.filters).toEqual({
      statuses: ["CHECKING", "CHECKING_ORG"],
      content: "example.com",
      exclude: new Set(["scs1481110651012", "scs1481110651013"]),
      maxJobs: 25,
      reason: "stale",
    });
  });

  it("names every bad variable in one error", () => {
    expect(
      problemsOf({
        CLEANUP_MODE: "on",
        CLEANUP_STATUSES: "ISSUED",
        CLEANUP_EXCLUDE: "nope",
        CLEANUP_MAX_JOBS: "1e3",
        CLEANUP_REASON: "x".repeat(300),
        CLEANUP_OFFSET_MODE: "rows",
      }).sort(),
    ).toEqual([
      "CLEANUP_EXCLUDE",
      "CLEANUP_MAX_JOBS",
      "CLEANUP_MODE",
      "CLEANUP_OFFSET_MODE",
      "CLEANUP_REASON",
      "CLEANUP_STATUSES",
      "SCM_ENDPOINT",
      "SCM_TOKEN_SECRET_ID",
    ]);
  });

  it("reads CLEANUP_MIN_AGE as minutes, hours or days, and needs the ledger for it", () => {
    expect(loadCleanupConfig(valid).minAgeMs).toBeUndefined();
    expect(loadCleanupConfig({ ...valid, LEDGER_TABLE: "ledger", CLEANUP_MIN_AGE: "7d" }).minAgeMs).toBe(
      7 * 86_400_000,
    );
    expect(problemsOf({ ...valid, CLEANUP_MIN_AGE: "7d" })).toEqual(["CLEANUP_MIN_AGE"]);
    for (const bad of ["7", "7w", "0h", "1.5d", "-1d", "366d", "d"])
      expect(problemsOf({ ...valid, LEDGER_TABLE: "ledger", CLEANUP_MIN_AGE: bad }), bad).toEqual(["CLEANUP_MIN_AGE"]);
  });

  it.each([
    ["90m", 90 * 60_000],
    ["36h", 36 * 3_600_000],
    ["7d", 7 * 86_400_000],
    [" 2D ", 2 * 86_400_000],
    ["1m", 60_000],
    ["365d", 365 * 86_400_000],
    ["59s", undefined],
    ["", undefined],
  ])("parseMinAge(%j) = %j", (text, ms) => {
    expect(parseMinAge(text)).toBe(ms);
  });

  it("needs the queue only to enqueue", () => {
    expect(problemsOf({ ...valid, CLEANUP_MODE: "enqueue" })).toEqual(["WITHDRAWAL_QUEUE_URL"]);
    expect(() => loadCleanupConfig({ ...valid, CLEANUP_MODE: "enqueue" })).toThrow(
      "WITHDRAWAL_QUEUE_URL is required when CLEANUP_MODE is enqueue",
    );
    expect(loadCleanupConfig({ ...valid, CLEANUP_MODE: "off" }).mode).toBe("off");
  });

  it("treats an empty variable as unset", () => {
    expect(loadCleanupConfig({ ...valid, CLEANUP_MODE: "", CLEANUP_MAX_JOBS: " " })).toMatchObject({
      mode: "dry-run",
      filters: { maxJobs: 100 },
    });
  });
});

describe("parseCleanupFilters", () => {
  it("blames the flag names it is given", () => {
    const { problems } = parseCleanupFilters(
      { statuses: "PAID", maxJobs: "0" },
      { statuses: "--status", content: "--content", exclude: "--exclude", maxJobs: "--max", reason: "--reason" },
    );
    expect(problems.map((p) => p.variable)).toEqual(["--status", "--max"]);
    expect(problems[0]!.message).toBe(
      "must list statuses with an application under review (CHECKING, CHECKING_ORG, SUPPLEMENTCHECKING); PAID cannot be withdrawn",
    );
  });

  it("reads an exclude file with comments and blank lines, and refuses a malformed id", () => {
    const file =
      "# customers who asked to keep theirs\nscs1481110651012  # ACME\n\nscs1481110651013,scs1481110651014\n";
    expect([...parseCleanupFilters({ exclude: file }).filters.exclude]).toEqual([
      "scs1481110651012",
      "scs1481110651013",
      "scs1481110651014",
    ]);
    expect(parseCleanupFilters({ exclude: "scs148111065101" }).problems[0]!.message).toBe(
      'has ids that are not 16 characters A-Z, a-z, 0-9: "scs148111065101"',
    );
  });
});
