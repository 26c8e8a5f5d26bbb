import { describe, expect, it } from "vitest";
import { buildWithdrawalBody, parseWithdrawalBody } from "../../lib/message.ts";

describe("the withdrawal message schema", () => {
  it("accepts a minimal job and fills the defaults", () => {
    const parsed = parseWithdrawalBody('{"certificate_id":"scs1481110651012"}');
    expect(parsed).toEqual({ ok: true, request: { certificate_id: "scs1481110651012", source: "manual" } });
  });

  it("takes an optional requested_by (the audit trail); a message without one stays valid", () => {
    const arn = "arn:aws:iam::123456789012:user/alice";
    expect(
      parseWithdrawalBody(JSON.stringify({ certificate_id: "scs1000000000001", requested_by: arn })),
    ).toMatchObject({ ok: true, request: { requested_by: arn } });
    expect(parseWithdrawalBody(JSON.stringify({ certificate_id: "scs1000000000001" }))).toMatchObject({ ok: true });
    expect(parseWithdrawalBody(JSON.stringify({ certificate_id: "scs1000000000001", requested_by: "" }))).toMatchObject(
      { ok: false, problem: "requested_by must not be empty" },
    );
    expect(parseWithdrawalBody(JSON.stringify({ certificate_id: "scs1000000000001", requested_by: 7 }))).toMatchObject({
      ok: false,
      problem: "requested_by must be a string",
    });
  });

  it("keeps unknown fields", () => {
    const parsed = parseWithdrawalBody('{"certificate_id":"scs1481110651012","ticket":"OPS-1"}');
    expect(parsed.ok && parsed.request.ticket).toBe("OPS-1");
  });

  it.each([
    ["not JSON", "nope", "body is not JSON"],
    ["a JSON array", "[]", "body must be a JSON object"],
    ["a missing id", "{}", "certificate_id must be a string"],
    ["a short id", '{"certificate_id":"scs1"}', "certificate_id must be exactly 16 characters"],
    ["a path trick", '{"certificate_id":"../../../../etc/"}', "certificate_id must be exactly 16 characters"],
    ["an encoded slash", '{"certificate_id":"scs100000000%2F1"}', "certificate_id must be exactly 16 characters"],
    [
      "an unknown source",
      '{"certificate_id":"scs1481110651012","source":"robot"}',
      "source must be one of manual, bulk, cleanup",
    ],
    [
      "a long reason",
      JSON.stringify({ certificate_id: "scs1481110651012", reason: "x".repeat(257) }),
      "reason must be at most 256 characters",
    ],
    [
      "a bad date",
      '{"certificate_id":"scs1481110651012","requested_at":"yesterday"}',
      "requested_at must be an ISO-8601 date-time",
    ],
  ])("rejects %s with a precise problem", (_name, body, problem) => {
    const parsed = parseWithdrawalBody(body);
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.problem).toContain(problem);
  });

  it("reports the certificate id of an invalid job when there is one", () => {
    const parsed = parseWithdrawalBody('{"certificate_id":"short","source":"x"}');
    expect(!parsed.ok && parsed.certificateId).toBe("short");
  });

  it("builds bodies for producers and refuses bad ones", () => {
    expect(
      JSON.parse(buildWithdrawalBody({ certificate_id: "scs1481110651012", source: "bulk", batch_id: "b1" })),
    ).toEqual({
      certificate_id: "scs1481110651012",
      source: "bulk",
      batch_id: "b1",
    });
    expect(() => buildWithdrawalBody({ certificate_id: "nope" })).toThrow("certificate_id");
  });
});
