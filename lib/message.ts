/**
 * The withdrawal job: the JSON body of a message on the withdrawals queue.
 *
 * One schema, shared by every producer (enqueue, bulk, cleanup) and by the worker. Unknown fields
 * are kept, so a newer producer's extra fields survive an older worker and a redrive.
 */
import * as z from "zod/mini";

/** Exactly 16 characters [A-Za-z0-9]: the API's own limit; it also rules out path tricks like `../`. */
export const CERTIFICATE_ID_PATTERN = /^[A-Za-z0-9]{16}$/;
export const SOURCES = ["manual", "bulk", "cleanup"] as const;
export type Source = (typeof SOURCES)[number];

export const CertificateId = z
  .string({ error: "certificate_id must be a string" })
  .check(z.regex(CERTIFICATE_ID_PATTERN, { error: "certificate_id must be exactly 16 characters A-Z, a-z, 0-9" }));

export const WithdrawalRequest = z.looseObject({
  certificate_id: CertificateId,
  request_id: z.optional(
    z
      .string({ error: "request_id must be a string" })
      .check(
        z.minLength(1, { error: "request_id must not be empty" }),
        z.maxLength(128, { error: "request_id must be at most 128 characters" }),
      ),
  ),
  source: z._default(z.enum(SOURCES, { error: `source must be one of ${SOURCES.join(", ")}` }), "manual"),
  batch_id: z.optional(
    z
      .string({ error: "batch_id must be a string" })
      .check(
        z.minLength(1, { error: "batch_id must not be empty" }),
        z.maxLength(128, { error: "batch_id must be at most 128 characters" }),
      ),
  ),
  reason: z.optional(
    z
      .string({ error: "reason must be a string" })
      .check(z.maxLength(256, { error: "reason must be at most 256 characters" })),
  ),
  /** Who asked for the job (an AWS principal ARN, `local:<user>`, `lambda:<function>`), for the audit trail. Optional: older producers did not say. */
  requested_by: z.optional(
    z
      .string({ error: "requested_by must be a string" })
      .check(
        z.minLength(1, { error: "requested_by must not be empty" }),
        z.maxLength(512, { error: "requested_by must be at most 512 characters" }),
      ),
  ),
  requested_at: z.optional(
    z.iso.datetime({ offset: true, error: "requested_at must be an ISO-8601 date-time, e.g. 2026-11-27T10:00:00Z" }),
  ),
});
export type WithdrawalRequest = z.infer<typeof WithdrawalRequest>;

export type ParsedBody =
  | { ok: true; request: WithdrawalRequest }
  | { ok: false; problem: string; certificateId: string | undefined };

/** Parses a queue body. Never throws: a body that is not JSON or breaks the schema is a `problem`. */
export function parseWithdrawalBody(body: string): ParsedBody {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return { ok: false, problem: "body is not JSON", certificateId: undefined };
  }
  const certificateId = isRecord(json) && typeof json.certificate_id === "string" ? json.certificate_id : undefined;
  if (!isRecord(json)) return { ok: false, problem: "body must be a JSON object", certificateId };
  const parsed = WithdrawalRequest.safeParse(json);
  if (!parsed.success) {
    const problem = parsed.error.issues
      .map((i) =>
        i.path.length > 0 && !i.message.startsWith(String(i.path[0])) ? `${i.path.join(".")}: ${i.message}` : i.message,
      )
      .join("; ");
    return { ok: false, problem, certificateId };
  }
  return { ok: true, request: parsed.data };
}

/** Builds a valid message body for producers; throws a `TypeError` naming the bad field otherwise. */
export function buildWithdrawalBody(input: z.input<typeof WithdrawalRequest>): string {
  const parsed = WithdrawalRequest.safeParse(input);
  if (!parsed.success) throw new TypeError(parsed.error.issues.map((i) => i.message).join("; "));
  return JSON.stringify(parsed.data);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
