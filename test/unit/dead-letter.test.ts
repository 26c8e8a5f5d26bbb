import { describe, expect, it } from "vitest";
import { deadLetterAttributes, sqsSafe } from "../../lib/dead-letter.ts";

const letter = {
  body: '{"certificate_id":"scs1000000000004"}',
  reason: "forbidden" as const,
  sourceMessageId: "m-1",
  certificateId: "scs1000000000004",
  httpStatus: 403,
  errorCode: "SCM.0003",
  errorMsg: "no privilege",
  attempts: 1,
  receiveCount: 2,
  failedAt: new Date("2026-11-27T10:00:00.000Z"),
};

describe("dead-letter attributes", () => {
  it("carries every documented attribute with its type", () => {
    expect(deadLetterAttributes(letter)).toEqual({
      failure_reason: { DataType: "String", StringValue: "forbidden" },
      http_status: { DataType: "Number", StringValue: "403" },
      error_code: { DataType: "String", StringValue: "SCM.0003" },
      error_msg: { DataType: "String", StringValue: "no privilege" },
      certificate_id: { DataType: "String", StringValue: "scs1000000000004" },
      source_message_id: { DataType: "String", StringValue: "m-1" },
      attempts: { DataType: "Number", StringValue: "1" },
      receive_count: { DataType: "Number", StringValue: "2" },
      failed_at: { DataType: "String", StringValue: "2026-11-27T10:00:00.000Z" },
    });
  });

  it("stays within the SQS limit of 10 attributes", () => {
    expect(Object.keys(deadLetterAttributes(letter)).length).toBeLessThanOrEqual(10);
  });

  it("leaves out what is unknown instead of sending empty values (SQS refuses them)", () => {
    const attributes = deadLetterAttributes({
      ...letter,
      httpStatus: undefined,
      errorCode: undefined,
      errorMsg: "",
      certificateId: undefined,
    });
    expect(Object.keys(attributes)).not.toContain("http_status");
    expect(Object.keys(attributes)).not.toContain("error_code");
    expect(Object.keys(attributes)).not.toContain("error_msg");
    expect(Object.keys(attributes)).not.toContain("certificate_id");
  });

  it("cuts error_msg to 1024 characters", () => {
    expect(deadLetterAttributes({ ...letter, errorMsg: "e".repeat(5000) }).error_msg?.StringValue).toHaveLength(1024);
  });

  it("replaces characters SQS would refuse", () => {
    expect(sqsSafe("a\u0000b\u0007c\td")).toBe("a\uFFFDb\uFFFDc\td");
  });
});
