/**
 * What an SCM answer means: the outcome table of docs/contract.md as pure functions.
 *
 * An answer (status, SCM `error_code`, body, `Retry-After`) or a network failure goes in; a decision
 * comes out. The caller switches on `kind`; nothing else in the project looks at HTTP statuses.
 *
 * A 2xx is not proof of success: a proxy's HTML page, a wrong `SCM_ENDPOINT` or a gateway that
 * answers 200 with an error body would otherwise acknowledge every job. Each call says what its
 * documented success looks like (`succeeded`); any other 2xx is an unexpected answer.
 */
import type { ScmAnswer, ScmResult } from "./scm-client.ts";

/** The `failure_reason` attribute of a dead-letter message. */
export const FAILURE_REASONS = [
  "invalid_message",
  "unauthorized",
  "forbidden",
  "not_found",
  "rejected",
  "unexpected_answer",
  "retries_exhausted",
] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

/** Why a call is worth trying again. */
export type RetryReason =
  | "throttled"
  | "server_error"
  | "timeout"
  | "connection"
  | "token_unavailable"
  /** A 2xx that is not the call's documented success (an HTML page, a 204, another certificate's id...). */
  | "unexpected_answer";

/** The reasons a single answer dead-letters with (the others come from the message or from running out of receives). */
export type PermanentReason = Exclude<FailureReason, "invalid_message" | "retries_exhausted" | "unexpected_answer">;

export type Decision =
  | { kind: "withdrawn" }
  /** `SCM.0010`: the status does not allow it; the certificate's details decide (already withdrawn or rejected). */
  | { kind: "check-status" }
  /** First 401: drop the cached token, re-read the secret, call once more. */
  | { kind: "refresh-token" }
  | { kind: "retry"; reason: RetryReason; retryAfterMs: number | undefined }
  | { kind: "dead-letter"; reason: PermanentReason };

/** API gateway throttling codes (HTTP 429 expected; Huawei docs spell the prefix both ways). */
export const THROTTLING_CODES = ["APIG.0308", "APIGW.0308"] as const;
/** Statuses that say "try again later". Any other 5xx is treated the same way. */
export const TRANSIENT_STATUSES = [408, 429, 500, 502, 503, 504] as const;
/** Permanent statuses (without a known `error_code`) and the reason recorded for them. */
export const PERMANENT_STATUSES = { 403: "forbidden", 404: "not_found" } as const;
/** "The certificate's status does not allow it": for cancel-cert, usually "nothing under review". */
export const STATUS_NOT_ALLOWED_CODE = "SCM.0010";

/**
 * `error_code` → decision, consulted before the HTTP status (except 401, which always means "credentials"):
 * SCM sends business errors as 400 in current documents and inside a 500 in older ones, and Huawei's
 * Terraform provider retries `SCM.0016` arriving as a 500. Codes not listed fall back to the status.
 * Sources: SCM error code table (support.huaweicloud.com api-ccm/scmEn.html), huaweicloudDocs/scm 错误码.md.
 */
export const ERROR_CODES = {
  "APIG.0308": { decision: "retry", reason: "throttled", meaning: "API gateway throttling" },
  "APIGW.0308": { decision: "retry", reason: "throttled", meaning: "API gateway throttling" },
  "SCM.0010": { decision: "check-status", meaning: "operation not allowed in the certificate's current status" },
  "SCM.0001": { decision: "dead-letter", reason: "rejected", meaning: "SCM service not open for the account" },
  "SCM.0002": { decision: "dead-letter", reason: "rejected", meaning: "tenant or domain id abnormal" },
  "SCM.0003": { decision: "dead-letter", reason: "forbidden", meaning: "no privilege for the certificate" },
  "SCM.0005": { decision: "dead-letter", reason: "rejected", meaning: "incorrect request parameter" },
  "SCM.0008": { decision: "dead-letter", reason: "not_found", meaning: "abnormal certificate id" },
  "SCM.0020": { decision: "dead-letter", reason: "not_found", meaning: "incorrect certificate id" },
  "SCM.0000": { decision: "retry", reason: "server_error", meaning: "system internal error" },
  "SCM.3000": { decision: "retry", reason: "server_error", meaning: "internal error" },
  "SCM.0016": { decision: "retry", reason: "server_error", meaning: "order exception (the order is still settling)" },
} as const satisfies Record<string, CodeRule>;

export type CodeRule =
  | { decision: "retry"; reason: "throttled" | "server_error"; meaning: string }
  | { decision: "check-status"; meaning: string }
  | { decision: "dead-letter"; reason: PermanentReason; meaning: string };

/** The table's rule for an `error_code`, or undefined for a code it does not list. */
export function ruleFor(errorCode: string | undefined): CodeRule | undefined {
  if (errorCode === undefined || !Object.hasOwn(ERROR_CODES, errorCode)) return undefined;
  return ERROR_CODES[errorCode as keyof typeof ERROR_CODES];
}

export interface ClassifyContext {
  /** True once the token was refreshed after a 401 for this record: a second 401 is final. */
  tokenRefreshed: boolean;
  /**
   * Whether a 2xx answer (without a listed `error_code`) is this call's documented success; any other
   * 2xx is retried as `unexpected_answer`. For cancel-cert: {@link cancelSucceeded}.
   */
  succeeded: (answer: ScmAnswer) => boolean;
}

/**
 * Cancel-cert's documented success: a 200 whose JSON body has `cert_id` equal to the certificate
 * asked for and a `message` (API page: `{"cert_id": "scs...", "message": "success"}`).
 */
export function cancelSucceeded(certificateId: string): (answer: ScmAnswer) => boolean {
  return ({ status, body }) => {
    if (status !== 200 || !isObject(body)) return false;
    return body.cert_id === certificateId && typeof body.message === "string";
  };
}

export function classifyAnswer(result: ScmResult, context: ClassifyContext): Decision {
  if (result.kind === "network") return { kind: "retry", reason: result.failure, retryAfterMs: undefined };

  const { status, errorCode, retryAfterMs } = result;
  if (status === 401)
    return context.tokenRefreshed ? { kind: "dead-letter", reason: "unauthorized" } : { kind: "refresh-token" };
  const rule = ruleFor(errorCode);
  if (rule !== undefined) {
    switch (rule.decision) {
      case "retry":
        return { kind: "retry", reason: rule.reason, retryAfterMs };
      case "check-status":
        return { kind: "check-status" };
      case "dead-letter":
        return { kind: "dead-letter", reason: rule.reason };
    }
  }
  if (status >= 200 && status < 300) {
    if (context.succeeded(result)) return { kind: "withdrawn" };
    return { kind: "retry", reason: "unexpected_answer", retryAfterMs };
  }
  if (status in PERMANENT_STATUSES) {
    return { kind: "dead-letter", reason: PERMANENT_STATUSES[status as keyof typeof PERMANENT_STATUSES] };
  }
  if (status === 429) return { kind: "retry", reason: "throttled", retryAfterMs };
  if ((TRANSIENT_STATUSES as readonly number[]).includes(status) || status >= 500) {
    return { kind: "retry", reason: status === 408 ? "timeout" : "server_error", retryAfterMs };
  }
  // Any other answer (a 4xx with an unknown code, or a 3xx/1xx nobody expects): sending it again will not change it.
  return { kind: "dead-letter", reason: "rejected" };
}

export type StatusCheck =
  | { kind: "already-withdrawn"; status: string }
  | { kind: "rejected"; status: string | undefined }
  | { kind: "retry"; reason: RetryReason; retryAfterMs: number | undefined };

/**
 * After `SCM.0010`: the certificate's details tell whether there is still an application under
 * review. A status in `alreadyWithdrawnStatuses` (default PAID, CANCELCHECKING) means the job is done.
 * The same code table applies; a 2xx without a readable `status` is an unexpected answer.
 */
export function classifyStatusCheck(result: ScmResult, alreadyWithdrawnStatuses: readonly string[]): StatusCheck {
  if (result.kind === "network") return { kind: "retry", reason: result.failure, retryAfterMs: undefined };
  const { status, body, errorCode, retryAfterMs } = result;
  if (status === 401) return { kind: "retry", reason: "token_unavailable", retryAfterMs };
  const rule = ruleFor(errorCode);
  if (rule?.decision === "retry") return { kind: "retry", reason: rule.reason, retryAfterMs };
  // A permanent code: the details cannot be read for good, and the cancel-cert refusal stands.
  if (rule !== undefined) return { kind: "rejected", status: undefined };
  if (status >= 200 && status < 300) {
    const certStatus = isObject(body) ? body.status : undefined;
    if (typeof certStatus !== "string") return { kind: "retry", reason: "unexpected_answer", retryAfterMs };
    if (alreadyWithdrawnStatuses.includes(certStatus)) return { kind: "already-withdrawn", status: certStatus };
    return { kind: "rejected", status: certStatus };
  }
  if (status === 429) return { kind: "retry", reason: "throttled", retryAfterMs };
  if ((TRANSIENT_STATUSES as readonly number[]).includes(status) || status >= 500)
    return { kind: "retry", reason: "server_error", retryAfterMs };
  // The details cannot be read for good (403, 404, other 4xx): the cancel-cert refusal stands.
  return { kind: "rejected", status: undefined };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
