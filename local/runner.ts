/**
 * A local event-source runner: feeds an SQS queue to a Lambda-style handler the way Lambda's SQS
 * event source mapping does, so the real `handlers/withdraw.ts` can run on a laptop.
 *
 * What it reproduces (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html):
 * - **Pollers and concurrency.** `maxConcurrency` pollers (bbc's `sqs-consumer`), each running one
 *   batch at a time, like the mapping's maximum concurrency.
 * - **Batch size and batching window.** Up to `batchSize` records per invocation; with a window, the
 *   poller keeps receiving until the batch is full or the window has passed.
 * - **Lambda-shaped records.** `messageId`, `receiptHandle`, `body`, `attributes` (with
 *   `ApproximateReceiveCount`), `messageAttributes` (camelCase, like Lambda), `md5OfBody`,
 *   `eventSource`, `eventSourceARN`, `awsRegion`; and a Lambda-like context whose
 *   `getRemainingTimeInMillis` counts down from the function timeout.
 * - **Partial batch responses** (`ReportBatchItemFailures`): only the records that succeeded are
 *   deleted. Failed records are left alone: they become visible again when their visibility timeout
 *   ends and come back with a higher `ApproximateReceiveCount`; the queue's own redrive policy moves
 *   them to the DLQ at its `maxReceiveCount`. A response Lambda would call invalid (an unknown or
 *   empty `itemIdentifier`, a non-array `batchItemFailures`) fails the whole batch, as Lambda does.
 * - **Errors and timeouts.** If the handler throws, or has not answered within the function timeout,
 *   nothing of the batch is deleted (the `signal` passed to `invoke` is aborted at the timeout, so
 *   the caller can discard the "container", as Lambda does).
 *
 * One deliberate difference: locally the queue's visibility timeout is short (seconds, so a failed
 * record comes back quickly), shorter than a batch may run. Lambda avoids double delivery by asking
 * for a visibility timeout of 6 × the function timeout; here the runner instead extends the
 * visibility of a batch in flight every half visibility timeout, until the invocation ends. So a
 * failed record reappears at most one visibility timeout after its invocation ended, or when the
 * worker asked (it delays records left for retry with ChangeMessageVisibility, RETRY_VISIBILITY_SCHEDULE):
 * once an invocation has ended the runner changes nothing (it waits for its last extension first;
 * sqs-consumer's `terminateVisibilityTimeout` stays off). One race remains: an extension sent between
 * the worker's change and the end of a long invocation (over half the visibility timeout) brings that
 * record back after one visibility timeout instead of the worker's delay.
 *
 * `stop()` stops polling and waits for every batch in flight, including the deletes that follow it:
 * nothing that was processed is left undeleted, and nothing unprocessed is deleted.
 *
 * @module
 */
import {
  ChangeMessageVisibilityBatchCommand,
  ReceiveMessageCommand,
  type Message,
  type MessageSystemAttributeName,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import type { Context, SQSBatchResponse, SQSEvent, SQSMessageAttributes, SQSRecord } from "aws-lambda";
import { randomUUID } from "node:crypto";
import { Consumer } from "sqs-consumer";
import { describeError } from "../lib/errors.ts";
import { sleep } from "../lib/retry.ts";
import { lambdaContext } from "./lambda-shapes.ts";

/** The function the runner invokes: a Lambda SQS handler, plus a signal aborted at the function timeout. */
export type Invoke = (event: SQSEvent, context: Context, signal: AbortSignal) => Promise<unknown>;

export interface RunnerOptions {
  sqs: SQSClient;
  queueUrl: string;
  /** The queue's ARN, for the records' `eventSourceARN`. */
  queueArn: string;
  region: string;
  invoke: Invoke;
  /** The queue's visibility timeout in seconds (the runner extends batches in flight by this much). */
  visibilityTimeoutSeconds: number;
  /** Records per invocation, 1 to 10 (Lambda allows more only with a batching window; SQS returns 10 per receive). Default 10. */
  batchSize?: number;
  /** How long a poller keeps gathering records to fill a batch (Lambda's MaximumBatchingWindowInSeconds, in ms). Default 0. */
  batchingWindowMs?: number;
  /** Batches in flight at once (Lambda's maximum concurrency; its minimum is 2). Default 2. */
  maxConcurrency?: number;
  /** The function timeout in ms: the context counts down from it, and a batch still running then has failed. Default 60 s (as deployed). */
  functionTimeoutMs?: number;
  /** Long-poll wait per receive, 1 to 20 s. Short locally so `stop()` is quick. Default 1. */
  waitTimeSeconds?: number;
  functionName?: string;
  /** Called after every invocation (for progress and statistics). */
  onInvocation?: (report: InvocationReport) => void;
  /** Called for queue errors (receive, delete, visibility changes) and crashed invocations. */
  onError?: (error: Error, where: string) => void;
}

/** How one invocation ended. */
export type InvocationOutcome =
  /** No failures reported: every record was deleted. */
  | "success"
  /** Some records were reported in `batchItemFailures`: the others were deleted. */
  | "partial"
  /** The handler threw: nothing deleted. */
  | "error"
  /** The handler did not answer within the function timeout: nothing deleted. */
  | "timeout"
  /** The response is one Lambda would reject (unknown/empty `itemIdentifier`, bad shape): nothing deleted. */
  | "invalid_response";

export interface InvocationReport {
  requestId: string;
  outcome: InvocationOutcome;
  /** Message ids of the batch, in order. */
  messageIds: string[];
  /** Each record's `ApproximateReceiveCount`, in the same order. */
  receiveCounts: number[];
  /** Message ids acknowledged (then deleted by the poller). */
  succeeded: string[];
  /** Message ids left on the queue for redelivery. */
  failed: string[];
  durationMs: number;
  error?: string;
}

export interface RunnerStats {
  /** Invocations started (`byOutcome` counts the finished ones). */
  invocations: number;
  /** Records handed to the handler (a redelivered record counts again). */
  records: number;
  /** Records handed over with `ApproximateReceiveCount` > 1. */
  redeliveries: number;
  byOutcome: Record<InvocationOutcome, number>;
  /** Batches being gathered or processed now. */
  inFlight: number;
  queueErrors: number;
}

export interface EventSourceRunner {
  start(): void;
  /** Stops polling, then waits for every batch in flight (and its delete) to finish. */
  stop(): Promise<void>;
  /** Batches being gathered or processed now. */
  readonly inFlight: number;
  stats(): RunnerStats;
}

/** The system attributes Lambda puts in `record.attributes` for a standard queue. */
const SYSTEM_ATTRIBUTES: MessageSystemAttributeName[] = [
  "ApproximateReceiveCount",
  "SentTimestamp",
  "SenderId",
  "ApproximateFirstReceiveTimestamp",
  "AWSTraceHeader",
];

export function createEventSourceRunner(options: RunnerOptions): EventSourceRunner {
  const batchSize = options.batchSize ?? 10;
  const batchingWindowMs = options.batchingWindowMs ?? 0;
  const maxConcurrency = options.maxConcurrency ?? 2;
  const functionTimeoutMs = options.functionTimeoutMs ?? 60_000;
  const waitTimeSeconds = options.waitTimeSeconds ?? 1;
  const functionName = options.functionName ?? "scm-withdraw-local-withdraw";
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10)
    throw new RangeError(`batchSize must be an integer from 1 to 10 (got ${batchSize})`);
  if (!Number.isInteger(maxConcurrency) || maxConcurrency < 1)
    throw new RangeError(`maxConcurrency must be a positive integer (got ${maxConcurrency})`);
  if (!Number.isInteger(waitTimeSeconds) || waitTimeSeconds < 1 || waitTimeSeconds > 20)
    throw new RangeError(`waitTimeSeconds must be an integer from 1 to 20 (got ${waitTimeSeconds})`);
  if (!(options.visibilityTimeoutSeconds >= 1))
    throw new RangeError(`visibilityTimeoutSeconds must be at least 1 (got ${options.visibilityTimeoutSeconds})`);

  const onError = (error: unknown, where: string) => {
    stats.queueErrors += 1;
    options.onError?.(error instanceof Error ? error : new Error(String(error)), where);
  };
  const stats: Omit<RunnerStats, "inFlight"> = {
    invocations: 0,
    records: 0,
    redeliveries: 0,
    byOutcome: { success: 0, partial: 0, error: 0, timeout: 0, invalid_response: 0 },
    queueErrors: 0,
  };
  let inFlight = 0;
  let stopping = false;

  /**
   * Keeps the batch invisible while it is being processed (see the module comment). The returned
   * function stops the extensions and waits for any still in flight, so none lands after the
   * invocation has ended: from then on a failed record's visibility is the worker's to set
   * (RETRY_VISIBILITY_SCHEDULE), and the runner never touches it again.
   */
  const keepInvisible = (batch: Message[]) => {
    const everyMs = Math.max(500, (options.visibilityTimeoutSeconds * 1000) / 2);
    const pending = new Set<Promise<unknown>>();
    const timer = setInterval(() => {
      const entries = batch.map((m, i) => ({
        Id: String(i),
        ReceiptHandle: m.ReceiptHandle!,
        VisibilityTimeout: options.visibilityTimeoutSeconds,
      }));
      for (let i = 0; i < entries.length; i += 10) {
        const sent = options.sqs
          .send(
            new ChangeMessageVisibilityBatchCommand({ QueueUrl: options.queueUrl, Entries: entries.slice(i, i + 10) }),
          )
          .catch((error: unknown) => onError(error, "extend_visibility"))
          .finally(() => pending.delete(sent));
        pending.add(sent);
      }
    }, everyMs);
    return async () => {
      clearInterval(timer);
      await Promise.all(pending);
    };
  };

  /** Lambda's batching window: keep receiving until the batch is full or the window has passed. */
  const fillBatch = async (batch: Message[]) => {
    const until = Date.now() + batchingWindowMs;
    while (batch.length < batchSize && !stopping) {
      const left = until - Date.now();
      if (left <= 0) return;
      try {
        const wait = Math.min(20, Math.floor(left / 1000));
        const { Messages = [] } = await options.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: options.queueUrl,
            MaxNumberOfMessages: batchSize - batch.length,
            WaitTimeSeconds: wait,
            MessageSystemAttributeNames: SYSTEM_ATTRIBUTES,
            MessageAttributeNames: ["All"],
          }),
        );
        batch.push(...Messages);
        if (wait === 0 && Messages.length === 0) await sleep(Math.min(left, 100));
      } catch (error) {
        onError(error, "receive");
        return;
      }
    }
  };

  /** One invocation: returns the messages to delete (sqs-consumer deletes exactly those). */
  const handleBatch = async (received: Message[]): Promise<Message[]> => {
    inFlight += 1;
    const batch = [...received];
    const release = keepInvisible(batch);
    try {
      await fillBatch(batch);
      stats.invocations += 1;
      stats.records += batch.length;
      stats.redeliveries += batch.filter((m) => Number(m.Attributes?.ApproximateReceiveCount) > 1).length;
      const report = await invokeOnce(batch);
      stats.byOutcome[report.outcome] += 1;
      try {
        options.onInvocation?.(report);
      } catch (error) {
        onError(error, "on_invocation");
      }
      const succeeded = new Set(report.succeeded);
      return batch.filter((m) => succeeded.has(m.MessageId!));
    } finally {
      await release();
      // The delete of the returned messages still follows; `stop()` waits for it via the pollers' status.
      inFlight -= 1;
    }
  };

  const invokeOnce = async (batch: Message[]): Promise<InvocationReport> => {
    const requestId = randomUUID();
    const started = Date.now();
    const event: SQSEvent = { Records: batch.map((m) => toLambdaRecord(m, options.queueArn, options.region)) };
    const messageIds = event.Records.map((r) => r.messageId);
    const receiveCounts = event.Records.map((r) => Number(r.attributes.ApproximateReceiveCount) || 1);
    const context = lambdaContext({
      functionName,
      region: options.region,
      requestId,
      deadline: started + functionTimeoutMs,
    });
    const abort = new AbortController();
    const report = (outcome: InvocationOutcome, failed: string[], error?: string): InvocationReport => {
      const failedSet = new Set(failed);
      return {
        requestId,
        outcome,
        messageIds,
        receiveCounts,
        succeeded: messageIds.filter((id) => !failedSet.has(id)),
        failed,
        durationMs: Date.now() - started,
        ...(error === undefined ? {} : { error }),
      };
    };

    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), functionTimeoutMs);
    });
    try {
      const result = await Promise.race([
        options.invoke(event, context, abort.signal).then((response) => ({ response })),
        timeout,
      ]);
      if (result === "timeout") {
        abort.abort(new Error(`Task timed out after ${(functionTimeoutMs / 1000).toFixed(2)} seconds`));
        return report("timeout", messageIds, `timed out after ${functionTimeoutMs} ms`);
      }
      const failures = batchItemFailures(result.response, new Set(messageIds));
      if (failures === "invalid")
        return report("invalid_response", messageIds, "the response is not a valid partial batch response");
      return report(failures.length > 0 ? "partial" : "success", failures);
    } catch (error) {
      onError(error, "invoke");
      return report("error", messageIds, describeError(error));
    } finally {
      clearTimeout(timer);
    }
  };

  const pollers = Array.from({ length: maxConcurrency }, () => {
    const consumer = Consumer.create({
      queueUrl: options.queueUrl,
      sqs: options.sqs,
      batchSize,
      waitTimeSeconds,
      messageSystemAttributeNames: SYSTEM_ATTRIBUTES,
      messageAttributeNames: ["All"],
      handleMessageBatch: handleBatch,
      // A batch handler that returns nothing must not mean "delete nothing, silently".
      strictReturn: true,
    });
    consumer.on("error", (error) => onError(error, "queue"));
    consumer.on("processing_error", (error) => onError(error, "processing"));
    return consumer;
  });

  return {
    start() {
      stopping = false;
      for (const poller of pollers) poller.start();
    },
    async stop() {
      stopping = true;
      for (const poller of pollers) poller.stop();
      // `isPolling` stays true from a receive until its batch's delete has finished.
      while (pollers.some((p) => p.status.isPolling) || inFlight > 0) await sleep(25);
    },
    get inFlight() {
      return inFlight;
    },
    stats: () => ({ ...stats, byOutcome: { ...stats.byOutcome }, inFlight }),
  };
}

/**
 * Lambda's rules for a partial batch response: no response, or no/empty `batchItemFailures`, is full
 * success; an item whose `itemIdentifier` is empty, not a string, or not a message of the batch makes
 * the whole response invalid (the whole batch fails).
 * https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html#services-sqs-batchfailurereporting
 */
export function batchItemFailures(response: unknown, messageIds: ReadonlySet<string>): string[] | "invalid" {
  if (response === undefined || response === null) return [];
  if (typeof response !== "object") return "invalid";
  const items = (response as Partial<SQSBatchResponse>).batchItemFailures;
  if (items === undefined || items === null) return [];
  if (!Array.isArray(items)) return "invalid";
  const failed = new Set<string>();
  for (const item of items) {
    const id = (item as { itemIdentifier?: unknown } | null)?.itemIdentifier;
    if (typeof id !== "string" || id === "" || !messageIds.has(id)) return "invalid";
    failed.add(id);
  }
  return [...failed];
}

/** An SQS message as Lambda hands it to the function. */
export function toLambdaRecord(message: Message, queueArn: string, region: string): SQSRecord {
  const system = message.Attributes ?? {};
  const attributes: Record<string, string> = {};
  for (const name of SYSTEM_ATTRIBUTES) {
    const value = system[name];
    if (value !== undefined) attributes[name] = value;
  }
  const messageAttributes: SQSMessageAttributes = {};
  for (const [name, value] of Object.entries(message.MessageAttributes ?? {})) {
    messageAttributes[name] = {
      dataType: value.DataType ?? "String",
      stringListValues: [],
      binaryListValues: [],
      ...(value.StringValue === undefined ? {} : { stringValue: value.StringValue }),
      ...(value.BinaryValue === undefined ? {} : { binaryValue: Buffer.from(value.BinaryValue).toString("base64") }),
    };
  }
  return {
    messageId: message.MessageId!,
    receiptHandle: message.ReceiptHandle!,
    body: message.Body ?? "",
    attributes: attributes as unknown as SQSRecord["attributes"],
    messageAttributes,
    md5OfBody: message.MD5OfBody ?? "",
    eventSource: "aws:sqs",
    eventSourceARN: queueArn,
    awsRegion: region,
  };
}
