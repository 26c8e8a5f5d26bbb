import { describe, expect, it } from "vitest";
import { classifyAnswer, classifyStatusCheck, type Decision } from "../../lib/classify.ts";
import type { ScmResult } from "../../lib/scm-client.ts";

const answer = (status: number, body: Record<string, unknown> | undefined = undefined, retryAfterMs?: number): ScmResult => ({
  kind: "answer",
  status,
  body,
  errorCode: typeof body?.error_code === "string" ? body.error_code : undefined,
  errorMsg: typeof body?.error_msg === "string" ? body.error_msg : undefined,
  retryAfterMs,
  durationMs: 5,
});
const network = (failure: "timeout" | "connection"): ScmResult => ({ kind: "network", failure, message: "x", durationMs: 5 });
const scm = (code: string) => ({ error_code: code, error_msg: "m" });

describe("classifyAnswer: the outcome table", () => {
  it.each<[string, ScmResult, boolean, Decision]>([
    ["200 success is withdrawn", answer(200, { cert_id: "scs1000000000001", message: "success" }), false, { kind: "withdrawn" }],
    ["first 401 refreshes the token", answer(401, scm("APIGW.0301")), false, { kind: "refresh-token" }],
    ["401 after a refresh is unauthorized", answer(401, scm("APIGW.0301")), true, { kind: "dead-letter", reason: "unauthorized" }],
    ["403 is forbidden", answer(403, scm("SCM.0003")), false, { kind: "dead-letter", reason: "forbidden" }],
    ["404 is not_found", answer(404), false, { kind: "dead-letter", reason: "not_found" }],
    ["400 SCM.0010 checks the certificate's status", answer(400, scm("SCM.0010")), false, { kind: "check-status" }],
    ["400 SCM.0020 is rejected", answer(400, scm("SCM.0020")), false, { kind: "dead-letter", reason: "rejected" }],
    ["409 without a code is rejected", answer(409), false, { kind: "dead-letter", reason: "rejected" }],
    ["302 is rejected (a redirect is a misconfiguration)", answer(302), false, { kind: "dead-letter", reason: "rejected" }],
    ["429 is throttled, keeping Retry-After", answer(429, scm("APIG.0308"), 2000), false, { kind: "retry", reason: "throttled", retryAfterMs: 2000 }],
    ["APIGW.0308 under 403 is still throttling", answer(403, scm("APIGW.0308")), false, { kind: "retry", reason: "throttled", retryAfterMs: undefined }],
    ["APIG.0308 under 400 is still throttling", answer(400, scm("APIG.0308")), false, { kind: "retry", reason: "throttled", retryAfterMs: undefined }],
    ["500 is a server error", answer(500, scm("SCM.0016")), false, { kind: "retry", reason: "server_error", retryAfterMs: undefined }],
    ["502 is a server error", answer(502), false, { kind: "retry", reason: "server_error", retryAfterMs: undefined }],
    ["503 keeps Retry-After", answer(503, undefined, 1000), false, { kind: "retry", reason: "server_error", retryAfterMs: 1000 }],
    ["504 is a server error", answer(504), false, { kind: "retry", reason: "server_error", retryAfterMs: undefined }],
    ["408 is a timeout", answer(408), false, { kind: "retry", reason: "timeout", retryAfterMs: undefined }],
    ["no answer in time is a timeout", network("timeout"), false, { kind: "retry", reason: "timeout", retryAfterMs: undefined }],
    ["a reset connection is retried", network("connection"), false, { kind: "retry", reason: "connection", retryAfterMs: undefined }],
  ])("%s", (_name, result, tokenRefreshed, expected) => {
    expect(classifyAnswer(result, { tokenRefreshed })).toEqual(expected);
  });
});

describe("classifyStatusCheck: after SCM.0010", () => {
  const statuses = ["PAID", "CANCELCHECKING"];
  it("acknowledges a certificate with no application under review as already withdrawn", () => {
    expect(classifyStatusCheck(answer(200, { id: "x", status: "PAID" }), statuses)).toEqual({ kind: "already-withdrawn", status: "PAID" });
    expect(classifyStatusCheck(answer(200, { id: "x", status: "CANCELCHECKING" }), statuses)).toEqual({ kind: "already-withdrawn", status: "CANCELCHECKING" });
  });
  it("rejects a certificate in any other status", () => {
    expect(classifyStatusCheck(answer(200, { status: "ISSUED" }), statuses)).toEqual({ kind: "rejected", status: "ISSUED" });
    expect(classifyStatusCheck(answer(200, { status: "CHECKING" }), statuses)).toEqual({ kind: "rejected", status: "CHECKING" });
  });
  it("uses the configured set of statuses", () => {
    expect(classifyStatusCheck(answer(200, { status: "PAID" }), ["REVOKED"])).toEqual({ kind: "rejected", status: "PAID" });
  });
  it("retries when the details cannot be read for a transient reason", () => {
    expect(classifyStatusCheck(answer(503), statuses).kind).toBe("retry");
    expect(classifyStatusCheck(network("timeout"), statuses).kind).toBe("retry");
    expect(classifyStatusCheck(answer(429, scm("APIG.0308"), 3000), statuses)).toEqual({ kind: "retry", reason: "throttled", retryAfterMs: 3000 });
  });
  it("keeps the refusal when the details are refused for good", () => {
    expect(classifyStatusCheck(answer(404), statuses)).toEqual({ kind: "rejected", status: undefined });
  });
});
