/** The backoff across deliveries: the delay, the queue URL, and RETRY_VISIBILITY_SCHEDULE's parsing. */
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, parseVisibilitySchedule } from "../../lib/config.ts";
import { MAX_RETRY_VISIBILITY_SECONDS, queueUrlFromArn, retryVisibilitySeconds } from "../../lib/visibility.ts";

const SCHEDULE = [15, 60, 240, 900];

describe("retryVisibilitySeconds", () => {
  it.each([
    [1, 15],
    [2, 60],
    [3, 240],
    [4, 900],
    [9, 900],
  ])("on receive %i, draws from 0 to %i s (full jitter)", (receiveCount, ceiling) => {
    expect(retryVisibilitySeconds(receiveCount, SCHEDULE, undefined, () => 0)).toBe(0);
    expect(retryVisibilitySeconds(receiveCount, SCHEDULE, undefined, () => 0.5)).toBe(Math.floor(0.5 * (ceiling + 1)));
    expect(retryVisibilitySeconds(receiveCount, SCHEDULE, undefined, () => 0.999999)).toBe(ceiling);
  });

  it("waits for SCM's Retry-After when it is longer than the draw, rounded up to whole seconds", () => {
    expect(retryVisibilitySeconds(1, SCHEDULE, 100_500, () => 0.5)).toBe(101);
    expect(retryVisibilitySeconds(4, SCHEDULE, 2_000, () => 0.5)).toBe(450);
  });

  it("stays inside SQS's 12-hour limit", () => {
    expect(retryVisibilitySeconds(1, [43_200], 90_000_000, () => 0.999999)).toBe(MAX_RETRY_VISIBILITY_SECONDS);
  });
});

describe("queueUrlFromArn", () => {
  it("builds the AWS queue URL from the ARN", () => {
    expect(queueUrlFromArn("arn:aws:sqs:eu-west-1:123456789012:scm-withdraw-dev-withdrawals")).toBe(
      "https://sqs.eu-west-1.amazonaws.com/123456789012/scm-withdraw-dev-withdrawals",
    );
    expect(queueUrlFromArn("arn:aws-cn:sqs:cn-north-1:123456789012:q")).toBe(
      "https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q",
    );
  });

  it("follows the DLQ URL's origin for the same account and region, or a local emulator", () => {
    const dlqUrl = "http://sqs.eu-west-1.localhost:9324/000000000000/withdrawals-dlq";
    const arn = "arn:aws:sqs:eu-west-1:000000000000:withdrawals";
    expect(queueUrlFromArn(arn, { dlqUrl })).toBe("http://sqs.eu-west-1.localhost:9324/000000000000/withdrawals");
    const local = { dlqUrl: "http://127.0.0.1:9324/000000000000/dlq", sqsEndpointOverridden: true };
    expect(queueUrlFromArn(arn, local)).toBe("http://127.0.0.1:9324/000000000000/withdrawals");
    // Another account: the DLQ says nothing about the source queue.
    expect(queueUrlFromArn("arn:aws:sqs:eu-west-1:111111111111:q", { dlqUrl })).toBe(
      "https://sqs.eu-west-1.amazonaws.com/111111111111/q",
    );
  });

  it.each([undefined, "", "arn:aws:sns:eu-west-1:123456789012:t", "arn:aws:sqs:eu-west-1:123:q", "withdrawals"])(
    "gives up on %j",
    (arn) => {
      expect(queueUrlFromArn(arn)).toBeUndefined();
    },
  );
});

describe("RETRY_VISIBILITY_SCHEDULE", () => {
  const base = {
    SCM_ENDPOINT: "https://scm.ap-southeast-1.myhuaweicloud.com",
    SCM_TOKEN_SECRET_ID: "scm-withdraw/token",
    WITHDRAWAL_DLQ_URL: "https://sqs.eu-west-1.amazonaws.com/123456789012/withdrawals-dlq",
  };

  it("defaults to 15s, 1m, 4m, 15m", () => {
    expect(loadConfig(base).retryVisibilitySchedule).toEqual([15, 60, 240, 900]);
  });

  it.each([
    ["30,2m,1h", [30, 120, 3600]],
    ["0s", [0]],
    ["off", []],
    [" 5s , 10s ", [5, 10]],
    ["12h", [43_200]],
  ])("reads %j", (text, seconds) => {
    expect(parseVisibilitySchedule(text)).toEqual(seconds);
    expect(loadConfig({ ...base, RETRY_VISIBILITY_SCHEDULE: text }).retryVisibilitySchedule).toEqual(seconds);
  });

  it.each(["13h", "5x", "1.5m", "-1", "1m,,2m", "soon"])("refuses %j naming the variable", (text) => {
    expect(parseVisibilitySchedule(text)).toBeUndefined();
    expect(() => loadConfig({ ...base, RETRY_VISIBILITY_SCHEDULE: text })).toThrow(ConfigError);
    expect(() => loadConfig({ ...base, RETRY_VISIBILITY_SCHEDULE: text })).toThrow(
      /RETRY_VISIBILITY_SCHEDULE must be "off" or/,
    );
  });
});
