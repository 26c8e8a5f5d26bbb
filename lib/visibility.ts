/**
 * Backing off across deliveries: a record left for retry comes back after a delay chosen here
 * instead of the queue's whole visibility timeout (365 s deployed). The delay is full jitter under a
 * ceiling that grows with the receive count (`RETRY_VISIBILITY_SCHEDULE`, default 15 s, 1 min, 4 min,
 * 15 min), or SCM's `Retry-After` when that is longer. Set with `sqs:ChangeMessageVisibilityBatch`
 * (10 records per call) on the record's own queue, found from its `eventSourceARN`.
 *
 * A failed change never changes an outcome: the record is still reported in `batchItemFailures` and
 * comes back after the queue's visibility timeout; the failure is logged and counted.
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-visibility-timeout.html
 */
import type { SqsClientSource } from "./dead-letter.ts";
import { withDeadline } from "./deadline.ts";
import { describeError } from "./errors.ts";
import type { Invocation, RetryEntry } from "./invocation.ts";

export interface VisibilityEntry {
  id: string;
  receiptHandle: string;
  visibilityTimeout: number;
}

/** Changes the visibility of up to 10 messages of one queue; resolves with the entries SQS refused. */
export type VisibilityChanger = (
  queueUrl: string,
  entries: readonly VisibilityEntry[],
  signal: AbortSignal,
) => Promise<{ failed: { id: string; code: string }[] }>;

/**
 * A message's visibility may not reach past 12 hours after its receive. The receive can precede the
 * invocation by the batching window (at most 5 min) and the invocation lasts at most 15 min.
 */
export const MAX_RETRY_VISIBILITY_SECONDS = 43_200 - 300 - 900;
const BATCH_LIMIT = 10;

/** The delay (seconds) before the next delivery of a record received `receiveCount` times. */
export function retryVisibilitySeconds(
  receiveCount: number,
  schedule: readonly number[],
  retryAfterMs: number | undefined,
  random: () => number,
): number {
  const ceiling = schedule[Math.min(Math.max(1, receiveCount), schedule.length) - 1] ?? 0;
  const jittered = Math.floor(random() * (ceiling + 1));
  const asked = retryAfterMs === undefined ? 0 : Math.ceil(retryAfterMs / 1000);
  return Math.min(MAX_RETRY_VISIBILITY_SECONDS, Math.max(jittered, asked));
}

/**
 * `arn:aws:sqs:REGION:ACCOUNT:NAME` → its queue URL. The DLQ's URL is the model when it belongs to
 * the same account and region (or to a local emulator, `sqsEndpointOverridden`): same origin, other
 * name; this also finds a local emulator's queues, whose URLs are not AWS's. Otherwise
 * `https://sqs.REGION.amazonaws.com/ACCOUNT/NAME`. Undefined for anything that is not an SQS ARN.
 */
export function queueUrlFromArn(
  arn: unknown,
  model: { dlqUrl?: string | undefined; sqsEndpointOverridden?: boolean | undefined } = {},
): string | undefined {
  if (typeof arn !== "string") return undefined;
  const match = /^arn:(aws[\w-]*):sqs:([a-z0-9-]+):(\d{12}):([\w-]{1,80}(?:\.fifo)?)$/.exec(arn);
  if (!match) return undefined;
  const [, partition, region, account, name] = match;
  const dlq = model.dlqUrl ? /^(https?:\/\/[^/]+)\/(\d+)\/[^/]+$/.exec(model.dlqUrl) : null;
  if (dlq && dlq[2] === account && (model.sqsEndpointOverridden || dlq[1]!.includes(`sqs.${region}.`)))
    return `${dlq[1]}/${account}/${name}`;
  const host =
    partition === "aws-cn" ? `https://sqs.${region}.amazonaws.com.cn` : `https://sqs.${region}.amazonaws.com`;
  return `${host}/${account}/${name}`;
}

/** Sends `ChangeMessageVisibilityBatch` with `sqs` (the SDK is loaded on first use, like the DLQ sender's). */
export function createVisibilityChanger(sqs: SqsClientSource): VisibilityChanger {
  return async (queueUrl, entries, signal) => {
    const [{ ChangeMessageVisibilityBatchCommand }, client] = await Promise.all([
      import("@aws-sdk/client-sqs"),
      typeof sqs === "function" ? sqs() : sqs,
    ]);
    const command = new ChangeMessageVisibilityBatchCommand({
      QueueUrl: queueUrl,
      Entries: entries.map((e) => ({
        Id: e.id,
        ReceiptHandle: e.receiptHandle,
        VisibilityTimeout: e.visibilityTimeout,
      })),
    });
    const output = await client.send(command, { abortSignal: signal });
    return { failed: (output.Failed ?? []).map((f) => ({ id: f.Id ?? "", code: f.Code ?? "unknown" })) };
  };
}

export interface RetryVisibilityConfig {
  retryVisibilitySchedule?: readonly number[] | undefined;
  dlqUrl?: string | undefined;
  sqsEndpointOverridden?: boolean | undefined;
}

/**
 * Delays the next delivery of every record the invocation left for retry; one `retry_delayed` line
 * per record changed, one `visibility_change_failed` (and `VisibilityChangeFailed`) per record not.
 */
export async function changeRetryVisibility(
  changer: VisibilityChanger | undefined,
  inv: Invocation,
  config: RetryVisibilityConfig,
  random: () => number,
): Promise<void> {
  const schedule = config.retryVisibilitySchedule ?? [];
  if (!changer || schedule.length === 0 || inv.retries.length === 0) return;
  const byQueue = new Map<string, { entry: VisibilityEntry; retry: RetryEntry }[]>();
  for (const retry of inv.retries) {
    const { record, correlation } = retry.job;
    const queueUrl = queueUrlFromArn(record.eventSourceARN, config);
    if (!queueUrl || typeof record.receiptHandle !== "string" || record.receiptHandle === "") {
      failed(inv, retry, "no queue URL or receipt handle in the record");
      continue;
    }
    const visibilityTimeout = retryVisibilitySeconds(correlation.receiveCount, schedule, retry.retryAfterMs, random);
    const list = byQueue.get(queueUrl) ?? [];
    list.push({ entry: { id: String(list.length), receiptHandle: record.receiptHandle, visibilityTimeout }, retry });
    byQueue.set(queueUrl, list);
  }
  const calls: Promise<void>[] = [];
  for (const [queueUrl, list] of byQueue) {
    for (let i = 0; i < list.length; i += BATCH_LIMIT)
      calls.push(changeBatch(changer, inv, queueUrl, list.slice(i, i + BATCH_LIMIT)));
  }
  await Promise.all(calls);
}

async function changeBatch(
  changer: VisibilityChanger,
  inv: Invocation,
  queueUrl: string,
  batch: { entry: VisibilityEntry; retry: RetryEntry }[],
) {
  let refused: Map<string, string>;
  try {
    const answer = await withDeadline("visibility", inv.settleSignal, (signal) =>
      changer(
        queueUrl,
        batch.map((b) => b.entry),
        signal,
      ),
    );
    refused = new Map(answer.failed.map((f) => [f.id, f.code]));
  } catch (error) {
    for (const { retry } of batch) failed(inv, retry, describeError(error));
    return;
  }
  for (const { entry, retry } of batch) {
    const code = refused.get(entry.id);
    if (code !== undefined) failed(inv, retry, code);
    else inv.log.info("retry_delayed", { ...retry.job.correlation, visibilityTimeoutS: entry.visibilityTimeout });
  }
}

function failed(inv: Invocation, retry: RetryEntry, error: string) {
  inv.metrics.count("VisibilityChangeFailed");
  inv.log.warn("visibility_change_failed", { ...retry.job.correlation, error });
}
