import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../lib/config.ts";

const valid = {
  SCM_ENDPOINT: "https://scm.ap-southeast-1.myhuaweicloud.com",
  SCM_TOKEN_SECRET_ID: "scm-withdraw/token",
  WITHDRAWAL_DLQ_URL: "https://sqs.eu-west-1.amazonaws.com/123456789012/withdrawals-dlq",
};

function problemsOf(env: Record<string, string>) {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems.map((p) => p.variable);
  }
  throw new Error("expected a ConfigError");
}

describe("loadConfig", () => {
  it("applies the documented defaults", () => {
    const config = loadConfig(valid);
    expect(config).toMatchObject({
      maxAttempts: 3,
      retryBaseDelayMs: 200,
      retryMaxDelayMs: 5000,
      scmTimeoutMs: 10_000,
      maxReceiveCount: 5,
      batchConcurrency: 10,
      tokenCacheTtlMs: 300_000,
      scmMaxRps: undefined,
      scmRateLimit: "adaptive",
      logLevel: "info",
      alreadyWithdrawnStatuses: ["PAID", "CANCELCHECKING"],
    });
  });

  it("reads SCM_RATE_LIMIT: adaptive (default) or fixed", () => {
    expect(loadConfig({ ...valid, SCM_RATE_LIMIT: "fixed", SCM_MAX_RPS: "4" })).toMatchObject({
      scmRateLimit: "fixed",
      scmMaxRps: 4,
    });
    expect(problemsOf({ ...valid, SCM_RATE_LIMIT: "static" })).toEqual(["SCM_RATE_LIMIT"]);
  });

  it("names every bad variable in one error", () => {
    expect(problemsOf({ MAX_ATTEMPTS: "three", BATCH_CONCURRENCY: "0", LOG_LEVEL: "loud" }).sort()).toEqual(
      [
        "BATCH_CONCURRENCY",
        "LOG_LEVEL",
        "MAX_ATTEMPTS",
        "SCM_ENDPOINT",
        "SCM_TOKEN_SECRET_ID",
        "WITHDRAWAL_DLQ_URL",
      ].sort(),
    );
  });

  it("accepts LOG_LEVEL in any case, as Powertools and Lambda spell it (DEBUG)", () => {
    for (const [given, level] of [
      ["DEBUG", "debug"],
      ["Info", "info"],
      [" WARN ", "warn"],
      ["error", "error"],
    ] as const) {
      expect(loadConfig({ ...valid, LOG_LEVEL: given }).logLevel).toBe(level);
    }
    expect(() => loadConfig({ ...valid, LOG_LEVEL: "LOUD" })).toThrow(
      "LOG_LEVEL must be one of debug, info, warn, error (any case)",
    );
  });

  it("honours Lambda's AWS_LAMBDA_LOG_LEVEL when LOG_LEVEL is unset, and LOG_LEVEL when both are set", () => {
    const levels = {
      TRACE: "debug",
      DEBUG: "debug",
      INFO: "info",
      WARN: "warn",
      ERROR: "error",
      FATAL: "error",
    } as const;
    for (const [lambda, level] of Object.entries(levels))
      expect(loadConfig({ ...valid, AWS_LAMBDA_LOG_LEVEL: lambda }).logLevel).toBe(level);
    expect(loadConfig({ ...valid, AWS_LAMBDA_LOG_LEVEL: "DEBUG", LOG_LEVEL: "error" }).logLevel).toBe("error");
    expect(loadConfig({ ...valid, AWS_LAMBDA_LOG_LEVEL: "DEBUG", LOG_LEVEL: "" }).logLevel).toBe("debug");
    // Not one of Lambda's levels: ignored (the default), never an error about a variable the user did not set.
    expect(loadConfig({ ...valid, AWS_LAMBDA_LOG_LEVEL: "VERBOSE" }).logLevel).toBe("info");
  });

  it("says what was wrong and what was given", () => {
    expect(() => loadConfig({ ...valid, MAX_ATTEMPTS: "three" })).toThrow(
      'MAX_ATTEMPTS must be an integer from 1 to 10 (got "three")',
    );
  });

  it("refuses plain http to anything but loopback", () => {
    expect(problemsOf({ ...valid, SCM_ENDPOINT: "http://scm.example.com" })).toEqual(["SCM_ENDPOINT"]);
    expect(problemsOf({ ...valid, SCM_ENDPOINT: "http://10.0.0.5:8080" })).toEqual(["SCM_ENDPOINT"]);
    expect(loadConfig({ ...valid, SCM_ENDPOINT: "http://127.0.0.1:4580/" }).scmEndpoint).toBe("http://127.0.0.1:4580");
    expect(loadConfig({ ...valid, SCM_ENDPOINT: "http://localhost:4580" }).scmEndpoint).toBe("http://localhost:4580");
  });

  it("never quotes the credentials of a URL it refuses (SCM_ENDPOINT=https://admin:S3cretPassw0rd@...)", () => {
    let error: unknown;
    try {
      loadConfig({
        ...valid,
        SCM_ENDPOINT: "https://admin:S3cretPassw0rd@scm.example.com",
        IAM_ENDPOINT: "https://bot:p%40ss%2Fw0rd@iam.example.com/x",
      });
    } catch (thrown) {
      error = thrown;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const text = `${(error as ConfigError).message} ${JSON.stringify((error as ConfigError).problems)}`;
    for (const secret of ["S3cretPassw0rd", "admin", "p%40ss", "bot:"]) expect(text).not.toContain(secret);
    expect((error as ConfigError).message).toContain('(got "https://[redacted]@scm.example.com")');
  });

  it("refuses endpoints with credentials or queries", () => {
    expect(problemsOf({ ...valid, SCM_ENDPOINT: "https://user:pw@scm.example.com" })).toEqual(["SCM_ENDPOINT"]);
    expect(problemsOf({ ...valid, SCM_ENDPOINT: "https://scm.example.com?x=1" })).toEqual(["SCM_ENDPOINT"]);
  });

  it("treats an empty variable as unset", () => {
    expect(loadConfig({ ...valid, MAX_ATTEMPTS: "", SCM_MAX_RPS: "" })).toMatchObject({
      maxAttempts: 3,
      scmMaxRps: undefined,
    });
  });

  it("reads the optional rate limit and status list", () => {
    expect(loadConfig({ ...valid, SCM_MAX_RPS: "2.5", ALREADY_WITHDRAWN_STATUSES: "PAID,REVOKED" })).toMatchObject({
      scmMaxRps: 2.5,
      alreadyWithdrawnStatuses: ["PAID", "REVOKED"],
    });
    expect(problemsOf({ ...valid, SCM_MAX_RPS: "0" })).toEqual(["SCM_MAX_RPS"]);
  });

  it("rejects a backoff cap below its base", () => {
    expect(problemsOf({ ...valid, RETRY_BASE_DELAY_MS: "1000", RETRY_MAX_DELAY_MS: "500" })).toEqual([
      "RETRY_MAX_DELAY_MS",
    ]);
  });

  it("notices an SDK endpoint override for SQS", () => {
    expect(loadConfig(valid).sqsEndpointOverridden).toBe(false);
    expect(loadConfig({ ...valid, AWS_ENDPOINT_URL_SQS: "http://127.0.0.1:4566" }).sqsEndpointOverridden).toBe(true);
  });
});
