/**
 * The real exported handler, driven with Lambda-shaped events: real SDK clients talk to fauxqs (the
 * DLQ) and the local Secrets Manager endpoint, and the SCM client talks to the simulator over HTTP.
 */
import type { SQSBatchResponse } from "aws-lambda";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { DEMO } from "../../local/demo-certificates.ts";
import { faults, seedDemoScenario } from "../../local/scm-simulator.ts";
import { lambdaContext, sqsEvent, sqsRecord } from "../support/lambda.ts";
import { capturedOutput } from "../support/secret-guard.ts";
import { ROTATED_TOKEN, TEST_TOKEN } from "../support/secrets.ts";
import { attributesOf, SECRET_ID, startStack, type Stack } from "../support/stack.ts";
import { coldStartWithdraw, restoreEnv, type WithdrawHandler as Handler } from "../support/withdraw-handler.ts";

let stack: Stack;
/** Imports the handler as a new container would (fresh module state: token cache, clients). */
const coldStart = (env: Record<string, string> = {}) => coldStartWithdraw({ ...stack.env, ...env });

const job = (certificateId: string, extra: Record<string, unknown> = {}) => ({
  certificate_id: certificateId,
  source: "manual",
  ...extra,
});
const failedIds = (response: SQSBatchResponse) => response.batchItemFailures.map((f) => f.itemIdentifier).sort();
const cancelCalls = (id?: string) =>
  stack.sim.calls.filter((c) => c.kind === "cancel" && (id === undefined || c.certificateId === id));

beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  restoreEnv();
  await stack.close();
});
beforeEach(async () => {
  stack.sim.reset({ certificates: true });
  seedDemoScenario(stack.sim);
  stack.secrets.recover();
  stack.secrets.setSecret(SECRET_ID, TEST_TOKEN);
  await stack.drainDlq();
});

describe("the outcome table, one record at a time", () => {
  let handler: Handler;
  beforeAll(async () => {
    handler = await coldStart();
  });

  it("withdraws an application under review and acknowledges the record", async () => {
    const record = sqsRecord(job(DEMO.withdrawn));
    const response = await handler(sqsEvent(record), lambdaContext());
    expect(response.batchItemFailures).toEqual([]);
    expect(stack.sim.withdrawals(DEMO.withdrawn)).toBe(1);
    expect(await stack.drainDlq()).toEqual([]);
  });

  it.each([
    ["forbidden", DEMO.forbidden, "403", "SCM.0003"],
    ["not_found", DEMO.notFound, "404", "SCM.0020"],
    ["rejected", DEMO.rejected, "400", "SCM.0010"],
  ])("dead-letters a %s answer without retrying", async (reason, id, status, errorCode) => {
    const record = sqsRecord(job(id, { batch_id: "b-1" }), { receiveCount: 2 });
    const response = await handler(sqsEvent(record), lambdaContext());
    expect(response.batchItemFailures).toEqual([]);
    expect(cancelCalls(id)).toHaveLength(1);
    const [letter, ...rest] = await stack.drainDlq();
    expect(rest).toEqual([]);
    expect(letter!.Body).toBe(record.body);
    expect(attributesOf(letter!)).toMatchObject({
      failure_reason: reason,
      http_status: status,
      error_code: errorCode,
      certificate_id: id,
      source_message_id: record.messageId,
      attempts: "1",
      receive_count: "2",
    });
    expect(Date.parse(attributesOf(letter!).failed_at!)).toBeGreaterThan(Date.now() - 60_000);
    expect(letter!.MessageAttributes!.http_status!.DataType).toBe("Number");
  });

  it("acknowledges a certificate that was already withdrawn (SCM.0010, status PAID) without dead-lettering it", async () => {
    const response = await handler(sqsEvent(sqsRecord(job(DEMO.alreadyWithdrawn))), lambdaContext());
    expect(response.batchItemFailures).toEqual([]);
    expect(await stack.drainDlq()).toEqual([]);
    expect(stack.sim.calls.filter((c) => c.certificateId === DEMO.alreadyWithdrawn).map((c) => c.kind)).toEqual([
      "cancel",
      "detail",
    ]);
    expect(capturedOutput()).toContain('"event":"withdrawal_already_withdrawn"');
  });

  it.each([
    ["a body that is not JSON", "withdraw scs1000000000001 please"],
    ["a body that breaks the schema", '{"certificate_id":"scs100"}'],
    ["a blank body", " \n"],
    ["a JSON array", "[1,2]"],
  ])("dead-letters %s as invalid_message, byte for byte, without calling SCM", async (_name, body) => {
    const record = sqsRecord(body);
    const response = await handler(sqsEvent(record), lambdaContext());
    expect(response.batchItemFailures).toEqual([]);
    expect(stack.sim.calls).toEqual([]);
    const [letter] = await stack.drainDlq();
    expect(letter!.Body ?? "").toBe(body);
    expect(attributesOf(letter!).failure_reason).toBe("invalid_message");
    expect(attributesOf(letter!).error_msg).toBeTruthy();
  });

  it.each([
    "../../etc/passwd",
    "scs1000000000001/../x",
    "%2e%2e%2fcancel-cert",
    "scs100000000000\u0000",
    "scs10000000000011",
    " scs1000000000001",
  ])("never puts the hostile id %j into a URL", async (hostile) => {
    const response = await handler(sqsEvent(sqsRecord({ certificate_id: hostile })), lambdaContext());
    expect(response.batchItemFailures).toEqual([]);
    expect(stack.sim.calls).toEqual([]);
    const [letter] = await stack.drainDlq();
    expect(attributesOf(letter!).failure_reason).toBe("invalid_message");
  });

  it("retries transient answers inside the invocation and then withdraws", async () => {
    const response = await handler(sqsEvent(sqsRecord(job(DEMO.transientThenWithdrawn))), lambdaContext());
    expect(response.batchItemFailures).toEqual([]);
    expect(cancelCalls(DEMO.transientThenWithdrawn).map((c) => c.status)).toEqual([503, 503, 200]);
  });

  it.each([
    ["500", faults.internalError()],
    ["502", faults.badGateway()],
    ["503", faults.unavailable()],
    ["504", faults.gatewayTimeout()],
    ["429 APIG.0308", faults.throttle()],
    ["a reset connection", faults.reset()],
    ["no answer within SCM_TIMEOUT_MS", faults.hang()],
  ])("leaves a record on the queue after MAX_ATTEMPTS of %s", async (_name, fault) => {
    stack.sim.injectAlways(DEMO.withdrawn, fault);
    const record = sqsRecord(job(DEMO.withdrawn), { receiveCount: 1 });
    const response = await handler(sqsEvent(record), lambdaContext());
    expect(failedIds(response)).toEqual([record.messageId]);
    expect(cancelCalls(DEMO.withdrawn)).toHaveLength(3);
    expect(await stack.drainDlq()).toEqual([]);
  });

  it("dead-letters a still-transient record as retries_exhausted once ApproximateReceiveCount reaches MAX_RECEIVE_COUNT", async () => {
    const record = sqsRecord(job(DEMO.alwaysFailing), { receiveCount: 5 });
    const response = await handler(sqsEvent(record), lambdaContext());
    expect(response.batchItemFailures).toEqual([]);
    const [letter] = await stack.drainDlq();
    expect(letter!.Body).toBe(record.body);
    expect(attributesOf(letter!)).toMatchObject({
      failure_reason: "retries_exhausted",
      http_status: "500",
      error_code: "SCM.0500",
      attempts: "3",
      receive_count: "5",
    });
  });

  it("honours Retry-After on a throttled call", async () => {
    const started = Date.now();
    const response = await handler(sqsEvent(sqsRecord(job(DEMO.throttledThenWithdrawn))), lambdaContext());
    expect(response.batchItemFailures).toEqual([]);
    const [first, second] = cancelCalls(DEMO.throttledThenWithdrawn);
    expect(first!.status).toBe(429);
    expect(second!.status).toBe(200);
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(990);
    expect(Date.now() - started).toBeGreaterThanOrEqual(990);
  });

  it("never retries past the Lambda deadline", async () => {
    const handler = await coldStart({ SCM_TIMEOUT_MS: "5000" });
    stack.sim.injectAlways(DEMO.withdrawn, faults.hang());
    const record = sqsRecord(job(DEMO.withdrawn));
    const started = Date.now();
    // 1.6 s left, 1 s kept as margin: one call of at most 600 ms, no second one.
    const response = await handler(sqsEvent(record), lambdaContext(1600));
    expect(Date.now() - started).toBeLessThan(1200);
    expect(failedIds(response)).toEqual([record.messageId]);
    expect(cancelCalls(DEMO.withdrawn)).toHaveLength(1);
  });

  it("makes one SCM call for two jobs about the same certificate in one batch", async () => {
    const a = sqsRecord(job(DEMO.withdrawn, { request_id: "r-a" }));
    const b = sqsRecord(job(DEMO.withdrawn, { request_id: "r-b" }));
    const response = await handler(sqsEvent(a, b), lambdaContext());
    expect(response.batchItemFailures).toEqual([]);
    expect(cancelCalls(DEMO.withdrawn)).toHaveLength(1);
  });
});

describe("a mixed batch of 10", () => {
  it("gives every record exactly one fate", async () => {
    const handler = await coldStart({ MAX_RECEIVE_COUNT: "5" });
    const records = {
      withdrawn: sqsRecord(job(DEMO.withdrawn)),
      already: sqsRecord(job(DEMO.alreadyWithdrawn)),
      rejected: sqsRecord(job(DEMO.rejected)),
      forbidden: sqsRecord(job(DEMO.forbidden)),
      notFound: sqsRecord(job(DEMO.notFound)),
      transient: sqsRecord(job(DEMO.transientThenWithdrawn)),
      failing: sqsRecord(job(DEMO.alwaysFailing), { receiveCount: 1 }),
      exhausted: sqsRecord({ certificate_id: "scs1000000000009" }, { receiveCount: 5 }),
      invalidJson: sqsRecord("{oops"),
      hostile: sqsRecord({ certificate_id: "../../../etc/pwd" }),
    };
    stack.sim.addCertificate({ id: "scs1000000000009", status: "CHECKING" });
    stack.sim.injectAlways("scs1000000000009", faults.gatewayTimeout());
    const response = await handler(sqsEvent(...Object.values(records)), lambdaContext());

    expect(failedIds(response)).toEqual([records.failing.messageId]);
    const letters = await stack.drainDlq();
    const reasons = Object.fromEntries(
      letters.map((l) => [attributesOf(l).source_message_id, attributesOf(l).failure_reason]),
    );
    expect(reasons).toEqual({
      [records.rejected.messageId]: "rejected",
      [records.forbidden.messageId]: "forbidden",
      [records.notFound.messageId]: "not_found",
      [records.exhausted.messageId]: "retries_exhausted",
      [records.invalidJson.messageId]: "invalid_message",
      [records.hostile.messageId]: "invalid_message",
    });
    expect(stack.sim.withdrawals(DEMO.withdrawn)).toBe(1);
    expect(stack.sim.withdrawals(DEMO.transientThenWithdrawn)).toBe(1);
    expect(stack.sim.stats.maxInFlight).toBeLessThanOrEqual(10);
  });

  it("keeps at most BATCH_CONCURRENCY calls in flight", async () => {
    const handler = await coldStart({ BATCH_CONCURRENCY: "3" });
    const ids = Array.from({ length: 10 }, (_, i) => `scs20000000000${String(i).padStart(2, "0")}`);
    for (const id of ids) {
      stack.sim.addCertificate({ id, status: "CHECKING" });
      stack.sim.inject(id, faults.delay(40));
    }
    const response = await handler(sqsEvent(...ids.map((id) => sqsRecord(job(id)))), lambdaContext());
    expect(response.batchItemFailures).toEqual([]);
    expect(stack.sim.stats.maxInFlight).toBe(3);
  });
});

describe("the gateway's rate limit", () => {
  afterAll(() => {
    stack.sim.rateLimitPerSecond = 0;
  });

  it("is learnt from its first 429: the container waits out the window, then stays under the stated limit", async () => {
    const handler = await coldStart();
    stack.sim.rateLimitPerSecond = 4;
    const ids = Array.from({ length: 8 }, (_, i) => `scs40000000000${String(i).padStart(2, "0")}`);
    for (const id of ids) stack.sim.addCertificate({ id, status: "CHECKING" });
    const response = await handler(sqsEvent(...ids.map((id) => sqsRecord(job(id)))), lambdaContext());

    // With no limit set, the first batch goes out at once: 4 pass, 4 get the 429 stating limit:4. After
    // that, no call is throttled again: the retries wait for the window and are spaced under 4/s.
    expect(response.batchItemFailures).toEqual([]);
    for (const id of ids) expect(stack.sim.withdrawals(id)).toBe(1);
    expect(cancelCalls().filter((c) => c.status === 429)).toHaveLength(4);
    expect(capturedOutput()).toMatch(/"event":"scm_rate_reduced".*"statedLimit":\{"calls":4,"windowMs":1000\}/);
  });
});

describe("the token", () => {
  it("is read from Secrets Manager once across many warm invocations", async () => {
    const handler = await coldStart();
    const before = stack.secrets.reads(SECRET_ID);
    for (let i = 0; i < 20; i++) {
      const id = `scs30000000000${String(i).padStart(2, "0")}`;
      stack.sim.addCertificate({ id, status: "CHECKING" });
      await handler(sqsEvent(sqsRecord(job(id))), lambdaContext());
    }
    expect(stack.secrets.reads(SECRET_ID) - before).toBe(1);
  });

  it("is not read for an event with no records", async () => {
    const handler = await coldStart();
    const before = stack.secrets.reads(SECRET_ID);
    expect(await handler({ Records: [] }, lambdaContext())).toEqual({ batchItemFailures: [] });
    expect(stack.secrets.reads(SECRET_ID)).toBe(before);
  });

  it("is re-read after a 401, bypassing the cache, and the record then succeeds (rotation)", async () => {
    const handler = await coldStart();
    await handler(sqsEvent(sqsRecord(job(DEMO.withdrawn))), lambdaContext()); // warm: TEST_TOKEN cached
    stack.sim.rejectToken(TEST_TOKEN);
    stack.sim.acceptToken(ROTATED_TOKEN);
    stack.secrets.setSecret(SECRET_ID, ROTATED_TOKEN);
    const reads = stack.secrets.reads(SECRET_ID);

    const ids = [DEMO.transientThenWithdrawn, DEMO.throttledThenWithdrawn].slice(0, 1);
    stack.sim.clearFaults();
    const records = ids.map((id) => sqsRecord(job(id)));
    const response = await handler(sqsEvent(...records), lambdaContext());
    expect(response.batchItemFailures).toEqual([]);
    expect(stack.secrets.reads(SECRET_ID) - reads).toBe(1);
    expect(cancelCalls(DEMO.transientThenWithdrawn).map((c) => c.status)).toEqual([401, 200]);
  });

  it("dead-letters as unauthorized when the re-read token is refused too", async () => {
    const handler = await coldStart();
    stack.sim.rejectToken(TEST_TOKEN);
    const record = sqsRecord(job(DEMO.withdrawn));
    const response = await handler(sqsEvent(record), lambdaContext());
    expect(response.batchItemFailures).toEqual([]);
    expect(cancelCalls(DEMO.withdrawn).map((c) => c.status)).toEqual([401, 401]);
    const [letter] = await stack.drainDlq();
    expect(attributesOf(letter!)).toMatchObject({ failure_reason: "unauthorized", http_status: "401" });
    stack.sim.acceptToken(TEST_TOKEN);
  });

  it("leaves every valid record for redelivery when Secrets Manager is down, calling nothing (invalid ones are dead-lettered)", async () => {
    const handler = await coldStart();
    stack.secrets.failNext(Infinity);
    const records = [sqsRecord(job(DEMO.withdrawn)), sqsRecord(job(DEMO.forbidden)), sqsRecord("not json")];
    const response = await handler(sqsEvent(...records), lambdaContext());
    expect(failedIds(response)).toEqual(
      records
        .slice(0, 2)
        .map((r) => r.messageId)
        .sort(),
    );
    expect(stack.sim.calls).toEqual([]);
    expect((await stack.drainDlq()).map((l) => attributesOf(l).source_message_id)).toEqual([records[2]!.messageId]);
    expect(capturedOutput()).toContain('"event":"token_unavailable"');
  });

  it.each([
    ["missing", undefined],
    ["empty", ""],
    ["unusable", '{"nothing":"here"}'],
  ])("leaves the whole batch for redelivery when the secret is %s", async (_name, value) => {
    const handler = await coldStart();
    if (value === undefined) stack.secrets.deleteSecret(SECRET_ID);
    else stack.secrets.setSecret(SECRET_ID, value);
    const record = sqsRecord(job(DEMO.withdrawn));
    const response = await handler(sqsEvent(record), lambdaContext());
    expect(failedIds(response)).toEqual([record.messageId]);
    expect(stack.sim.calls).toEqual([]);
  });

  it("never appears in anything the handler prints", async () => {
    const handler = await coldStart({ LOG_LEVEL: "debug" });
    stack.sim.rejectToken(TEST_TOKEN);
    await handler(
      sqsEvent(sqsRecord(job(DEMO.withdrawn)), sqsRecord(job(DEMO.forbidden)), sqsRecord("x")),
      lambdaContext(),
    );
    stack.sim.acceptToken(TEST_TOKEN);
    expect(capturedOutput()).toContain("withdrawal_dead_lettered");
    expect(capturedOutput()).not.toContain(TEST_TOKEN);
    for (const letter of await stack.drainDlq())
      expect(JSON.stringify(letter.MessageAttributes)).not.toContain(TEST_TOKEN);
  });
});

describe("when the DLQ cannot be reached", () => {
  it("leaves the record for redelivery instead of losing it", async () => {
    const handler = await coldStart({ WITHDRAWAL_DLQ_URL: stack.dlqUrl.replace("withdrawals-dlq", "no-such-queue") });
    const bad = sqsRecord(job(DEMO.forbidden));
    const good = sqsRecord(job(DEMO.withdrawn));
    const response = await handler(sqsEvent(bad, good), lambdaContext());
    expect(failedIds(response)).toEqual([bad.messageId]);
    expect(stack.sim.withdrawals(DEMO.withdrawn)).toBe(1);
    expect(capturedOutput()).toContain('"event":"dead_letter_failed"');
  });
});

describe("configuration", () => {
  it("fails at start with one error naming every bad variable", async () => {
    await expect(coldStart({ SCM_ENDPOINT: "http://scm.example.com", MAX_ATTEMPTS: "lots" })).rejects.toThrow(
      /SCM_ENDPOINT.*MAX_ATTEMPTS|MAX_ATTEMPTS.*SCM_ENDPOINT/,
    );
  });
});
