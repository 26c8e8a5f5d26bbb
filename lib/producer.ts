/**
 * The producer side, shared by every way jobs reach the queue (`enqueue`, `bulk`, the cleanup sweep,
 * `dlq redrive`): bodies are built with the shared schema and sent with `SendMessageBatch`, 10 per
 * call, several calls in flight, retrying only the entries a batch reports as failed.
 */
import { SendMessageBatchCommand, type MessageAttributeValue, type SQSClient } from "@aws-sdk/client-sqs";
import { describeError } from "./errors.ts";
import { backoffDelay, sleep } from "./retry.ts";

/** SQS's limit per `SendMessageBatch` call. */
export const MAX_BATCH_ENTRIES = 10;
/** SQS's limit on a whole batch's payload (bodies and attributes), 256 KiB. */
const MAX_BATCH_BYTES = 256 * 1024;
/** Between resends of the entries SQS did not take: full jitter from 100 ms, at most 2 s. */
const SEND_BACKOFF = { baseMs: 100, capMs: 2000 };

export interface OutgoingMessage<K = unknown> {
  /** The caller's key for the result (a line number, a certificate id...). */
  key: K;
  body: string;
  attributes?: Record<string, MessageAttributeValue>;
}

export type SendResult<K = unknown> = { key: K; ok: true; messageId: string } | { key: K; ok: false; error: string };

export interface SenderOptions<K> {
  sqs: SQSClient;
  queueUrl: string;
  /** `SendMessageBatch` calls in flight at once. */
  concurrency?: number;
  /** How often an entry that failed for a retryable reason is sent again. */
  maxRetries?: number;
  /** Called once per message with its final result, in completion order. */
  onResult?: (result: SendResult<K>) => void;
}

export interface Sender<K> {
  /** Queues one message; resolves when there is room for more (back-pressure for streaming callers). */
  push(message: OutgoingMessage<K>): Promise<void>;
  /** Sends what is buffered and waits for every call in flight. */
  flush(): Promise<void>;
}

export function createSender<K>(options: SenderOptions<K>): Sender<K> {
  const concurrency = options.concurrency ?? 8;
  const maxRetries = options.maxRetries ?? 3;
  const onResult = options.onResult ?? (() => {});
  let buffer: OutgoingMessage<K>[] = [];
  let bufferBytes = 0;
  const inFlight = new Set<Promise<void>>();
  let failure: unknown;

  const dispatch = () => {
    if (buffer.length === 0) return;
    const batch = buffer;
    buffer = [];
    bufferBytes = 0;
    const call = sendWithRetries(options.sqs, options.queueUrl, batch, maxRetries)
      .then((results) => results.forEach(onResult))
      // A callback that throws (a results file that cannot be written) must stop the caller, not
      // vanish as an unhandled rejection: keep the first error and raise it from push()/flush().
      .catch((error: unknown) => void (failure ??= error))
      .finally(() => inFlight.delete(call));
    inFlight.add(call);
  };
  const raiseFailure = () => {
    if (failure !== undefined) throw failure;
  };

  return {
    async push(message) {
      const size = messageBytes(message);
      if (buffer.length >= MAX_BATCH_ENTRIES || bufferBytes + size > MAX_BATCH_BYTES) dispatch();
      buffer.push(message);
      bufferBytes += size;
      if (buffer.length >= MAX_BATCH_ENTRIES) dispatch();
      while (inFlight.size >= concurrency) await Promise.race(inFlight);
      raiseFailure();
    },
    async flush() {
      dispatch();
      while (inFlight.size > 0) await Promise.race(inFlight);
      raiseFailure();
    },
  };
}

/** Sends up to 10 messages in one call; entries that fail for a retryable reason are sent again. */
export async function sendWithRetries<K>(
  sqs: SQSClient,
  queueUrl: string,
  messages: OutgoingMessage<K>[],
  maxRetries: number,
): Promise<SendResult<K>[]> {
  const results: SendResult<K>[] = [];
  let pending = messages.map((message, index) => ({ id: String(index), message }));
  for (let attempt = 0; pending.length > 0; attempt++) {
    let retry: typeof pending = [];
    try {
      const output = await sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: pending.map(({ id, message }) => ({
            Id: id,
            MessageBody: message.body,
            ...(message.attributes ? { MessageAttributes: message.attributes } : {}),
          })),
        }),
      );
      const byId = new Map(pending.map((p) => [p.id, p.message]));
      for (const ok of output.Successful ?? [])
        results.push({ key: byId.get(ok.Id!)!.key, ok: true, messageId: ok.MessageId! });
      for (const failed of output.Failed ?? []) {
        const entry = pending.find((p) => p.id === failed.Id)!;
        // SenderFault: the entry itself is wrong (too big, bad characters): sending it again cannot help.
        if (failed.SenderFault || attempt >= maxRetries)
          results.push({ key: entry.message.key, ok: false, error: `${failed.Code}: ${failed.Message ?? ""}`.trim() });
        else retry.push(entry);
      }
    } catch (error) {
      // The whole call failed. Network errors and throttling are retried for every entry; a client
      // fault the SDK does not call retryable (no such queue, access denied) fails them all at once.
      if (attempt >= maxRetries || isPermanent(error)) {
        for (const { message } of pending) results.push({ key: message.key, ok: false, error: describeError(error) });
        return results;
      }
      retry = pending;
    }
    pending = retry;
    if (pending.length > 0) await sleep(backoffDelay(attempt, SEND_BACKOFF));
  }
  return results;
}

function messageBytes(message: OutgoingMessage<unknown>): number {
  let size = Buffer.byteLength(message.body);
  for (const [name, value] of Object.entries(message.attributes ?? {}))
    size += name.length + (value.DataType?.length ?? 0) + Buffer.byteLength(value.StringValue ?? "");
  return size;
}

function isPermanent(error: unknown): boolean {
  const e = error as { $fault?: string; $retryable?: unknown };
  return e.$fault === "client" && !e.$retryable;
}
