/**
 * SCM's answers as they really come, through the REAL handler against the simulator over HTTP:
 * a 2xx is not proof of a withdrawal, and business errors are decided by `error_code` whether SCM
 * sends them as 4xx (current documents) or inside a 500 (older ones).
 */
import type { Context, SQSBatchResponse, SQSEvent } from "aws-lambda";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { DEMO } from "../../local/demo-certificates.ts";
import { faults, ODD_SUCCESSES, seedDemoScenario } from "../../local/scm-simulator.ts";
import { lambdaContext, sqsEvent, sqsRecord } from "../support/lambda.ts";
import { capturedOutput } from "../support/secret-guard.ts";
import { TEST_TOKEN } from "../support/secrets.ts";
import { attributesOf, SECRET_ID, startStack, type Stack } from "../support/stack.ts";

type Handler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;

const MAX_RECEIVE_COUNT = 5;
let stack: Stack;
let handler: Handler;
const savedEnv = { ...process.env };

const job = (certificateId: string) => ({ certificate_id: certificateId, source: "manual" });
const failedIds = (response: SQSBatchResponse) => response.batchItemFailures.map((f) => f.itemIdentifier).sort();
const callsOf = (id: string) =>
  stack.sim.calls.filter((c) => c.certificateId === id).map((c) => `${c.kind} ${c.status}`);
/** The handler's JSON log lines about one record. */
const linesAbout = (messageId: string) =>
  capturedOutput()
    .split("\n")
    .filter((line) => line.includes(messageId) && line.startsWith("{"))
    .map((line) => JSON.parse(line) as Record<string, unknown>);

beforeAll(async () => {
  stack = await startStack({ env: { MAX_RECEIVE_COUNT: String(MAX_RECEIVE_COUNT) } });
  process.env = { ...savedEnv, ...stack.env };
  vi.resetModules();
  handler = (await import("../../handlers/withdraw.ts")).handler as unknown as Handler;
});
afterAll(async () => {
  process.env = savedEnv;
  await stack.close();
});
beforeEach(async () => {
  stack.sim.reset({ certificates: true });
  stack.sim.businessErrorsAs500 = false;
  seedDemoScenario(stack.sim);
  stack.secrets.setSecret(SECRET_ID, TEST_TOKEN);
  await stack.drainDlq();
});

describe("a 2xx is not proof of a withdrawal", () => {
  const odd = ODD_SUCCESSES.filter((kind) => kind !== "error-code");

  it.each(odd)("leaves the record for retry on a %s answer, logging the status and why", async (kind) => {
    stack.sim.injectAlways(DEMO.withdrawn, faults.oddSuccess(kind));
    const record = sqsRecord(job(DEMO.withdrawn), { receiveCount: 1 });
    const response = await handler(sqsEvent(record), lambdaContext());
    expect(failedIds(response)).toEqual([record.messageId]);
    expect(await stack.drainDlq()).toEqual([]);
    expect(stack.sim.certificate(DEMO.withdrawn)?.status).toBe("CHECKING");
    const lines = linesAbout(record.messageId);
    expect(lines.map((l) => l.event)).not.toContain("withdrawal_succeeded");
    const left = lines.find((l) => l.event === "withdrawal_left_for_retry");
    expect(left).toMatchObject({ reason: "unexpected_answer", status: kind === "no-content" ? 204 : 200 });
    const retrying = lines.find((l) => l.event === "withdrawal_retrying");
    expect(retrying).toMatchObject({ reason: "unexpected_answer" });
  });

  it.each(odd)(
    "dead-letters a %s answer as unexpected_answer once receives run out, with an excerpt of the body",
    async (kind) => {
      stack.sim.injectAlways(DEMO.withdrawn, faults.oddSuccess(kind));
      const record = sqsRecord(job(DEMO.withdrawn), { receiveCount: MAX_RECEIVE_COUNT });
      const response = await handler(sqsEvent(record), lambdaContext());
      expect(response.batchItemFailures).toEqual([]);
      const [letter, ...rest] = await stack.drainDlq();
      expect(rest).toEqual([]);
      expect(letter!.Body).toBe(record.body);
      const attributes = attributesOf(letter!);
      expect(attributes).toMatchObject({
        failure_reason: "unexpected_answer",
        http_status: kind === "no-content" ? "204" : "200",
      });
      const excerpt = {
        html: /^<!DOCTYPE html>.*Please sign in/,
        "invalid-json": /^\{"cert_id":"scs$/,
        "wrong-cert-id": /"cert_id":"scs0000000000000"/,
        "no-content": undefined,
      }[kind];
      if (excerpt === undefined) expect(attributes.error_msg).toBeUndefined();
      else expect(attributes.error_msg).toMatch(excerpt);
    },
  );

  it("quotes the start of a 2xx too large to read (a login page over 64 KiB)", async () => {
    stack.sim.injectAlways(DEMO.withdrawn, faults.huge(200_000));
    const record = sqsRecord(job(DEMO.withdrawn), { receiveCount: MAX_RECEIVE_COUNT });
    await handler(sqsEvent(record), lambdaContext());
    const [letter] = await stack.drainDlq();
    const attributes = attributesOf(letter!);
    expect(attributes).toMatchObject({ failure_reason: "unexpected_answer", http_status: "200" });
    expect(attributes.error_msg).toMatch(new RegExp(`^\\{"cert_id":"${DEMO.withdrawn}","message":"success"`));
    expect(attributes.error_msg!.length).toBeLessThanOrEqual(201);
  });

  it("keeps unexpected_answer as the DLQ reason when the wait before the next call does not fit in the invocation", async () => {
    const page = "<html><body>Please sign in</body></html>";
    stack.sim.injectAlways(DEMO.withdrawn, faults.answer(200, page, { "retry-after": "3600" }));
    const record = sqsRecord(job(DEMO.withdrawn), { receiveCount: MAX_RECEIVE_COUNT });
    await handler(sqsEvent(record), lambdaContext());
    const [letter] = await stack.drainDlq();
    expect(attributesOf(letter!)).toMatchObject({ failure_reason: "unexpected_answer", http_status: "200" });
  });

  it("names the answer, not a deadline, when SCM's Retry-After is longer than the invocation", async () => {
    stack.sim.injectAlways(DEMO.withdrawn, faults.throttle(3600));
    const record = sqsRecord(job(DEMO.withdrawn));
    const response = await handler(sqsEvent(record), lambdaContext());
    expect(failedIds(response)).toEqual([record.messageId]);
    expect(callsOf(DEMO.withdrawn)).toEqual(["cancel 429"]);
    const left = linesAbout(record.messageId).find((l) => l.event === "withdrawal_left_for_retry");
    expect(left).toMatchObject({ reason: "throttled", status: 429, errorCode: "APIG.0308" });
  });

  it("withdraws once the real answer follows an odd one", async () => {
    stack.sim.inject(DEMO.withdrawn, faults.oddSuccess("html"));
    const response = await handler(sqsEvent(sqsRecord(job(DEMO.withdrawn))), lambdaContext());
    expect(response.batchItemFailures).toEqual([]);
    expect(callsOf(DEMO.withdrawn)).toEqual(["cancel 200", "cancel 200"]);
    expect(stack.sim.withdrawals(DEMO.withdrawn)).toBe(1);
  });

  it('decides a 200 {"error_code":"SCM.0010"} by its code: the status check', async () => {
    stack.sim.inject(DEMO.alreadyWithdrawn, faults.oddSuccess("error-code"));
    stack.sim.inject(DEMO.withdrawn, faults.oddSuccess("error-code"));
    const already = sqsRecord(job(DEMO.alreadyWithdrawn));
    const underReview = sqsRecord(job(DEMO.withdrawn));
    const response = await handler(sqsEvent(already, underReview), lambdaContext());
    expect(response.batchItemFailures).toEqual([]);
    expect(callsOf(DEMO.alreadyWithdrawn)).toEqual(["cancel 200", "detail 200"]);
    // SCM said "not allowed" while the details still show CHECKING: the refusal stands.
    const [letter] = await stack.drainDlq();
    expect(attributesOf(letter!)).toMatchObject({
      failure_reason: "rejected",
      source_message_id: underReview.messageId,
      error_code: "SCM.0010",
    });
    expect(stack.sim.withdrawals(DEMO.withdrawn)).toBe(0);
  });

  it("cuts the token out of the excerpt, in any letter case", async () => {
    const echo = `<html>token ${TEST_TOKEN} / ${TEST_TOKEN.toLowerCase()} / ${encodeURIComponent(TEST_TOKEN)}</html>`;
    stack.sim.injectAlways(DEMO.withdrawn, faults.answer(200, echo));
    const record = sqsRecord(job(DEMO.withdrawn), { receiveCount: MAX_RECEIVE_COUNT });
    await handler(sqsEvent(record), lambdaContext());
    const [letter] = await stack.drainDlq();
    const errorMsg = attributesOf(letter!).error_msg!;
    expect(errorMsg).toContain("[redacted]");
    expect(errorMsg.toLowerCase()).not.toContain(TEST_TOKEN.toLowerCase());
    expect(capturedOutput().toLowerCase()).not.toContain(TEST_TOKEN.toLowerCase());
  });
});

describe("business errors decided by error_code, as 400 and as 500", () => {
  it.each([false, true])("gives the same outcomes with business errors as 500: %s", async (as500) => {
    stack.sim.businessErrorsAs500 = as500;
    const records = {
      already: sqsRecord(job(DEMO.alreadyWithdrawn)),
      rejected: sqsRecord(job(DEMO.rejected)),
      forbidden: sqsRecord(job(DEMO.forbidden)),
      notFound: sqsRecord(job(DEMO.notFound)),
    };
    const response = await handler(sqsEvent(...Object.values(records)), lambdaContext());
    expect(response.batchItemFailures).toEqual([]);
    const status = as500 ? 500 : undefined;
    expect(callsOf(DEMO.alreadyWithdrawn)).toEqual([`cancel ${status ?? 400}`, "detail 200"]);
    expect(callsOf(DEMO.rejected)).toEqual([`cancel ${status ?? 400}`, "detail 200"]);
    expect(callsOf(DEMO.forbidden)).toEqual([`cancel ${status ?? 403}`]);
    expect(callsOf(DEMO.notFound)).toEqual([`cancel ${status ?? 404}`]);
    const letters = Object.fromEntries(
      (await stack.drainDlq()).map((l) => [attributesOf(l).source_message_id, attributesOf(l).failure_reason]),
    );
    expect(letters).toEqual({
      [records.rejected.messageId]: "rejected",
      [records.forbidden.messageId]: "forbidden",
      [records.notFound.messageId]: "not_found",
    });
  });

  it("dead-letters a 500 SCM.0008 at once as not_found (not MAX_ATTEMPTS calls per receive and retries_exhausted)", async () => {
    stack.sim.injectAlways(DEMO.withdrawn, faults.scmError(500, "SCM.0008", "abnormal certificate id"));
    const record = sqsRecord(job(DEMO.withdrawn));
    const response = await handler(sqsEvent(record), lambdaContext());
    expect(response.batchItemFailures).toEqual([]);
    expect(callsOf(DEMO.withdrawn)).toEqual(["cancel 500"]);
    const [letter] = await stack.drainDlq();
    expect(attributesOf(letter!)).toMatchObject({
      failure_reason: "not_found",
      http_status: "500",
      error_code: "SCM.0008",
    });
  });

  it.each([400, 500])("retries SCM.0016 under %i, then withdraws", async (status) => {
    stack.sim.inject(DEMO.withdrawn, faults.scmError(status, "SCM.0016", "order exception"));
    const response = await handler(sqsEvent(sqsRecord(job(DEMO.withdrawn))), lambdaContext());
    expect(response.batchItemFailures).toEqual([]);
    expect(callsOf(DEMO.withdrawn)).toEqual([`cancel ${status}`, "cancel 200"]);
  });

  it("keeps a per-certificate 500 shape to that certificate", async () => {
    stack.sim.addCertificate({ id: DEMO.rejected, status: "ISSUED", businessErrorsAs500: true });
    const response = await handler(
      sqsEvent(sqsRecord(job(DEMO.rejected)), sqsRecord(job(DEMO.alreadyWithdrawn))),
      lambdaContext(),
    );
    expect(response.batchItemFailures).toEqual([]);
    expect(callsOf(DEMO.rejected)).toEqual(["cancel 500", "detail 200"]);
    expect(callsOf(DEMO.alreadyWithdrawn)).toEqual(["cancel 400", "detail 200"]);
  });
});
