/**
 * What an SCM answer means: the outcome table of the README as one pure function.
 *
 * An answer (status, SCM `error_code`, `Retry-After`) or a network failure goes in; a decision
 * comes out. The caller switches on `kind`; nothing else in the project looks at HTTP statuses.
 */
import type { ScmResult } from "./scm-client.ts";

/** The `failure_reason` attribute of a dead-letter message. */
export const FAILURE_REASONS = ["invalid_message", "unauthorized", "forbidden", "not_found", "rejected", "retries_exhausted"] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

/** Why a call is worth trying again. */
export type RetryReason = "throttled" | "server_error" | "timeout" | "connection" | "token_unavailable";

export type Decision =
  | { kind: "withdrawn" }
  /** `SCM.0010`: the status does not allow it; the certificate's details decide (already withdrawn or rejected). */
  | { kind: "check-status" }
  /** First 401: drop the cached token, re-read the secret, call once more. */
  | { kind: "refresh-token" }
  | { kind: "retry"; reason: RetryReason; retryAfterMs: number | undefined }
  | { kind: "dead-letter"; reason: Exclude<FailureReason, "invalid_message" | "retries_exhausted"> };

/** API gateway throttling codes (HTTP 429 expected; Huawei docs spell the prefix both ways). */
export const THROTTLING_CODES = ["APIG.0308", "APIGW.0308"] as const;
/** Statuses that say "try again later". Any other 5xx is treated the same way. */
export const TRANSIENT_STATUSES = [408, 429, 500, 502, 503, 504] as const;
/** Permanent statuses and the reason recorded for them. */
export const PERMANENT_STATUSES = { 403: "forbidden", 404: "not_found" } as const;
/** "The certificate's status does not allow it": for cancel-cert, usually "nothing under review". */
export const STATUS_NOT_ALLOWED_CODE = "SCM.0010";

export interface ClassifyContext {
  /** True once the token was refreshed after a 401 for this record: a second 401 is final. */
  tokenRefreshed: boolean;
}

export function classifyAnswer(result: ScmResult, context: ClassifyContext): Decision {
  if (result.kind === "network") return { kind: "retry", reason: result.failure, retryAfterMs: undefined };

  const { status, errorCode, retryAfterMs } = result;
  if (errorCode !== undefined && (THROTTLING_CODES as readonly string[]).includes(errorCode)) {
    return { kind: "retry", reason: "throttled", retryAfterMs };
  }
  if (status >= 200 && status < 300) return { kind: "withdrawn" };
  if (status === 401) return context.tokenRefreshed ? { kind: "dead-letter", reason: "unauthorized" } : { kind: "refresh-token" };
  if (status in PERMANENT_STATUSES) {
    return { kind: "dead-letter", reason: PERMANENT_STATUSES[status as keyof typeof PERMANENT_STATUSES] };
  }
  if (status === 429) return { kind: "retry", reason: "throttled", retryAfterMs };
  if ((TRANSIENT_STATUSES as readonly number[]).includes(status) || status >= 500) {
    return { kind: "retry", reason: status === 408 ? "timeout" : "server_error", retryAfterMs };
  }
  if (status === 400 && errorCode === STATUS_NOT_ALLOWED_CODE) return { kind: "check-status" };
  // Any other answer (4xx business errors such as SCM.0003/SCM.0020, or a 3xx/1xx nobody expects):
  // sending it again will not change it.
  return { kind: "dead-letter", reason: "rejected" };
}

export type StatusCheck =
  | { kind: "already-withdrawn"; status: string }
  | { kind: "rejected"; status: string | undefined }
  | { kind: "retry"; reason: RetryReason; retryAfterMs: number | undefined };

/**
 * After `SCM.0010`: the certificate's details tell whether there is still an application under
 * review. A status in `alreadyWithdrawnStatuses` (default PAID, CANCELCHECKING) means the job is done.
 */
export function classifyStatusCheck(result: ScmResult, alreadyWithdrawnStatuses: readonly string[]): StatusCheck {
  if (result.kind === "network") return { kind: "retry", reason: result.failure, retryAfterMs: undefined };
  const { status, body, errorCode, retryAfterMs } = result;
  if (status >= 200 && status < 300) {
    const certStatus = typeof body === "object" && body !== null ? (body as Record<string, unknown>).status : undefined;
    if (typeof certStatus === "string" && alreadyWithdrawnStatuses.includes(certStatus)) return { kind: "already-withdrawn", status: certStatus };
    return { kind: "rejected", status: typeof certStatus === "string" ? certStatus : undefined };
  }
  const isThrottled = errorCode !== undefined && (THROTTLING_CODES as readonly string[]).includes(errorCode);
  if (isThrottled || status === 429) return { kind: "retry", reason: "throttled", retryAfterMs };
  if (status === 401) return { kind: "retry", reason: "token_unavailable", retryAfterMs };
  if ((TRANSIENT_STATUSES as readonly number[]).includes(status) || status >= 500) return { kind: "retry", reason: "server_error", retryAfterMs };
  // The details cannot be read for good (403, 404, other 4xx): the cancel-cert refusal stands.
  return { kind: "rejected", status: undefined };
}
