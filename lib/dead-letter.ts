/**
 * The dead-letter sender. The body is the original body, byte for byte, so a redrive replays the
 * exact job; why it failed travels in message attributes (at most 10, as SQS allows). A record whose
 * body SQS would refuse (not a string, missing, empty) is sent as the JSON of what it held, and says
 * so in `body_encoding: json` (see {@link deadLetterBody}).
 */
import type { MessageAttributeValue, SQSClient } from "@aws-sdk/client-sqs";
import type { FailureReason } from "./classify.ts";
import { redact } from "./redact.ts";

export interface DeadLetter {
  body: string;
  /** `json`: `body` is the JSON of a record body that was not a non-empty string. */
  bodyEncoding?: "json" | undefined;
  reason: FailureReason;
  sourceMessageId: string;
  certificateId: string | undefined;
  httpStatus: number | undefined;
  errorCode: string | undefined;
  errorMsg: string | undefined;
  attempts: number;
  receiveCount: number;
  failedAt: Date;
}

/** SCM documents `error_msg` as at most 1024 characters; longer ones are cut. */
export const MAX_ERROR_MSG_LENGTH = 1024;
const MAX_ID_ATTRIBUTE_LENGTH = 256;

export function deadLetterAttributes(letter: DeadLetter): Record<string, MessageAttributeValue> {
  const attributes: Record<string, MessageAttributeValue> = {};
  const string = (name: string, value: string | undefined, max: number) => {
    // Scrubbed before cutting, so a cut cannot split a secret into pieces too short to recognise.
    const clean = value === undefined ? "" : sqsSafe(redact(value)).slice(0, max);
    if (clean !== "") attributes[name] = { DataType: "String", StringValue: clean };
  };
  const number = (name: string, value: number | undefined) => {
    if (value !== undefined && Number.isFinite(value))
      attributes[name] = { DataType: "Number", StringValue: String(value) };
  };
  string("failure_reason", letter.reason, 64);
  number("http_status", letter.httpStatus);
  string("error_code", letter.errorCode, 64);
  string("error_msg", letter.errorMsg, MAX_ERROR_MSG_LENGTH);
  string("certificate_id", letter.certificateId, MAX_ID_ATTRIBUTE_LENGTH);
  string("source_message_id", letter.sourceMessageId, MAX_ID_ATTRIBUTE_LENGTH);
  number("attempts", letter.attempts);
  number("receive_count", letter.receiveCount);
  string("failed_at", letter.failedAt.toISOString(), 64);
  string("body_encoding", letter.bodyEncoding, 16);
  return attributes;
}

/**
 * What to send for a record's body: the body itself when it is a non-empty string; otherwise (a
 * number, an object, missing, empty) its JSON (`null` when missing), which SQS accepts and which
 * keeps what the record held, with `bodyEncoding: "json"`.
 */
export function deadLetterBody(raw: unknown): Pick<DeadLetter, "body" | "bodyEncoding"> {
  if (typeof raw === "string" && raw !== "") return { body: raw };
  let json: string | undefined;
  try {
    json = JSON.stringify(raw ?? null);
  } catch {
    json = undefined;
  }
  return { body: sqsSafe(json ?? JSON.stringify(String(raw))), bodyEncoding: "json" };
}

/** Removes characters SQS refuses in a message (anything outside #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD and astral planes). */
export function sqsSafe(value: string): string {
  return value.replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, "\uFFFD");
}

/** Sends one dead letter; `signal` aborts the send (the invocation's deadline). */
export type DeadLetterSender = (letter: DeadLetter, signal?: AbortSignal) => Promise<void>;

/** An SQS client, or a function that makes one when it is first needed. */
export type SqsClientSource = SQSClient | (() => Promise<SQSClient>);

/**
 * Sends dead letters with `sqs`. The SQS SDK is imported on the first send, not when this module
 * loads: most containers never dead-letter anything, and loading the SDK is about 15 ms of every cold
 * start otherwise (bench comparison 3). After the first send the import is a cached lookup.
 */
export function createDeadLetterSender(sqs: SqsClientSource, queueUrl: string): DeadLetterSender {
  return async (letter, signal) => {
    const [{ SendMessageCommand }, client] = await Promise.all([
      import("@aws-sdk/client-sqs"),
      typeof sqs === "function" ? sqs() : sqs,
    ]);
    const attributes = deadLetterAttributes(letter);
    const command = new SendMessageCommand({
      QueueUrl: queueUrl,
      MessageBody: letter.body,
      MessageAttributes: attributes,
    });
    await client.send(command, signal ? { abortSignal: signal } : {});
  };
}
