/** Where the CLI sends: queue URLs, endpoint and region from flags and environment, and SQS errors as one line. */
import { describe, expect, it } from "vitest";
import { UsageError } from "../../lib/errors.ts";
import { explainSqsError, resolveTarget, type Target } from "../../cli/context.ts";
import { cli } from "../support/cli.ts";

const AWS_QUEUE = "https://sqs.ap-southeast-1.amazonaws.com/123456789012/scm-withdraw-prod-withdrawals";

describe("resolveTarget", () => {
  it("defaults to the local pipeline: fauxqs URLs, sent to 127.0.0.1", () => {
    expect(resolveTarget({}, {})).toEqual({
      queueUrl: "http://sqs.eu-west-1.localhost:9324/000000000000/withdrawals",
      dlqUrl: "http://sqs.eu-west-1.localhost:9324/000000000000/withdrawals-dlq",
      endpoint: "http://127.0.0.1:9324",
      region: "eu-west-1",
      local: true,
    });
  });

  it("leaves a real AWS queue to the SDK: no endpoint, region from the URL, DLQ from the redrive policy later", () => {
    expect(resolveTarget({ "queue-url": AWS_QUEUE }, {})).toEqual({
      queueUrl: AWS_QUEUE,
      dlqUrl: undefined,
      endpoint: undefined,
      region: "ap-southeast-1",
      local: false,
    });
  });

  it("prefers --region, then AWS_REGION, to the URL's region", () => {
    expect(resolveTarget({ "queue-url": AWS_QUEUE }, { AWS_REGION: "eu-west-1" }).region).toBe("eu-west-1");
    expect(resolveTarget({ "queue-url": AWS_QUEUE, region: "us-east-1" }, { AWS_REGION: "eu-west-1" }).region).toBe(
      "us-east-1",
    );
  });

  it("honours AWS_ENDPOINT_URL_SQS, and --endpoint-url over it", () => {
    expect(resolveTarget({ "queue-url": AWS_QUEUE }, { AWS_ENDPOINT_URL_SQS: "http://127.0.0.1:4566" })).toMatchObject({
      endpoint: "http://127.0.0.1:4566",
      local: true,
    });
    expect(
      resolveTarget(
        { "queue-url": AWS_QUEUE, "endpoint-url": "https://sqs-fips.us-east-1.amazonaws.com" },
        { AWS_ENDPOINT_URL_SQS: "http://127.0.0.1:4566" },
      ),
    ).toMatchObject({
      endpoint: "https://sqs-fips.us-east-1.amazonaws.com",
      local: false,
    });
  });

  it("takes WITHDRAWAL_QUEUE_URL / WITHDRAWAL_DLQ_URL from the environment, flags first", () => {
    const env = { WITHDRAWAL_QUEUE_URL: AWS_QUEUE, WITHDRAWAL_DLQ_URL: `${AWS_QUEUE}-dlq` };
    expect(resolveTarget({}, env)).toMatchObject({ queueUrl: AWS_QUEUE, dlqUrl: `${AWS_QUEUE}-dlq` });
    expect(resolveTarget({ "dlq-url": `${AWS_QUEUE}-other` }, env).dlqUrl).toBe(`${AWS_QUEUE}-other`);
  });

  it("refuses something that is not a queue URL, naming the flag", () => {
    expect(() => resolveTarget({ "queue-url": "withdrawals" }, {})).toThrow(UsageError);
    expect(() => resolveTarget({ "dlq-url": "https://sqs.eu-west-1.amazonaws.com/withdrawals-dlq" }, {})).toThrow(
      /^--dlq-url must be an SQS queue URL/,
    );
    expect(() => resolveTarget({ "endpoint-url": "127.0.0.1:9324" }, {})).toThrow(/^the SQS endpoint must be a URL/);
  });
});

describe("explainSqsError", () => {
  const local: Target = {
    queueUrl: "http://sqs.eu-west-1.localhost:9324/000000000000/withdrawals",
    dlqUrl: undefined,
    endpoint: "http://127.0.0.1:9324",
    region: "eu-west-1",
    local: true,
  };
  const aws: Target = {
    queueUrl: AWS_QUEUE,
    dlqUrl: undefined,
    endpoint: undefined,
    region: "ap-southeast-1",
    local: false,
  };
  const error = (name: string, message = "", extra: Record<string, unknown> = {}) =>
    Object.assign(new Error(message), { name, ...extra });

  it.each([
    [
      local,
      error("Error", "connect ECONNREFUSED 127.0.0.1:9324", { code: "ECONNREFUSED" }),
      "no queue at http://127.0.0.1:9324: start the local pipeline with `npm start`, or pass --queue-url",
    ],
    [
      aws,
      error("Error", "getaddrinfo ENOTFOUND", { code: "ENOTFOUND" }),
      `cannot reach SQS for ${AWS_QUEUE} (ENOTFOUND): check the network, --region and --endpoint-url`,
    ],
    [
      aws,
      error("QueueDoesNotExist", "The specified queue does not exist."),
      `queue does not exist: ${AWS_QUEUE} (check --queue-url, --dlq-url and --region)`,
    ],
    [
      aws,
      error("CredentialsProviderError", "Could not load credentials from any providers"),
      "no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
    ],
    [aws, error("Error", "Region is missing"), "no AWS region: pass --region or set AWS_REGION"],
    [
      aws,
      error("InvalidClientTokenId", "The security token included in the request is invalid."),
      "AWS rejected the credentials (InvalidClientTokenId): The security token included in the request is invalid.",
    ],
    [
      aws,
      error("AccessDenied", "not authorized to perform: sqs:sendmessage"),
      `access denied on ${AWS_QUEUE} (AccessDenied): not authorized to perform: sqs:sendmessage`,
    ],
    [aws, error("OverLimit", "too many in flight"), `SQS call on ${AWS_QUEUE} failed: OverLimit: too many in flight`],
  ])("%#: %s", (target, thrown, line) => {
    expect(explainSqsError(thrown, target, target.queueUrl)).toBe(line);
  });
});

describe("the CLI's error line", () => {
  it.each([
    [
      "--queue-url",
      "https://admin:pa/ss#w0rd99@sqs.eu-west-1.amazonaws.com/123/q",
      "--endpoint-url",
      "http://127.0.0.1:1",
    ],
    ["--queue-url", "http://127.0.0.1:1/000000000000/q", "--endpoint-url", "http://admin:S3cretPassw0rd@127.0.0.1:1"],
    ["--queue-url", "http://127.0.0.1:1/000000000000/q", "--endpoint-url", "http://admin:pa/ss#w0rd99@127.0.0.1:1"],
  ])("never prints the credentials of a URL given as %s %s %s %s", async (...argv) => {
    const run = await cli(["status", ...argv]);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/^scm-withdraw: error: /);
    for (const secret of ["admin", "S3cretPassw0rd", "pa/ss", "w0rd99"]) expect(run.stderr).not.toContain(secret);
  });
});
