/** Factories for Lambda-shaped SQS events and contexts. */
import { createHash, randomUUID } from "node:crypto";
import type { Context, SQSEvent, SQSRecord } from "aws-lambda";
import { lambdaContext as localLambdaContext } from "../../local/lambda-context.ts";

export function sqsRecord(body: string | object, options: { messageId?: string; receiveCount?: number } = {}): SQSRecord {
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

/** A Lambda-like context whose remaining time counts down from `timeoutMs`. */
export function lambdaContext(timeoutMs = 30_000): Context {
  return localLambdaContext({
    functionName: "scm-withdraw-dev-withdraw",
    deadline: Date.now() + timeoutMs,
    logStreamName: "stream",
  });
}
