/**
 * The local event-source runner leaves a failed record's visibility to the function: after an
 * invocation that delayed its failed record (as the worker does with RETRY_VISIBILITY_SCHEDULE), the
 * runner's own extensions (every half visibility timeout while the batch runs) never shorten it.
 */
import {
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  GetQueueAttributesCommand,
  SendMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import type { SQSEvent } from "aws-lambda";
import { buildApp } from "fauxqs";
import type { AddressInfo } from "node:net";
import { expect, it, vi } from "vitest";
import { createEventSourceRunner, type InvocationReport } from "../../local/runner.ts";

it("does not bring back early a record the function delayed, even after extending it during a long invocation", async () => {
  const app = buildApp({ logger: false });
  await app.listen({ port: 0, host: "127.0.0.1" });
  const endpoint = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const sqs = new SQSClient({
    endpoint,
    region: "eu-west-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
  });
  const attributes = { VisibilityTimeout: "1" };
  const queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: "runner-visibility", Attributes: attributes })))
    .QueueUrl!;
  const arn = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["QueueArn"] }));
  const reports: InvocationReport[] = [];
  const invoke = async (event: SQSEvent) => {
    const [record] = event.Records;
    // Longer than half the visibility timeout: the runner extends the batch at least once meanwhile.
    await new Promise((resolve) => setTimeout(resolve, 700));
    await sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: queueUrl,
        ReceiptHandle: record!.receiptHandle,
        VisibilityTimeout: 3,
      }),
    );
    return { batchItemFailures: [{ itemIdentifier: record!.messageId }] };
  };
  const runner = createEventSourceRunner({
    sqs,
    queueUrl,
    queueArn: arn.Attributes!.QueueArn!,
    region: "eu-west-1",
    invoke,
    visibilityTimeoutSeconds: 1,
    maxConcurrency: 1,
    onInvocation: (r) => reports.push(r),
  });
  try {
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: "{}" }));
    runner.start();
    await vi.waitFor(() => expect(reports).toHaveLength(1), { timeout: 10_000, interval: 50 });
    const firstEnded = Date.now();
    await vi.waitFor(() => expect(reports).toHaveLength(2), { timeout: 10_000, interval: 50 });
    // Back after the function's 3 s, not the queue's 1 s.
    expect(Date.now() - firstEnded).toBeGreaterThanOrEqual(2_500);
    expect(reports[1]!.receiveCounts).toEqual([2]);
  } finally {
    await runner.stop();
    sqs.destroy();
    await app.close();
  }
});
