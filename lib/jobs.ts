/**
 * From a Lambda SQS event to jobs: each record with a messageId becomes one job (its body parsed,
 * its correlation fields known before anything can fail); anything else is logged and skipped, so a
 * malformed record never takes the valid ones down with it.
 */
import type { SQSRecord } from "aws-lambda";
import type { Logger } from "./logger.ts";
import { parseWithdrawalBody, type ParsedBody } from "./message.ts";
import type { Correlation } from "./outcome.ts";

export interface Job {
  record: SQSRecord;
  correlation: Correlation;
  parsed: ParsedBody;
}

/** Fields read from a body that failed the schema are untrusted: cut them for the logs. */
const LOOSE_FIELD_LENGTH = 128;

/**
 * The event's jobs, in order. A record that is not an object, has no string messageId, or repeats
 * one already seen cannot be acknowledged or reported on its own: one `record_skipped` line each.
 */
export function jobsOf(event: unknown, log: Logger): Job[] {
  const records: unknown = (event as { Records?: unknown } | null | undefined)?.Records;
  if (!Array.isArray(records)) return [];
  const seen = new Set<string>();
  const jobs: Job[] = [];
  records.forEach((record: unknown, index) => {
    const messageId = (record as { messageId?: unknown } | null)?.messageId;
    const problem =
      typeof record !== "object" || record === null
        ? "record is not an object"
        : typeof messageId !== "string" || messageId === ""
          ? "record has no messageId"
          : seen.has(messageId)
            ? "messageId repeats an earlier record of the batch"
            : undefined;
    if (problem !== undefined) {
      log.error("record_skipped", {
        index,
        problem,
        ...(typeof messageId === "string" ? { messageId: messageId.slice(0, LOOSE_FIELD_LENGTH) } : {}),
      });
      return;
    }
    seen.add(messageId as string);
    jobs.push(toJob(record as SQSRecord));
  });
  return jobs;
}

function toJob(record: SQSRecord): Job {
  const raw: unknown = record.body;
  const body = typeof raw === "string" ? raw : "";
  const parsed: ParsedBody =
    typeof raw === "string"
      ? parseWithdrawalBody(body)
      : {
          ok: false,
          problem: `body is not a string (${raw === null ? "null" : typeof raw})`,
          certificateId: undefined,
        };
  const receiveCount = receiveCountOf(record);
  if (parsed.ok) {
    const { request } = parsed;
    const { certificate_id: certificateId, source, batch_id: batchId } = request;
    return {
      record,
      parsed,
      correlation: {
        certificateId,
        messageId: record.messageId,
        requestId: request.request_id ?? record.messageId,
        source,
        batchId,
        receiveCount,
        requestedBy: request.requested_by,
        requestReason: request.reason,
      },
    };
  }
  // The body failed the schema, but whatever correlation it carries still helps find the job.
  const loose = looseFields(body);
  return {
    record,
    parsed,
    correlation: {
      certificateId: parsed.certificateId?.slice(0, LOOSE_FIELD_LENGTH),
      messageId: record.messageId,
      requestId: loose.request_id || record.messageId,
      source: loose.source,
      batchId: loose.batch_id,
      receiveCount,
    },
  };
}

function looseFields(body: string): { request_id?: string; source?: string; batch_id?: string } {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return {};
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) return {};
  const fields = json as Record<string, unknown>;
  const pick = (key: string) =>
    typeof fields[key] === "string" ? (fields[key] as string).slice(0, LOOSE_FIELD_LENGTH) : undefined;
  return { request_id: pick("request_id"), source: pick("source"), batch_id: pick("batch_id") };
}

export function receiveCountOf(record: SQSRecord): number {
  const count = Number(record.attributes?.ApproximateReceiveCount);
  return Number.isInteger(count) && count > 0 ? count : 1;
}
