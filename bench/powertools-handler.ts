/**
 * The baseline for `npm run bench`: the withdrawal handler a user would write with AWS Powertools for
 * Lambda instead of this project. Same work, same shape (clients built once at module scope, nothing
 * on the network until the first invocation):
 *
 * - `@aws-lambda-powertools/batch`: `BatchProcessor` + `processPartialResponse` (records in parallel,
 *   a thrown record handler = that record in `batchItemFailures`).
 * - `@aws-lambda-powertools/parameters`: `SecretsProvider` for the token, cached like ours (5 minutes).
 * - plain `fetch` for `cancel-cert` (Node's built-in client, keep-alive by default).
 * - the SQS client for the dead-letter queue: permanent failures are sent there, transient ones throw.
 *
 * It is deliberately a straightforward, idiomatic Powertools handler, not a weakened one: no per-record
 * logging, no schema library, no retries inside the invocation (SQS redelivery is the retry).
 * Configuration comes from the same environment variables as `handlers/withdraw.ts`.
 */
import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import { SecretsProvider } from "@aws-lambda-powertools/parameters/secrets";
import { SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";

const env = process.env;
const SCM_ENDPOINT = (env.SCM_ENDPOINT ?? "").replace(/\/+$/, "");
const SECRET_ID = env.SCM_TOKEN_SECRET_ID ?? "";
const DLQ_URL = env.WITHDRAWAL_DLQ_URL ?? "";
const TIMEOUT_MS = Number(env.SCM_TIMEOUT_MS || 10_000);
if (!SCM_ENDPOINT || !SECRET_ID || !DLQ_URL)
  throw new Error("SCM_ENDPOINT, SCM_TOKEN_SECRET_ID and WITHDRAWAL_DLQ_URL are required");

const secrets = new SecretsProvider();
// With a local endpoint override, send to it rather than to the queue URL's host (fauxqs).
const sqs = new SQSClient({ useQueueUrlAsEndpoint: !(env.AWS_ENDPOINT_URL_SQS || env.AWS_ENDPOINT_URL) });
const processor = new BatchProcessor(EventType.SQS);
const ID = /^[A-Za-z0-9]{16}$/;

class TransientError extends Error {
  override name = "TransientError";
}

async function token(): Promise<string> {
  const raw = await secrets.get(SECRET_ID, { maxAge: 300 });
  if (typeof raw !== "string" || raw === "") throw new TransientError("empty secret");
  return raw.startsWith("{") ? String((JSON.parse(raw) as { token?: unknown }).token ?? "") : raw.trim();
}

async function deadLetter(record: SQSRecord, reason: string, status?: number): Promise<void> {
  await sqs.send(
    new SendMessageCommand({
      QueueUrl: DLQ_URL,
      MessageBody: record.body,
      MessageAttributes: {
        failure_reason: { DataType: "String", StringValue: reason },
        source_message_id: { DataType: "String", StringValue: record.messageId },
        ...(status === undefined ? {} : { http_status: { DataType: "Number", StringValue: String(status) } }),
      },
    }),
  );
}

async function recordHandler(record: SQSRecord): Promise<void> {
  let id: unknown;
  try {
    id = (JSON.parse(record.body) as { certificate_id?: unknown }).certificate_id;
  } catch {
    id = undefined;
  }
  if (typeof id !== "string" || !ID.test(id)) return deadLetter(record, "invalid_message");

  const response = await fetch(`${SCM_ENDPOINT}/v3/scm/certificates/${encodeURIComponent(id)}/cancel-cert`, {
    method: "POST",
    headers: {
      "X-Auth-Token": await token(),
      Accept: "application/json",
      "Content-Type": "application/json;charset=UTF-8",
    },
    body: "{}",
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  await response.arrayBuffer();
  if (response.ok) return;
  if (response.status === 429 || response.status === 408 || response.status >= 500)
    throw new TransientError(`SCM answered ${response.status}`);
  return deadLetter(record, "rejected", response.status);
}

export const handler = async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> =>
  processPartialResponse(event, recordHandler, processor, { context });
