/**
 * Backoff across deliveries through the real handler and fauxqs: a record left for retry is hidden
 * for the delay the worker chose (SQS ChangeMessageVisibilityBatch on its own queue, found from its
 * eventSourceARN), and a failed change changes no outcome.
 */
import { GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import type { SQSRecord } from "aws-lambda";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { DEMO } from "../../local/demo-certificates.ts";
import { toLambdaRecord } from "../../local/runner.ts";
import { faults, seedDemoScenario } from "../../local/scm-simulator.ts";
import { lambdaContext, sqsEvent, sqsRecord } from "../support/lambda.ts";
import { capturedOutput, jsonLinesSince } from "../support/secret-guard.ts";
import { TEST_TOKEN } from "../support/secrets.ts";
import { SECRET_ID, startStack, type Stack } from "../support/stack.ts";
import { drain } from "../support/sqs.ts";
import { coldStartWithdraw, restoreEnv } from "../support/withdraw-handler.ts";

let stack: Stack;
let queueArn: string;
const coldStart = (env: Record<string, string>) => coldStartWithdraw({ ...stack.env, ...env });

/** Sends a job to the real queue and receives it, as Lambda's event source would hand it over. */
async function receivedRecord(certificateId: string): Promise<SQSRecord> {
  await stack.sqs.send(
    new SendMessageCommand({
      QueueUrl: stack.queueUrl,
      MessageBody: JSON.stringify({ certificate_id: certificateId }),
    }),
  );
  const { Messages = [] } = await stack.sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: stack.queueUrl,
      MessageSystemAttributeNames: ["All"],
      VisibilityTimeout: 30,
      WaitTimeSeconds: 1,
    }),
  );
  expect(Messages).toHaveLength(1);
  return toLambdaRecord(Messages[0]!, queueArn, "eu-west-1");
}

/** When fauxqs will make each in-flight message of the queue visible again (ms since the epoch). */
async function visibilityDeadlines(): Promise<number[]> {
  const response = await fetch(`${stack.sqsEndpoint}/_fauxqs/queues/withdrawals`);
  const { messages } = (await response.json()) as { messages: { inflight: { visibilityDeadline: number }[] } };
  return messages.inflight.map((m) => m.visibilityDeadline);
}

beforeAll(async () => {
  stack = await startStack();
  const { Attributes } = await stack.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: stack.queueUrl, AttributeNames: ["QueueArn"] }),
  );
  queueArn = Attributes!.QueueArn!;
});
afterAll(async () => {
  restoreEnv();
  await stack.close();
});
beforeEach(async () => {
  stack.sim.reset({ certificates: true });
  seedDemoScenario(stack.sim);
  stack.secrets.setSecret(SECRET_ID, TEST_TOKEN);
  await drain(stack.sqs, stack.queueUrl);
});

describe("a record left for retry", () => {
  it("is hidden until SCM's Retry-After when that is longer than the schedule's draw", async () => {
    const handler = await coldStart({ RETRY_VISIBILITY_SCHEDULE: "2s" });
    stack.sim.injectAlways(DEMO.withdrawn, faults.throttle(120));
    const record = await receivedRecord(DEMO.withdrawn);
    const mark = capturedOutput().length;
    const before = Date.now();
    const response = await handler(sqsEvent(record), lambdaContext(5000));
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: record.messageId }]);
    expect(jsonLinesSince(mark).find((l) => l.event === "retry_delayed")).toMatchObject({
      messageId: record.messageId,
      visibilityTimeoutS: 120,
    });
    const [deadline] = await visibilityDeadlines();
    expect(deadline! - before).toBeGreaterThanOrEqual(119_000);
    expect(deadline! - Date.now()).toBeLessThanOrEqual(120_000);
  });

  it("comes back at once with a schedule of 0 s, and keeps the queue's timeout with the schedule off", async () => {
    stack.sim.injectAlways(DEMO.withdrawn, faults.unavailable());
    const now = await coldStart({ RETRY_VISIBILITY_SCHEDULE: "0s" });
    const first = await receivedRecord(DEMO.withdrawn);
    expect((await now(sqsEvent(first), lambdaContext())).batchItemFailures).toHaveLength(1);
    const again = await stack.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: stack.queueUrl, MessageSystemAttributeNames: ["All"], WaitTimeSeconds: 1 }),
    );
    expect(again.Messages?.map((m) => m.Attributes?.ApproximateReceiveCount)).toEqual(["2"]);
    await drain(stack.sqs, stack.queueUrl);

    const off = await coldStart({ RETRY_VISIBILITY_SCHEDULE: "off" });
    const second = await receivedRecord(DEMO.withdrawn);
    const mark = capturedOutput().length;
    expect((await off(sqsEvent(second), lambdaContext())).batchItemFailures).toHaveLength(1);
    const [deadline] = await visibilityDeadlines();
    expect(deadline! - Date.now()).toBeGreaterThan(25_000); // the receive's 30 s, untouched
    expect(jsonLinesSince(mark).map((l) => l.event)).not.toContain("retry_delayed");
  });

  it("keeps its outcome when the change fails (an unknown receipt handle), logged and counted", async () => {
    const handler = await coldStart({ RETRY_VISIBILITY_SCHEDULE: "1m" });
    stack.sim.injectAlways(DEMO.withdrawn, faults.unavailable());
    const record = sqsRecord({ certificate_id: DEMO.withdrawn }, { receiveCount: 1 });
    record.eventSourceARN = queueArn;
    const mark = capturedOutput().length;
    const response = await handler(sqsEvent(record), lambdaContext());
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: record.messageId }]);
    const lines = jsonLinesSince(mark);
    expect(lines.find((l) => l.event === "visibility_change_failed")).toMatchObject({
      messageId: record.messageId,
      error: "ReceiptHandleIsInvalid",
    });
    expect(lines.find((l) => typeof l.VisibilityChangeFailed === "number")).toMatchObject({
      VisibilityChangeFailed: 1,
      LeftForRetry: 1,
    });
  });
});
