/**
 * The worker at its edges, through the real handler: malformed events never take valid records down,
 * and every external call is bounded by the invocation's deadline (a hanging Secrets Manager or DLQ
 * leaves the unsettled records for retry, naming what hung, and keeps the settled ones).
 */
import type { SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { DEMO } from "../../local/demo-certificates.ts";
import { faults, seedDemoScenario } from "../../local/scm-simulator.ts";
import { startHangingServer, type HangingServer } from "../support/hanging-server.ts";
import { lambdaContext, sqsEvent, sqsRecord } from "../support/lambda.ts";
import { capturedOutput, jsonLinesSince } from "../support/secret-guard.ts";
import { IAM_PASSWORD, TEST_TOKEN } from "../support/secrets.ts";
import { attributesOf, SECRET_ID, startStack, type Stack } from "../support/stack.ts";
import { coldStartWithdraw, restoreEnv, type WithdrawHandler as Handler } from "../support/withdraw-handler.ts";

let stack: Stack;
let hanging: HangingServer;
const coldStart = (env: Record<string, string> = {}) => coldStartWithdraw({ ...stack.env, ...env });

const job = (certificateId: string) => ({ certificate_id: certificateId, source: "manual" });
const failedIds = (response: SQSBatchResponse) => response.batchItemFailures.map((f) => f.itemIdentifier).sort();

beforeAll(async () => {
  stack = await startStack();
  hanging = await startHangingServer();
});
afterAll(async () => {
  restoreEnv();
  await hanging.close();
  await stack.close();
});
beforeEach(async () => {
  stack.sim.reset({ certificates: true });
  seedDemoScenario(stack.sim);
  stack.secrets.recover();
  stack.secrets.setSecret(SECRET_ID, TEST_TOKEN);
  await stack.drainDlq();
});

describe("malformed events", () => {
  let handler: Handler;
  beforeAll(async () => {
    handler = await coldStart();
  });

  it("skips a null record with a log line and never throws", async () => {
    const mark = capturedOutput().length;
    const response = await handler({ Records: [null] } as unknown as SQSEvent, lambdaContext());
    expect(response).toEqual({ batchItemFailures: [] });
    expect(jsonLinesSince(mark).map((l) => l.event)).toContain("record_skipped");
    expect(jsonLinesSince(mark).map((l) => l.event)).not.toContain("batch_crashed");
  });

  it("withdraws the valid record of [null, valid, record without messageId]", async () => {
    const valid = sqsRecord(job(DEMO.withdrawn));
    const { messageId: _, ...nameless } = sqsRecord(job(DEMO.forbidden));
    const response = await handler({ Records: [null, valid, nameless] } as unknown as SQSEvent, lambdaContext());
    expect(response.batchItemFailures).toEqual([]);
    expect(stack.sim.withdrawals(DEMO.withdrawn)).toBe(1);
    // The record without a messageId cannot be acknowledged or reported: it is skipped, not processed.
    expect(stack.sim.calls.filter((c) => c.certificateId === DEMO.forbidden)).toEqual([]);
    expect(await stack.drainDlq()).toEqual([]);
  });

  it.each([
    ["a number", 123, "123"],
    ["an object", { certificate_id: DEMO.withdrawn }, JSON.stringify({ certificate_id: DEMO.withdrawn })],
    ["missing", undefined, "null"],
    ["empty", "", '""'],
  ])(
    "dead-letters a record whose body is %s as invalid_message, the original kept as JSON",
    async (_name, body, sent) => {
      const record = { ...sqsRecord("x"), body } as unknown as SQSRecord;
      if (body === undefined) delete (record as { body?: unknown }).body;
      const valid = sqsRecord(job(DEMO.withdrawn));
      const response = await handler(sqsEvent(record, valid), lambdaContext());
      expect(response.batchItemFailures).toEqual([]);
      expect(stack.sim.withdrawals(DEMO.withdrawn)).toBe(1);
      const [letter, ...rest] = await stack.drainDlq();
      expect(rest).toEqual([]);
      expect(letter!.Body).toBe(sent);
      expect(attributesOf(letter!)).toMatchObject({
        failure_reason: "invalid_message",
        source_message_id: record.messageId,
        body_encoding: "json",
      });
    },
  );
});

describe("deadlines", () => {
  it("leaves valid records for retry as deadline:secrets_manager when Secrets Manager hangs; invalid ones dead-lettered", async () => {
    const handler = await coldStart({ AWS_ENDPOINT_URL_SECRETS_MANAGER: hanging.url });
    const valid = sqsRecord(job(DEMO.withdrawn));
    const invalid = sqsRecord("not json");
    const mark = capturedOutput().length;
    const started = Date.now();
    // 2.5 s left, 1 s margin: the worker gives up on the secret after about 1.5 s, before middy's own timeout.
    const response = await handler(sqsEvent(valid, invalid), lambdaContext(2500));
    expect(Date.now() - started).toBeLessThan(2400);
    expect(failedIds(response)).toEqual([valid.messageId]);
    expect(stack.sim.calls).toEqual([]);
    const lines = jsonLinesSince(mark);
    expect(lines.map((l) => l.event)).not.toContain("batch_crashed");
    expect(lines.find((l) => l.event === "withdrawal_left_for_retry")).toMatchObject({
      messageId: valid.messageId,
      reason: "deadline:secrets_manager",
    });
    const [letter] = await stack.drainDlq();
    expect(attributesOf(letter!)).toMatchObject({
      failure_reason: "invalid_message",
      source_message_id: invalid.messageId,
    });
  });

  it("keeps a withdrawal acknowledged, leaves an unsent dead letter for retry (deadline:dead_letter) when the DLQ hangs", async () => {
    const handler = await coldStart({ AWS_ENDPOINT_URL_SQS: hanging.url });
    const forbidden = sqsRecord(job(DEMO.forbidden));
    const withdrawn = sqsRecord(job(DEMO.withdrawn));
    const mark = capturedOutput().length;
    const started = Date.now();
    const response = await handler(sqsEvent(forbidden, withdrawn), lambdaContext(2500));
    expect(Date.now() - started).toBeLessThan(2500);
    expect(failedIds(response)).toEqual([forbidden.messageId]);
    expect(stack.sim.withdrawals(DEMO.withdrawn)).toBe(1);
    const lines = jsonLinesSince(mark);
    expect(lines.map((l) => l.event)).not.toContain("batch_crashed");
    expect(lines.find((l) => l.messageId === forbidden.messageId && l.event === "dead_letter_failed")).toMatchObject({
      reason: "forbidden",
      retryReason: "deadline:dead_letter",
    });
    expect(lines.find((l) => l.messageId === withdrawn.messageId && l.event === "withdrawal_succeeded")).toBeTruthy();
  });
});

describe("deadlines, throttling", () => {
  it("leaves a record throttled until the deadline as throttled (the rate limiter's wait is no hung call)", async () => {
    const handler = await coldStart({ MAX_ATTEMPTS: "10", RETRY_BASE_DELAY_MS: "1", RETRY_MAX_DELAY_MS: "1" });
    stack.sim.injectAlways(DEMO.withdrawn, faults.throttle());
    const record = sqsRecord(job(DEMO.withdrawn));
    const mark = capturedOutput().length;
    const response = await handler(sqsEvent(record), lambdaContext(4000));
    expect(failedIds(response)).toEqual([record.messageId]);
    const lines = jsonLinesSince(mark);
    expect(lines.find((l) => l.event === "withdrawal_left_for_retry")).toMatchObject({
      reason: "throttled",
      status: 429,
    });
  });
});

describe("deadlines, IAM", () => {
  it("leaves the batch for retry as deadline:iam when the IAM token exchange hangs", async () => {
    const credentials = { domain: "acme", user: "scm-bot", password: IAM_PASSWORD, endpoint: hanging.url };
    stack.secrets.setSecret(SECRET_ID, JSON.stringify({ iam: credentials }));
    const handler = await coldStart({ IAM_TIMEOUT_MS: "60000" });
    const record = sqsRecord(job(DEMO.withdrawn));
    const mark = capturedOutput().length;
    const started = Date.now();
    const response = await handler(sqsEvent(record), lambdaContext(2500));
    expect(Date.now() - started).toBeLessThan(2400);
    expect(failedIds(response)).toEqual([record.messageId]);
    const lines = jsonLinesSince(mark);
    expect(lines.find((l) => l.event === "token_unavailable")).toMatchObject({ code: "deadline" });
    expect(lines.find((l) => l.event === "withdrawal_left_for_retry")).toMatchObject({ reason: "deadline:iam" });
  });
});

describe("when the secret cannot be read", () => {
  it("dead-letters the invalid bodies anyway and leaves the valid ones for retry", async () => {
    const handler = await coldStart();
    stack.secrets.failNext(Infinity);
    const valid = sqsRecord(job(DEMO.withdrawn));
    const invalid = sqsRecord('{"certificate_id":"nope"}');
    const response = await handler(sqsEvent(valid, invalid), lambdaContext());
    expect(failedIds(response)).toEqual([valid.messageId]);
    expect(stack.sim.calls).toEqual([]);
    const letters = await stack.drainDlq();
    expect(letters.map((l) => [l.Body, attributesOf(l).failure_reason])).toEqual([[invalid.body, "invalid_message"]]);
  });
});
