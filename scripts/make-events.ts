/**
 * Writes the sample SQS events in `events/`: one file per outcome of the worker, using the demo
 * certificate ids (local/demo-certificates.ts) that the local SCM simulator is seeded with.
 *
 *   npx tsx scripts/make-events.ts           # (re)write events/*.json
 *   npx tsx scripts/make-events.ts --check   # exit 1 if a file is missing or differs
 *
 * The output is deterministic (fixed times, ids derived from the file and record position), so
 * re-running it changes nothing unless this script or the demo ids changed. Every valid body is
 * checked against the shared message schema, and every invalid one is checked to be rejected.
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { SQSEvent, SQSRecord } from "aws-lambda";
import { DEMO, DEMO_INVALID_BODIES } from "../local/demo-certificates.ts";
import { parseWithdrawalBody } from "../lib/message.ts";

const EVENTS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "events");

const REGION = "eu-west-1";
const QUEUE_ARN = `arn:aws:sqs:${REGION}:000000000000:withdrawals`;
/** The IAM user id SQS reports as the sender (the shape of a real one; not a real account). */
const SENDER_ID = "AIDAIENQZJOLO23YVJ4VO";
/** All events are "sent" at this instant and received a second later. */
const SENT_AT = Date.UTC(2026, 10, 27, 10, 0, 0);
const REQUESTED_AT = new Date(SENT_AT - 60_000).toISOString();

interface RecordSpec {
  /** The raw queue body: an object (serialised as JSON) or a string sent as is. */
  body: Record<string, unknown> | string;
  /** ApproximateReceiveCount: how many times SQS has handed this message out, this time included. */
  receiveCount?: number;
  /** Whether the body must pass the message schema (true) or be rejected as invalid_message (false). */
  valid: boolean;
}

function md5(text: string): string {
  return createHash("md5").update(text, "utf8").digest("hex");
}

/** A UUID-shaped id derived from a seed, so regenerated files are identical. */
function stableUuid(seed: string): string {
  const h = createHash("sha256").update(seed).digest("hex");
  const variant = ((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function job(certificateId: string, requestId: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    certificate_id: certificateId,
    request_id: requestId,
    source: "manual",
    reason: "sample event: customer cancelled the order",
    requested_at: REQUESTED_AT,
    ...extra,
  };
}

function toRecord(file: string, index: number, spec: RecordSpec): SQSRecord {
  const body = typeof spec.body === "string" ? spec.body : JSON.stringify(spec.body);
  const parsed = parseWithdrawalBody(body);
  if (parsed.ok !== spec.valid) {
    throw new Error(
      `${file} record ${index}: body is ${parsed.ok ? "valid" : "invalid"} but should be ${spec.valid ? "valid" : "invalid"}: ${body}`,
    );
  }
  const sentAt = SENT_AT + index;
  const messageId = stableUuid(`${file}#${index}`);
  return {
    messageId,
    // Real receipt handles are long opaque base64 strings; this one is opaque and stable.
    receiptHandle: Buffer.from(`receipt:${messageId}:${spec.receiveCount ?? 1}`).toString("base64"),
    body,
    attributes: {
      ApproximateReceiveCount: String(spec.receiveCount ?? 1),
      SentTimestamp: String(sentAt),
      SenderId: SENDER_ID,
      ApproximateFirstReceiveTimestamp: String(sentAt + 1000),
    },
    messageAttributes: {},
    md5OfBody: md5(body),
    eventSource: "aws:sqs",
    eventSourceARN: QUEUE_ARN,
    awsRegion: REGION,
  };
}

/** Ids that must never reach a URL path: traversal, separators, encodings, wrong length or type. */
const HOSTILE_CERTIFICATE_IDS: readonly unknown[] = [
  "../../etc/passwd", // exactly 16 characters: the length alone does not stop it
  "scs1000000000001/../../iam", // a valid id followed by a path
  "scs10000000000%2F", // URL-encoded slash
  "scs1000000000001?x=1", // query injection
  "scs100000000000", // 15 characters
  "scs1000000000001\n", // trailing newline
  "scs1000000000００1", // full-width digits
  1000000000000001, // a number, not a string
];

const single = (
  certificateId: string,
  name: string,
  extra: Record<string, unknown> = {},
  receiveCount?: number,
): RecordSpec[] => [
  {
    body: job(certificateId, `sample-${name}`, extra),
    valid: true,
    ...(receiveCount === undefined ? {} : { receiveCount }),
  },
];

/** file name → records. */
const EVENTS: Record<string, RecordSpec[]> = {
  "withdrawn.json": single(DEMO.withdrawn, "withdrawn"),
  "already-withdrawn.json": single(DEMO.alreadyWithdrawn, "already-withdrawn"),
  "rejected.json": single(DEMO.rejected, "rejected"),
  "forbidden.json": single(DEMO.forbidden, "forbidden"),
  "not-found.json": single(DEMO.notFound, "not-found"),
  "transient.json": single(DEMO.transientThenWithdrawn, "transient"),
  // The fifth receive: at MAX_RECEIVE_COUNT (5) a still-failing record is dead-lettered.
  "retries-exhausted.json": single(
    DEMO.alwaysFailing,
    "retries-exhausted",
    {
      source: "cleanup",
      batch_id: "cleanup-2026-11-27",
      reason: "sample event: stale application found by the cleanup sweep",
    },
    5,
  ),
  // The first receive of a record that keeps failing: retried in the invocation, then reported in
  // batchItemFailures so SQS redelivers it after the visibility timeout.
  "still-failing.json": single(DEMO.alwaysFailing, "still-failing"),
  "throttled.json": single(DEMO.throttledThenWithdrawn, "throttled"),
  "invalid-json.json": [{ body: DEMO_INVALID_BODIES[0], valid: false }],
  "invalid-certificate-id.json": HOSTILE_CERTIFICATE_IDS.map((id, i) => ({
    body: { certificate_id: id, request_id: `sample-hostile-${i}`, source: "manual", requested_at: REQUESTED_AT },
    valid: false,
  })),
  // One of each outcome in a full batch (10, the batchSize): what a real invocation looks like.
  "mixed-batch.json": [
    ...Object.entries(DEMO).map(
      ([name, id]): RecordSpec => ({
        body: job(id, `sample-mixed-${name}`, { source: "bulk", batch_id: "bulk-sample-mixed" }),
        valid: true,
        ...(id === DEMO.alwaysFailing ? { receiveCount: 5 } : {}),
      }),
    ),
    { body: DEMO_INVALID_BODIES[0], valid: false },
    { body: DEMO_INVALID_BODIES[1], valid: false },
  ],
};

export function renderEvents(): Map<string, string> {
  const files = new Map<string, string>();
  for (const [file, specs] of Object.entries(EVENTS)) {
    const event: SQSEvent = { Records: specs.map((spec, i) => toRecord(file, i, spec)) };
    if (event.Records.length > 10)
      throw new Error(`${file}: ${event.Records.length} records, but an SQS batch holds at most 10`);
    files.set(file, `${JSON.stringify(event, null, 2)}\n`);
  }
  return files;
}

async function main(): Promise<void> {
  const check = process.argv.includes("--check");
  const files = renderEvents();
  const stale: string[] = [];
  if (!check) await mkdir(EVENTS_DIR, { recursive: true });
  for (const [file, text] of files) {
    const target = path.join(EVENTS_DIR, file);
    if (check) {
      const current = await readFile(target, "utf8").catch(() => undefined);
      if (current !== text) stale.push(file);
    } else {
      await writeFile(target, text);
      console.log(`events/${file}`);
    }
  }
  if (stale.length > 0) {
    console.error(`out of date (run npx tsx scripts/make-events.ts): ${stale.join(", ")}`);
    process.exit(1);
  }
}

await main();
