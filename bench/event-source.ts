/**
 * A model of Lambda's SQS event source mapping, for the throttling comparison: one poller per
 * container (the mapping's `maximumConcurrency`), each receiving up to 10 messages (long polling),
 * invoking its container with them, then deleting the records the function did not hand back in
 * `batchItemFailures` (all of them when it threw). Handed-back records stay invisible until the
 * queue's visibility timeout, then come again with `ApproximateReceiveCount` one higher, as in AWS.
 */
import { DeleteMessageBatchCommand, ReceiveMessageCommand, type Message, type SQSClient } from "@aws-sdk/client-sqs";
import type { SQSEvent, SQSRecord } from "aws-lambda";
import { createHash } from "node:crypto";
import { failedIds, type Container } from "./containers.ts";

export interface EventSourceOptions {
  sqs: SQSClient;
  queueUrl: string;
  /** One poller per container: `maximumConcurrency` = containers.length. */
  containers: readonly Container[];
  /** Stop once this many distinct messages were acknowledged (deleted). */
  expected: number;
  /** ... or after this long. */
  timeoutMs: number;
  batchSize?: number;
  /** The function timeout each invocation gets (its context's remaining time). */
  functionTimeoutMs?: number;
}

export interface EventSourceResult {
  /** From the first receive to the last acknowledgement (or the timeout). */
  elapsedMs: number;
  acknowledged: number;
  invocations: number;
  /** Records handed back (batchItemFailures), counting each time. */
  handedBack: number;
  timedOut: boolean;
}

function toRecord(message: Message, queueUrl: string): SQSRecord {
  const attributes = message.Attributes ?? {};
  const name = queueUrl.split("/").pop() ?? "queue";
  return {
    messageId: message.MessageId!,
    receiptHandle: message.ReceiptHandle!,
    body: message.Body ?? "",
    attributes: {
      ApproximateReceiveCount: attributes.ApproximateReceiveCount ?? "1",
      SentTimestamp: attributes.SentTimestamp ?? String(Date.now()),
      SenderId: attributes.SenderId ?? "AIDAEXAMPLE",
      ApproximateFirstReceiveTimestamp: attributes.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
    },
    messageAttributes: {},
    md5OfBody: message.MD5OfBody ?? createHash("md5").update(message.Body ?? "").digest("hex"),
    eventSource: "aws:sqs",
    eventSourceARN: `arn:aws:sqs:eu-west-1:000000000000:${name}`,
    awsRegion: "eu-west-1",
  };
}

export async function runEventSource(options: EventSourceOptions): Promise<EventSourceResult> {
  const { sqs, queueUrl, expected } = options;
  const acknowledged = new Set<string>();
  const started = performance.now();
  let lastAck = started;
  let invocations = 0;
  let handedBack = 0;
  const finished = () => acknowledged.size >= expected || performance.now() - started >= options.timeoutMs;

  const poller = async (container: Container) => {
    while (!finished()) {
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: options.batchSize ?? 10, WaitTimeSeconds: 1, MessageSystemAttributeNames: ["All"] }),
      );
      if (Messages.length === 0) continue;
      const event: SQSEvent = { Records: Messages.map((m) => toRecord(m, queueUrl)) };
      const invocation = await container.invoke(event, options.functionTimeoutMs ?? 60_000);
      invocations++;
      const failed = new Set(failedIds(event, invocation));
      handedBack += failed.size;
      const done = Messages.filter((m) => !failed.has(m.MessageId!));
      if (done.length > 0) {
        await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
        for (const m of done) acknowledged.add(m.MessageId!);
        lastAck = performance.now();
      }
    }
  };
  await Promise.all(options.containers.map(poller));
  const timedOut = acknowledged.size < expected;
  return { elapsedMs: (timedOut ? performance.now() : lastAck) - started, acknowledged: acknowledged.size, invocations, handedBack, timedOut };
}
