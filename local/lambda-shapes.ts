/**
 * Lambda-shaped values, one factory each for the local runner's containers, the bench and the tests:
 * a context whose `getRemainingTimeInMillis` counts down to the function's timeout, and SQS records
 * as the event source mapping hands them over (`toLambdaRecord` in runner.ts converts received ones).
 */
import type { Context, SQSEvent, SQSRecord } from "aws-lambda";
import { createHash, randomUUID } from "node:crypto";

export interface LambdaContextOptions {
  functionName: string;
  /** When the function times out (ms since the epoch). */
  deadline: number;
  /** Default `eu-west-1`. */
  region?: string;
  /** Default: a fresh UUID. */
  requestId?: string;
  memoryLimitInMB?: number;
  /** Default `local`. */
  logStreamName?: string;
}

export function lambdaContext(options: LambdaContextOptions): Context {
  const region = options.region ?? "eu-west-1";
  const arn = `arn:aws:lambda:${region}:000000000000:function:${options.functionName}`;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: options.functionName,
    functionVersion: "$LATEST",
    invokedFunctionArn: arn,
    memoryLimitInMB: String(options.memoryLimitInMB ?? 512),
    awsRequestId: options.requestId ?? randomUUID(),
    logGroupName: `/aws/lambda/${options.functionName}`,
    logStreamName: options.logStreamName ?? "local",
    getRemainingTimeInMillis: () => Math.max(0, options.deadline - Date.now()),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}

/** A record with `body` (an object is sent as JSON), received `receiveCount` times (default 1). */
export function sqsRecord(
  body: string | object,
  options: { messageId?: string; receiveCount?: number } = {},
): SQSRecord {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  const now = Date.now();
  return {
    messageId: options.messageId ?? randomUUID(),
    receiptHandle: `rh-${randomUUID()}`,
    body: text,
    attributes: {
      ApproximateReceiveCount: String(options.receiveCount ?? 1),
      SentTimestamp: String(now - 1000),
      SenderId: "AIDAEXAMPLE",
      ApproximateFirstReceiveTimestamp: String(now),
    },
    messageAttributes: {},
    md5OfBody: createHash("md5").update(text).digest("hex"),
    eventSource: "aws:sqs",
    eventSourceARN: "arn:aws:sqs:eu-west-1:000000000000:withdrawals",
    awsRegion: "eu-west-1",
  };
}

export function sqsEvent(...records: SQSRecord[]): SQSEvent {
  return { Records: records };
}
