/**
 * Reading the dead-letter queue without losing anything. SQS has no "peek": a message can only be
 * seen by receiving it, which hides it for the visibility timeout. So a scan receives messages,
 * holds every one it does not remove, and at the end makes all held messages visible again at once
 * (`ChangeMessageVisibility` to 0), so the next `dlq list` or `dlq redrive` sees them immediately.
 *
 * Held messages stay hidden while the scan runs on purpose: releasing them one by one would make
 * the next receive return them again, and a scan could go round in circles without reaching the
 * rest of the queue.
 *
 * A scan only hands out messages that were in the DLQ before it started (SQS's `SentTimestamp`).
 * Without that cut-off a redrive feeds itself: a job redriven while its cause persists is
 * dead-lettered again as a NEW message, the same scan picks it up and redrives it again, and so on.
 * Later arrivals are held and released like the rest, and left for the next run.
 *
 * A worker killed between its DLQ send and the record's delete leaves two DLQ copies of one job, with
 * the same `source_message_id` attribute. The scanner marks every copy after the first
 * ({@link DlqMessage.copyOf}), so a list counts the job once and a redrive sends it once.
 *
 * Other readers (another `dlq list` or `dlq redrive`) hide the messages they hold: a scan cannot see
 * them. {@link dlqDepth} before and after the scan lets a command say so instead of reporting a
 * partial view as the whole queue.
 */
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  type Message,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import { FAILURE_REASONS } from "../lib/classify.ts";

/** The reason shown for a DLQ message without a `failure_reason` attribute: the queue's redrive policy moved it there. */
export const UNLABELLED = "unlabelled";
export const DLQ_REASONS = [...FAILURE_REASONS, UNLABELLED] as const;

export interface DlqMessage {
  messageId: string;
  receiptHandle: string;
  /** The original job, byte for byte. */
  body: string;
  /** `failure_reason`, or {@link UNLABELLED}. */
  reason: string;
  errorCode: string | undefined;
  httpStatus: string | undefined;
  /** From the `certificate_id` attribute, else from the body when it is JSON with one. */
  certificateId: string | undefined;
  failedAt: string | undefined;
  /** The audit trail, from the body: who asked for the job (`requested_by`) and why (`reason`). */
  requestedBy: string | undefined;
  requestReason: string | undefined;
  /** The job's key in the ledger: the body's `request_id`, else the worker's (`source_message_id`). */
  requestId: string | undefined;
  /** The worker's `source_message_id`: the SQS message the job was dead-lettered from. */
  sourceMessageId: string | undefined;
  /** Set on a second (third...) copy of one dead letter: the DLQ message id of the copy handed out first. */
  copyOf?: string;
}

export interface DlqScannerOptions {
  sqs: SQSClient;
  url: string;
  /** How long received messages stay hidden while the scan runs; they are released at the end anyway. */
  visibilityTimeoutSeconds?: number;
  /** Long-poll wait per receive. */
  waitSeconds?: number;
  /** Only messages sent to the DLQ before this time (ms since the epoch) are handed out; default: when the scanner is created. */
  arrivedBefore?: number;
}

export interface DlqScanner {
  /**
   * Receives up to 10 messages not seen before in this scan and returns those that arrived before
   * the cut-off (possibly none); undefined means the scan is over (nothing unseen is left).
   * Every message received is held (hidden) until {@link release} or {@link remove}.
   */
  next(): Promise<DlqMessage[] | undefined>;
  /** Messages that arrived in the DLQ after the cut-off, seen and held but not handed out. */
  readonly arrivedLater: number;
  /** Deletes messages from the DLQ; returns the ids it could not delete (they stay held). */
  remove(messages: readonly DlqMessage[]): Promise<{ failed: { message: DlqMessage; error: string }[] }>;
  /** Makes every held message visible again. Returns how many could not be released (they reappear after the timeout anyway). */
  release(): Promise<{ released: number; failed: number }>;
}

export function createDlqScanner(options: DlqScannerOptions): DlqScanner {
  const { sqs, url } = options;
  const visibility = options.visibilityTimeoutSeconds ?? 60;
  const wait = options.waitSeconds ?? 1;
  const arrivedBefore = options.arrivedBefore ?? Date.now();
  const seen = new Set<string>();
  // message id -> newest receipt handle (a handle from an older receive may no longer work)
  const held = new Map<string, string>();
  // source_message_id -> the DLQ message id of the first copy handed out
  const firstCopy = new Map<string, string>();
  let arrivedLater = 0;

  return {
    get arrivedLater() {
      return arrivedLater;
    },

    async next() {
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: url,
          MaxNumberOfMessages: 10,
          VisibilityTimeout: visibility,
          WaitTimeSeconds: wait,
          MessageAttributeNames: ["All"],
          MessageSystemAttributeNames: ["SentTimestamp"],
        }),
      );
      let unseen = 0;
      const fresh: DlqMessage[] = [];
      for (const message of Messages) {
        if (!message.MessageId || !message.ReceiptHandle) continue;
        held.set(message.MessageId, message.ReceiptHandle);
        if (seen.has(message.MessageId)) continue;
        seen.add(message.MessageId);
        unseen++;
        const sentAt = Number(message.Attributes?.SentTimestamp);
        if (Number.isFinite(sentAt) && sentAt > arrivedBefore) arrivedLater++;
        else fresh.push(markCopy(toDlqMessage(message), firstCopy));
      }
      return unseen === 0 ? undefined : fresh;
    },

    async remove(messages) {
      const failed: { message: DlqMessage; error: string }[] = [];
      for (let i = 0; i < messages.length; i += 10) {
        const chunk = messages.slice(i, i + 10);
        try {
          const output = await sqs.send(
            new DeleteMessageBatchCommand({
              QueueUrl: url,
              Entries: chunk.map((m, j) => ({
                Id: String(j),
                ReceiptHandle: held.get(m.messageId) ?? m.receiptHandle,
              })),
            }),
          );
          for (const ok of output.Successful ?? []) held.delete(chunk[Number(ok.Id)]!.messageId);
          for (const f of output.Failed ?? [])
            failed.push({ message: chunk[Number(f.Id)]!, error: `${f.Code}: ${f.Message ?? ""}`.trim() });
        } catch (error) {
          for (const message of chunk)
            failed.push({ message, error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
        }
      }
      return { failed };
    },

    async release() {
      const handles = [...held.values()];
      held.clear();
      let failed = 0;
      const chunks: string[][] = [];
      for (let i = 0; i < handles.length; i += 10) chunks.push(handles.slice(i, i + 10));
      // Several calls at once: a large DLQ should not stay hidden longer than needed.
      await inParallel(chunks, RELEASE_CONCURRENCY, async (chunk) => {
        try {
          const output = await sqs.send(
            new ChangeMessageVisibilityBatchCommand({
              QueueUrl: url,
              Entries: chunk.map((h, j) => ({ Id: String(j), ReceiptHandle: h, VisibilityTimeout: 0 })),
            }),
          );
          failed += output.Failed?.length ?? 0;
        } catch {
          failed += chunk.length;
        }
      });
      return { released: handles.length - failed, failed };
    },
  };
}

const RELEASE_CONCURRENCY = 8;

async function inParallel<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function markCopy(message: DlqMessage, firstCopy: Map<string, string>): DlqMessage {
  if (message.sourceMessageId === undefined) return message;
  const first = firstCopy.get(message.sourceMessageId);
  if (first === undefined) firstCopy.set(message.sourceMessageId, message.messageId);
  else message.copyOf = first;
  return message;
}

/** Messages in a queue now: visible, and in flight (received by some reader and hidden from every other). */
export async function dlqDepth(sqs: SQSClient, url: string): Promise<{ visible: number; inFlight: number }> {
  const { Attributes = {} } = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    }),
  );
  return {
    visible: Number(Attributes.ApproximateNumberOfMessages ?? 0),
    inFlight: Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0),
  };
}

/**
 * What a scan could not see: messages in flight elsewhere (at its start or after it released its own),
 * and messages counted visible at its start that it never received (another reader took or removed them).
 */
export interface Unseen {
  inFlightElsewhere: number;
  missed: number;
}

export function unseen(
  start: { visible: number; inFlight: number },
  end: { inFlight: number },
  seenBeforeCutoff: number,
): Unseen {
  return {
    inFlightElsewhere: Math.max(start.inFlight, end.inFlight),
    missed: Math.max(0, start.visible - seenBeforeCutoff),
  };
}

/** One line about what a scan could not see, or undefined when it saw everything. */
export function describeUnseen(u: Unseen, dlqName: string): string | undefined {
  if (u.inFlightElsewhere === 0 && u.missed === 0) return undefined;
  const parts: string[] = [];
  if (u.inFlightElsewhere > 0)
    parts.push(`${u.inFlightElsewhere} message${u.inFlightElsewhere === 1 ? " was" : "s were"} in flight elsewhere`);
  if (u.missed > 0) parts.push(`${u.missed} counted at the start ${u.missed === 1 ? "was" : "were"} never received`);
  return `${dlqName}: not everything was seen (${parts.join("; ")}): another reader (dlq list, dlq redrive) holds them; run again when it is done`;
}

function toDlqMessage(message: Message): DlqMessage {
  const attribute = (name: string) => message.MessageAttributes?.[name]?.StringValue || undefined;
  const body = message.Body ?? "";
  const fields = bodyFields(body);
  return {
    messageId: message.MessageId!,
    receiptHandle: message.ReceiptHandle!,
    body,
    reason: attribute("failure_reason") ?? UNLABELLED,
    errorCode: attribute("error_code"),
    httpStatus: attribute("http_status"),
    certificateId: attribute("certificate_id") ?? fields.certificate_id,
    failedAt: attribute("failed_at"),
    requestedBy: fields.requested_by,
    requestReason: fields.reason,
    requestId: fields.request_id ?? attribute("source_message_id"),
    sourceMessageId: attribute("source_message_id"),
  };
}

/** The string fields of a JSON body that the listing shows (an invalid body has none). */
function bodyFields(body: string): {
  certificate_id?: string;
  requested_by?: string;
  reason?: string;
  request_id?: string;
} {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return {};
  }
  if (typeof json !== "object" || json === null) return {};
  const record = json as Record<string, unknown>;
  const pick = (key: string) => (typeof record[key] === "string" ? (record[key] as string) : undefined);
  return {
    certificate_id: pick("certificate_id"),
    requested_by: pick("requested_by"),
    reason: pick("reason"),
    request_id: pick("request_id"),
  };
}

/** Parses `--reason a,b` into the set of reasons, or returns the bad one. */
export function parseReasons(value: string): { reasons: Set<string> } | { bad: string } {
  const reasons = new Set(
    value
      .split(",")
      .map((r) => r.trim())
      .filter((r) => r !== ""),
  );
  for (const reason of reasons) if (!(DLQ_REASONS as readonly string[]).includes(reason)) return { bad: reason };
  return reasons.size === 0 ? { bad: value } : { reasons };
}
