/**
 * The package-time configuration check (scripts/serverless-check-config.mjs): the handlers' own schemas
 * over serverless.yml's environment, skipping the values CloudFormation fills in at deploy time.
 * The real `serverless package` refusing a bad parameter is in test/integration/serverless-package.test.ts.
 */
import { describe, expect, it } from "vitest";
import { loadCleanupConfig } from "../../lib/cleanup-config.ts";
import { loadConfig } from "../../lib/config.ts";
import { configProblems } from "../../scripts/serverless-check-config.mjs";

const worker = {
  SCM_ENDPOINT: "https://scm.ap-southeast-1.myhuaweicloud.com",
  SCM_TOKEN_SECRET_ID: "scm-withdraw/token",
  WITHDRAWAL_DLQ_URL: { Ref: "WithdrawalsDlq" },
  MAX_ATTEMPTS: "3",
  LOG_LEVEL: "DEBUG",
};

describe("configProblems", () => {
  it("accepts what the handler accepts, whatever CloudFormation fills in later", () => {
    expect(configProblems(loadConfig, worker)).toEqual([]);
    expect(
      configProblems(loadCleanupConfig, {
        ...worker,
        CLEANUP_MODE: "dry-run",
        WITHDRAWAL_QUEUE_URL: { Ref: "WithdrawalsQueue" },
      }),
    ).toEqual([]);
  });

  it("reports what the handler would refuse, in the handler's words", () => {
    expect(
      configProblems(loadConfig, { ...worker, LOG_LEVEL: "loud", SCM_ENDPOINT: "http://scm.example.com" }),
    ).toEqual([
      'SCM_ENDPOINT must be an https:// URL (http:// only for loopback hosts), without credentials, query or fragment (got "http://scm.example.com")',
      'LOG_LEVEL must be one of debug, info, warn, error (any case) (got "loud")',
    ]);
    expect(configProblems(loadCleanupConfig, { ...worker, CLEANUP_MAX_JOBS: 0 })).toEqual([
      'CLEANUP_MAX_JOBS must be an integer from 1 to 10000 (got "0")',
    ]);
  });

  it("still reports a required variable that is missing, but not one left to CloudFormation", () => {
    const { SCM_TOKEN_SECRET_ID: _, ...withoutSecret } = worker;
    expect(configProblems(loadConfig, withoutSecret)).toEqual(["SCM_TOKEN_SECRET_ID is required"]);
  });

  it("rethrows anything that is not a configuration error", () => {
    expect(() =>
      configProblems(() => {
        throw new TypeError("bug");
      }, worker),
    ).toThrow("bug");
  });
});
