/** Where each item lives: the table's keys, and a job's reference built from a message. */
import { parseWithdrawalBody, type WithdrawalRequest } from "../message.ts";
import type { JobIdentity, JobRef } from "./types.ts";

export const META_SK = "META";
export const JOB_SK_PREFIX = "JOB#";

export const batchPk = (batchId: string) => `BATCH#${batchId}`;

/**
 * The key of a job: its batch's partition (or its request_id's when it has no batch), and a sort key
 * naming the certificate AND the request_id. The certificate is part of the identity: a request_id is
 * the producer's handle (often a ticket number, reused for several certificates), so a job is never
 * taken as done because another certificate's job with the same request_id was.
 */
export function jobKey(job: JobIdentity): { pk: string; sk: string } {
  return {
    pk: job.batchId ? batchPk(job.batchId) : `REQ#${job.requestId}`,
    sk: `${JOB_SK_PREFIX}${job.certificateId ?? ""}#${job.requestId}`,
  };
}

/** One string per job key, for maps and sets (producers match `alreadyDone` against their jobs with it). */
export function jobKeyString(job: JobIdentity): string {
  const key = jobKey(job);
  return `${key.pk}\n${key.sk}`;
}

/** The worker's view of a job: its request id defaults to the SQS messageId, as the worker's own does. */
export function jobRefFromRequest(request: WithdrawalRequest, messageId: string): JobRef {
  return {
    requestId: request.request_id ?? messageId,
    batchId: request.batch_id,
    certificateId: request.certificate_id,
    source: request.source,
    requestedBy: request.requested_by,
    requestReason: request.reason,
    requestedAt: request.requested_at,
  };
}

/**
 * A job from a queue body (producers, `dlq redrive`). `fallbackRequestId` is what the worker used when
 * the body has no `request_id`: the original messageId (a DLQ message's `source_message_id` attribute).
 */
export function jobRefFromBody(body: string, fallbackRequestId: string): JobRef {
  const parsed = parseWithdrawalBody(body);
  if (!parsed.ok) return { requestId: fallbackRequestId, certificateId: parsed.certificateId };
  return jobRefFromRequest(parsed.request, fallbackRequestId);
}
