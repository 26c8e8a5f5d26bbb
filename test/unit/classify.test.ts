import { describe, expect, it } from "vitest";
import {
  cancelSucceeded,
  classifyAnswer,
  classifyStatusCheck,
  ERROR_CODES,
  THROTTLING_CODES,
  type CodeRule,
  type Decision,
} from "../../lib/classify.ts";
import type { ScmResult } from "../../lib/scm-client.ts";

const ID = "scs1000000000001";
const answer = (status: number, body: unknown = undefined, retryAfterMs?: number): ScmResult => {
  const record = typeof body === "object" && body !== null ? (body as Record<string, unknown>) : {};
  return {
    kind: "answer",
    status,
    body,
    errorCode: typeof record.error_code === "string" ? record.error_code : undefined,
    errorMsg: typeof record.error_msg === "string" ? record.error_msg : undefined,
    retryAfterMs,
    durationMs: 5,
  };
};
const network = (failure: "timeout" | "connection"): ScmResult => ({
  kind: "network",
  failure,
  message: "x",
  durationMs: 5,
});
const scm = (code: string) => ({ error_code: code, error_msg: "m" });
const classify = (result: ScmResult, tokenRefreshed = false) =>
  classifyAnswer(result, { tokenRefreshed, succeeded: cancelSucceeded(ID) });
const unexpected: Decision = { kind: "retry", reason: "unexpected_answer", retryAfterMs: undefined };

/** What the code table says a cancel-cert answer carrying the code leads to. */
function decisionOf(rule: CodeRule): Decision {
  if (rule.decision === "retry") return { kind: "retry", reason: rule.reason, retryAfterMs: undefined };
  if (rule.decision === "check-status") return { kind: "check-status" };
  return { kind: "dead-letter", reason: rule.reason };
}
const TABLE = Object.entries(ERROR_CODES) as [string, CodeRule][];

describe("classifyAnswer: the outcome table", () => {
  it.each<[string, ScmResult, boolean, Decision]>([
    ["200 success is withdrawn", answer(200, { cert_id: ID, message: "success" }), false, { kind: "withdrawn" }],
    ["first 401 refreshes the token", answer(401, scm("APIGW.0301")), false, { kind: "refresh-token" }],
    [
      "401 after a refresh is unauthorized",
      answer(401, scm("APIGW.0301")),
      true,
      { kind: "dead-letter", reason: "unauthorized" },
    ],
    ["403 is forbidden", answer(403, scm("SCM.0003")), false, { kind: "dead-letter", reason: "forbidden" }],
    ["404 is not_found", answer(404), false, { kind: "dead-letter", reason: "not_found" }],
    ["400 SCM.0010 checks the certificate's status", answer(400, scm("SCM.0010")), false, { kind: "check-status" }],
    ["400 SCM.0020 is not_found", answer(400, scm("SCM.0020")), false, { kind: "dead-letter", reason: "not_found" }],
    ["409 without a code is rejected", answer(409), false, { kind: "dead-letter", reason: "rejected" }],
    [
      "302 is rejected (a redirect is a misconfiguration)",
      answer(302),
      false,
      { kind: "dead-letter", reason: "rejected" },
    ],
    [
      "429 is throttled, keeping Retry-After",
      answer(429, scm("APIG.0308"), 2000),
      false,
      { kind: "retry", reason: "throttled", retryAfterMs: 2000 },
    ],
    [
      "APIGW.0308 under 403 is still throttling",
      answer(403, scm("APIGW.0308")),
      false,
      { kind: "retry", reason: "throttled", retryAfterMs: undefined },
    ],
    [
      "APIG.0308 under 400 is still throttling",
      answer(400, scm("APIG.0308")),
      false,
      { kind: "retry", reason: "throttled", retryAfterMs: undefined },
    ],
    [
      "500 is a server error",
      answer(500, scm("SCM.0016")),
      false,
      { kind: "retry", reason: "server_error", retryAfterMs: undefined },
    ],
    ["502 is a server error", answer(502), false, { kind: "retry", reason: "server_error", retryAfterMs: undefined }],
    [
      "503 keeps Retry-After",
      answer(503, undefined, 1000),
      false,
      { kind: "retry", reason: "server_error", retryAfterMs: 1000 },
    ],
    ["504 is a server error", answer(504), false, { kind: "retry", reason: "server_error", retryAfterMs: undefined }],
    ["408 is a timeout", answer(408), false, { kind: "retry", reason: "timeout", retryAfterMs: undefined }],
    [
      "no answer in time is a timeout",
      network("timeout"),
      false,
      { kind: "retry", reason: "timeout", retryAfterMs: undefined },
    ],
    [
      "a reset connection is retried",
      network("connection"),
      false,
      { kind: "retry", reason: "connection", retryAfterMs: undefined },
    ],
  ])("%s", (_name, result, tokenRefreshed, expected) => {
    expect(classify(result, tokenRefreshed)).toEqual(expected);
  });
});

describe("classifyAnswer: a 2xx is not proof of a withdrawal", () => {
  it.each<[string, ScmResult, Decision]>([
    ["a 200 HTML page", answer(200, undefined), unexpected],
    ["a 200 with invalid JSON (no parsed body)", answer(200, undefined), unexpected],
    ["a 204 with no body", answer(204), unexpected],
    [
      "a 200 with another certificate's cert_id",
      answer(200, { cert_id: "scs9999999999999", message: "success" }),
      unexpected,
    ],
    ["a 200 without message", answer(200, { cert_id: ID }), unexpected],
    ["a 200 with a numeric cert_id", answer(200, { cert_id: 1, message: "success" }), unexpected],
    ["a 201 with the success body", answer(201, { cert_id: ID, message: "success" }), unexpected],
    ["a 200 JSON array", answer(200, [{ cert_id: ID, message: "success" }]), unexpected],
    ["a 200 JSON string", answer(200, "success"), unexpected],
    ["a 200 with an unknown error_code", answer(200, scm("SCM.9999")), unexpected],
    [
      'a 200 {"error_code":"SCM.0010"} (by its code)',
      answer(200, { error_code: "SCM.0010" }),
      { kind: "check-status" },
    ],
    ["a 200 with SCM.0003 (by its code)", answer(200, scm("SCM.0003")), { kind: "dead-letter", reason: "forbidden" }],
    [
      "a 200 with APIG.0308 (by its code)",
      answer(200, scm("APIG.0308"), 3000),
      { kind: "retry", reason: "throttled", retryAfterMs: 3000 },
    ],
  ])("%s", (_name, result, expected) => {
    expect(classify(result)).toEqual(expected);
  });

  it("keeps Retry-After on an unexpected answer", () => {
    expect(classify(answer(200, undefined, 1500))).toEqual({
      kind: "retry",
      reason: "unexpected_answer",
      retryAfterMs: 1500,
    });
  });
});

describe("classifyAnswer: error_code first, whatever the status", () => {
  it.each(TABLE.flatMap(([code, rule]) => [400, 500].map((status) => [code, status, rule] as const)))(
    "%s under HTTP %i decides as the table says",
    (code, status, rule) => {
      expect(classify(answer(status, scm(code)))).toEqual(decisionOf(rule));
    },
  );

  it.each(TABLE.map(([code]) => code))("%s under 401 still means credentials", (code) => {
    expect(classify(answer(401, scm(code)))).toEqual({ kind: "refresh-token" });
    expect(classify(answer(401, scm(code)), true)).toEqual({ kind: "dead-letter", reason: "unauthorized" });
  });

  it.each<[number, Decision]>([
    [400, { kind: "dead-letter", reason: "rejected" }],
    [403, { kind: "dead-letter", reason: "forbidden" }],
    [404, { kind: "dead-letter", reason: "not_found" }],
    [500, { kind: "retry", reason: "server_error", retryAfterMs: undefined }],
    [503, { kind: "retry", reason: "server_error", retryAfterMs: undefined }],
  ])("an unknown code (SCM.0017) under HTTP %i falls back to the status", (status, expected) => {
    expect(classify(answer(status, scm("SCM.0017")))).toEqual(expected);
  });

  it("lists the throttling codes, the permanent business codes and the transient ones", () => {
    for (const code of THROTTLING_CODES)
      expect(ERROR_CODES[code]).toMatchObject({ decision: "retry", reason: "throttled" });
    const reasons = Object.fromEntries(
      TABLE.map(([code, rule]) => [code, rule.decision === "dead-letter" ? rule.reason : rule.decision]),
    );
    expect(reasons).toEqual({
      "APIG.0308": "retry",
      "APIGW.0308": "retry",
      "SCM.0010": "check-status",
      "SCM.0001": "rejected",
      "SCM.0002": "rejected",
      "SCM.0003": "forbidden",
      "SCM.0005": "rejected",
      "SCM.0008": "not_found",
      "SCM.0020": "not_found",
      "SCM.0000": "retry",
      "SCM.3000": "retry",
      "SCM.0016": "retry",
    });
  });

  it("does not take inherited object keys for codes", () => {
    expect(classify(answer(400, scm("constructor")))).toEqual({ kind: "dead-letter", reason: "rejected" });
    expect(classify(answer(500, scm("toString")))).toEqual({
      kind: "retry",
      reason: "server_error",
      retryAfterMs: undefined,
    });
  });
});

describe("classifyStatusCheck: after SCM.0010", () => {
  const statuses = ["PAID", "CANCELCHECKING"];
  it("acknowledges a certificate with no application under review as already withdrawn", () => {
    expect(classifyStatusCheck(answer(200, { id: "x", status: "PAID" }), statuses)).toEqual({
      kind: "already-withdrawn",
      status: "PAID",
    });
    expect(classifyStatusCheck(answer(200, { id: "x", status: "CANCELCHECKING" }), statuses)).toEqual({
      kind: "already-withdrawn",
      status: "CANCELCHECKING",
    });
  });
  it("rejects a certificate in any other status", () => {
    expect(classifyStatusCheck(answer(200, { status: "ISSUED" }), statuses)).toEqual({
      kind: "rejected",
      status: "ISSUED",
    });
    expect(classifyStatusCheck(answer(200, { status: "CHECKING" }), statuses)).toEqual({
      kind: "rejected",
      status: "CHECKING",
    });
  });
  it("uses the configured set of statuses", () => {
    expect(classifyStatusCheck(answer(200, { status: "PAID" }), ["REVOKED"])).toEqual({
      kind: "rejected",
      status: "PAID",
    });
  });
  it("retries when the details cannot be read for a transient reason", () => {
    expect(classifyStatusCheck(answer(503), statuses).kind).toBe("retry");
    expect(classifyStatusCheck(network("timeout"), statuses).kind).toBe("retry");
    expect(classifyStatusCheck(answer(429, scm("APIG.0308"), 3000), statuses)).toEqual({
      kind: "retry",
      reason: "throttled",
      retryAfterMs: 3000,
    });
  });
  it("keeps the refusal when the details are refused for good", () => {
    expect(classifyStatusCheck(answer(404), statuses)).toEqual({ kind: "rejected", status: undefined });
  });
  it.each<[string, ScmResult]>([
    ["an HTML page", answer(200, undefined)],
    ["a 204", answer(204)],
    ["a body without status", answer(200, { id: ID })],
    ["a numeric status", answer(200, { status: 3 })],
  ])("retries a 2xx details answer without a readable status (%s) as unexpected_answer", (_name, result) => {
    expect(classifyStatusCheck(result, statuses)).toEqual(unexpected);
  });
  it.each(TABLE.flatMap(([code, rule]) => [200, 400, 500].map((status) => [code, status, rule] as const)))(
    "%s under HTTP %i: the table's retries retry, anything else keeps the refusal",
    (code, status, rule) => {
      const expected =
        rule.decision === "retry"
          ? { kind: "retry", reason: rule.reason, retryAfterMs: undefined }
          : { kind: "rejected", status: undefined };
      expect(classifyStatusCheck(answer(status, scm(code)), statuses)).toEqual(expected);
    },
  );
});
