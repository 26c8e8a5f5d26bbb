/**
 * What the worker logs and counts, record by record: stable event names, one outcome line per
 * record, the same correlation fields on every per-record line, durations, and the per-invocation
 * metrics. The worker runs against hand-written fakes of the project's own ports and a fake clock
 * (no network); the real SCM client and SQS are covered by the integration and property tests.
 */
import type { SQSRecord } from "aws-lambda";
import { describe, expect, it } from "vitest";
import type { DeadLetter } from "../../lib/dead-letter.ts";
import { TokenUnavailableError } from "../../lib/errors.ts";
import { createLogger } from "../../lib/logger.ts";
import type { InvocationMetrics } from "../../lib/metrics.ts";
import type { ScmClient, ScmResult } from "../../lib/scm-client.ts";
import { createWorker, type RecordOutcome, type WorkerConfig } from "../../lib/worker.ts";
import { deadLetterAttributes } from "../../lib/dead-letter.ts";
import { createIamExchange, type IamHttpResult } from "../../lib/iam.ts";
import { createTokenProvider, type TokenProvider } from "../../lib/token-provider.ts";
import { findSecretFragment } from "../support/secrets.ts";
import { sqsEvent, sqsRecord } from "../support/lambda.ts";

// ---- a worker on fakes -------------------------------------------------------------------------

const CONFIG: WorkerConfig = {
  maxAttempts: 3,
  retryBaseDelayMs: 100,
  retryMaxDelayMs: 1000,
  scmTimeoutMs: 5000,
  maxReceiveCount: 5,
  batchConcurrency: 10,
  alreadyWithdrawnStatuses: ["PAID", "CANCELCHECKING"],
  deadlineMarginMs: 1000,
};
/** Not one of the suite's registered secrets: these tests print nothing, they inspect what the logger wrote. */
const FAKE_TOKEN = "FAKE-TOKEN-0123456789-0123456789-abcdef";

function answer(status: number, body?: Record<string, unknown>, durationMs = 10): ScmResult {
  return {
    kind: "answer",
    status,
    body,
    errorCode: typeof body?.error_code === "string" ? body.error_code : undefined,
    errorMsg: typeof body?.error_msg === "string" ? body.error_msg : undefined,
    retryAfterMs: undefined,
    durationMs,
  };
}
/** Cancel-cert's documented success for `id`. */
const ok = (id: string, durationMs = 10) => answer(200, { cert_id: id, message: "success" }, durationMs);
const scmError = (status: number, code: string, msg = "error", durationMs = 10) =>
  answer(status, { error_code: code, error_msg: msg }, durationMs);
const timeout = (durationMs = 5000): ScmResult => ({
  kind: "network",
  failure: "timeout",
  message: `no complete answer within ${durationMs} ms`,
  durationMs,
});

/** Scripted answers per certificate; each call takes the next one, the last one repeats. An Error is thrown. */
type Script = Record<string, { cancel?: (ScmResult | Error)[]; detail?: (ScmResult | Error)[] }>;

function fakeWorker(
  options: {
    script?: Script;
    getToken?: () => string;
    refresh?: () => string;
    tokens?: TokenProvider;
    dlqFailsFor?: Set<string>;
    metricsThrow?: boolean;
  } = {},
) {
  let clock = 1_000_000;
  const lines: Record<string, unknown>[] = [];
  const letters: DeadLetter[] = [];
  const outcomes: RecordOutcome[] = [];
  const metrics: InvocationMetrics[] = [];
  const calls: { kind: "cancel" | "detail"; id: string }[] = [];
  const positions = new Map<string, number>();

  const next = (kind: "cancel" | "detail", id: string): ScmResult => {
    calls.push({ kind, id });
    const list = options.script?.[id]?.[kind] ?? [kind === "cancel" ? ok(id) : answer(200, { id, status: "CHECKING" })];
    const index = positions.get(`${kind}:${id}`) ?? 0;
    positions.set(`${kind}:${id}`, index + 1);
    const item = list[Math.min(index, list.length - 1)]!;
    if (item instanceof Error) throw item;
    clock += item.durationMs;
    return item;
  };
  const scm: ScmClient = {
    cancelCert: async (id) => next("cancel", id),
    getCertificate: async (id) => next("detail", id),
    listCertificates: async () => answer(200, {}),
    close: () => {},
  };
  const worker = createWorker({
    config: CONFIG,
    scm,
    tokens: options.tokens ?? {
      getToken: async () => (options.getToken ?? (() => FAKE_TOKEN))(),
      refresh: async () => (options.refresh ?? (() => FAKE_TOKEN))(),
    },
    sendDeadLetter: async (letter) => {
      if (options.dlqFailsFor?.has(letter.sourceMessageId))
        throw Object.assign(new Error("The specified queue does not exist."), { name: "QueueDoesNotExist" });
      letters.push(letter);
    },
    logger: createLogger({ level: "debug", write: (line) => lines.push(JSON.parse(line) as Record<string, unknown>) }),
    now: () => clock,
    sleep: async (ms) => {
      clock += ms;
    },
    random: () => 0.5,
    onOutcome: (outcome) => {
      outcomes.push(outcome);
    },
    metrics: (m) => {
      if (options.metricsThrow) throw new Error("stdout closed");
      metrics.push(m);
    },
  });
  const context = { awsRequestId: "aws-req-1", getRemainingTimeInMillis: () => 60_000 };
  return {
    run: (...records: SQSRecord[]) => worker.processBatch(sqsEvent(...records), context),
    lines,
    letters,
    outcomes,
    metrics,
    calls,
    events: (name: string) => lines.filter((l) => l.event === name),
    linesOf: (record: SQSRecord) => lines.filter((l) => l.messageId === record.messageId),
  };
}

const failureDown = () =>
  new TokenUnavailableError(
    "secret_fetch_failed",
    "could not read secret scm-withdraw/token: TimeoutError: connect timed out",
  );

/** The events that end a record's story; each record gets exactly one of them. */
const OUTCOME_EVENTS = [
  "withdrawal_succeeded",
  "withdrawal_already_withdrawn",
  "withdrawal_dead_lettered",
  "withdrawal_left_for_retry",
  "dead_letter_failed",
  "withdrawal_crashed",
];
/** Every event the worker may log (docs/observability.md). */
const EVENTS = [
  ...OUTCOME_EVENTS,
  "withdrawal_retrying",
  "token_rejected",
  "token_unavailable",
  "outcome_hook_failed",
  "batch_processed",
  "metrics_failed",
];

const ID = {
  withdrawn: "LOGS000000000001",
  already: "LOGS000000000002",
  forbidden: "LOGS000000000003",
  flaky: "LOGS000000000004",
  failing: "LOGS000000000005",
  exhausted: "LOGS000000000006",
  dlqDown: "LOGS000000000007",
  crash: "LOGS000000000008",
  throttled: "LOGS000000000009",
} as const;

const SCRIPT: Script = {
  [ID.already]: { cancel: [scmError(400, "SCM.0010")], detail: [answer(200, { id: ID.already, status: "PAID" })] },
  [ID.forbidden]: { cancel: [scmError(403, "SCM.0003")] },
  [ID.flaky]: { cancel: [scmError(503, "APIG.0202"), ok(ID.flaky)] },
  [ID.failing]: { cancel: [scmError(500, "SCM.0500")] },
  [ID.exhausted]: { cancel: [timeout(100)] },
  [ID.dlqDown]: { cancel: [scmError(404, "SCM.0020")] },
  [ID.crash]: { cancel: [new Error("bug in a fake")] },
  [ID.throttled]: { cancel: [scmError(429, "APIG.0308"), scmError(400, "APIGW.0308"), ok(ID.throttled)] },
};

function mixedBatch() {
  return {
    withdrawn: sqsRecord({ certificate_id: ID.withdrawn, request_id: "OPS-1", source: "bulk", batch_id: "b-7" }),
    already: sqsRecord({ certificate_id: ID.already, source: "cleanup", batch_id: "sweep-1" }),
    forbidden: sqsRecord({ certificate_id: ID.forbidden }),
    flaky: sqsRecord({ certificate_id: ID.flaky }),
    failing: sqsRecord({ certificate_id: ID.failing }, { receiveCount: 2 }),
    exhausted: sqsRecord({ certificate_id: ID.exhausted }, { receiveCount: 5 }),
    dlqDown: sqsRecord({ certificate_id: ID.dlqDown }),
    crash: sqsRecord({ certificate_id: ID.crash }),
    throttled: sqsRecord({ certificate_id: ID.throttled }),
    notJson: sqsRecord("{oops"),
    badSchema: sqsRecord({ certificate_id: "../../etc/passwd", request_id: "OPS-2", batch_id: "b-8", source: "bulk" }),
  };
}

// ---- tests -------------------------------------------------------------------------------------

describe("the worker's log lines", () => {
  it("give every record of a mixed batch exactly one outcome line", async () => {
    const records = mixedBatch();
    const fake = fakeWorker({ script: SCRIPT, dlqFailsFor: new Set([records.dlqDown.messageId]) });
    const response = await fake.run(...Object.values(records));

    const outcomeOf = (record: SQSRecord) => {
      const outcomeLines = fake.linesOf(record).filter((l) => OUTCOME_EVENTS.includes(l.event as string));
      expect(outcomeLines, `record ${record.body}`).toHaveLength(1);
      return outcomeLines[0]!.event;
    };
    expect(Object.fromEntries(Object.entries(records).map(([name, record]) => [name, outcomeOf(record)]))).toEqual({
      withdrawn: "withdrawal_succeeded",
      already: "withdrawal_already_withdrawn",
      forbidden: "withdrawal_dead_lettered",
      flaky: "withdrawal_succeeded",
      failing: "withdrawal_left_for_retry",
      exhausted: "withdrawal_dead_lettered",
      dlqDown: "dead_letter_failed",
      crash: "withdrawal_crashed",
      throttled: "withdrawal_succeeded",
      notJson: "withdrawal_dead_lettered",
      badSchema: "withdrawal_dead_lettered",
    });
    // The lines agree with the response: left-for-retry, DLQ failure and crash are the failures.
    expect(response.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(
      [records.failing.messageId, records.dlqDown.messageId, records.crash.messageId].sort(),
    );
    for (const line of fake.lines) expect(EVENTS, `unexpected event ${String(line.event)}`).toContain(line.event);
  });

  it("carry the same correlation fields on every per-record line", async () => {
    const records = mixedBatch();
    const fake = fakeWorker({ script: SCRIPT, dlqFailsFor: new Set([records.dlqDown.messageId]) });
    await fake.run(...Object.values(records));

    const perRecord = fake.lines.filter((l) => l.messageId !== undefined);
    expect(new Set(perRecord.map((l) => l.event))).toEqual(new Set([...OUTCOME_EVENTS, "withdrawal_retrying"]));
    for (const line of perRecord) {
      const record = Object.values(records).find((r) => r.messageId === line.messageId)!;
      expect(line, String(line.event)).toMatchObject({
        awsRequestId: "aws-req-1",
        messageId: record.messageId,
        receiveCount: Number(record.attributes.ApproximateReceiveCount),
      });
      expect(typeof line.requestId).toBe("string");
      expect(typeof line.durationMs).toBe("number");
      if (line.event !== "withdrawal_crashed") expect(typeof line.attempt, String(line.event)).toBe("number");
    }
    const outcome = (record: SQSRecord) =>
      fake.linesOf(record).find((l) => OUTCOME_EVENTS.includes(l.event as string))!;
    // request_id, source and batch_id come from the body; request_id defaults to the messageId.
    expect(outcome(records.withdrawn)).toMatchObject({
      certificateId: ID.withdrawn,
      requestId: "OPS-1",
      source: "bulk",
      batchId: "b-7",
      attempt: 1,
      status: 200,
    });
    expect(outcome(records.already)).toMatchObject({
      certificateId: ID.already,
      requestId: records.already.messageId,
      source: "cleanup",
      batchId: "sweep-1",
      certificateStatus: "PAID",
    });
    expect(outcome(records.forbidden)).toMatchObject({
      source: "manual",
      reason: "forbidden",
      status: 403,
      errorCode: "SCM.0003",
      errorMsg: "error",
    });
    expect(outcome(records.forbidden)).not.toHaveProperty("batchId");
    expect(outcome(records.failing)).toMatchObject({
      reason: "server_error",
      status: 500,
      errorCode: "SCM.0500",
      attempt: 3,
      receiveCount: 2,
    });
    expect(outcome(records.exhausted)).toMatchObject({
      reason: "retries_exhausted",
      lastReason: "timeout",
      attempt: 3,
      errorMsg: "no complete answer within 100 ms",
    });
    expect(outcome(records.exhausted)).not.toHaveProperty("status");
    expect(outcome(records.dlqDown)).toMatchObject({
      level: "error",
      reason: "not_found",
      status: 404,
      error: "QueueDoesNotExist: The specified queue does not exist.",
    });
    expect(outcome(records.crash)).toMatchObject({
      level: "error",
      certificateId: ID.crash,
      error: "Error: bug in a fake",
    });
    // A body that failed the schema still gives what it has, for correlation.
    expect(outcome(records.notJson)).toMatchObject({
      requestId: records.notJson.messageId,
      attempt: 0,
      reason: "invalid_message",
      problem: "body is not JSON",
    });
    expect(outcome(records.notJson)).not.toHaveProperty("certificateId");
    expect(outcome(records.badSchema)).toMatchObject({
      certificateId: "../../etc/passwd",
      requestId: "OPS-2",
      batchId: "b-8",
      source: "bulk",
      reason: "invalid_message",
    });
  });

  it("carry who requested the job and why (requested_by, reason) on every per-record line", async () => {
    const arn = "arn:aws:iam::123456789012:user/alice";
    const record = sqsRecord({ certificate_id: "scs1000000000001", requested_by: arn, reason: "CHG-42" });
    const fake = fakeWorker({
      script: { scs1000000000001: { cancel: [scmError(503, "SCM.0503"), ok("scs1000000000001")] } },
    });
    await fake.run(record);
    const lines = fake.linesOf(record);
    expect(lines.map((l) => l.event)).toEqual(["withdrawal_retrying", "withdrawal_succeeded"]);
    for (const line of lines) expect(line).toMatchObject({ requestedBy: arn, requestReason: "CHG-42" });
  });

  it("cut untrusted correlation fields of an invalid body to 128 characters", async () => {
    const record = sqsRecord({ certificate_id: "x".repeat(5000), request_id: "r".repeat(5000), batch_id: 42 });
    const fake = fakeWorker();
    await fake.run(record);
    const [line] = fake.events("withdrawal_dead_lettered");
    expect(line).toMatchObject({ certificateId: "x".repeat(128), requestId: "r".repeat(128) });
    expect(line).not.toHaveProperty("batchId");
  });

  it("time each record from the start of its processing, and give each retry its call's latency and delay", async () => {
    const id = "LOGS000000000010";
    const fake = fakeWorker({
      script: { [id]: { cancel: [scmError(503, "APIG.0202", "Backend unavailable.", 30), ok(id, 20)] } },
    });
    await fake.run(sqsRecord({ certificate_id: id }));
    // Backoff with random()=0.5: floor(0.5 × min(1000, 100 × 2⁰)) = 50 ms.
    expect(fake.events("withdrawal_retrying")).toEqual([
      expect.objectContaining({
        attempt: 1,
        call: "cancel",
        reason: "server_error",
        status: 503,
        errorCode: "APIG.0202",
        errorMsg: "Backend unavailable.",
        latencyMs: 30,
        delayMs: 50,
        durationMs: 30,
      }),
    ]);
    expect(fake.events("withdrawal_succeeded")).toEqual([
      expect.objectContaining({ attempt: 2, status: 200, durationMs: 30 + 50 + 20 }),
    ]);
    expect(fake.events("batch_processed")).toEqual([
      expect.objectContaining({ records: 1, withdrawn: 1, failures: 0, scmCalls: 2, durationMs: 100 }),
    ]);
  });

  it("say which call failed when the status check after SCM.0010 is what needs a retry", async () => {
    const id = "LOGS000000000011";
    const fake = fakeWorker({
      script: {
        [id]: {
          cancel: [scmError(400, "SCM.0010")],
          detail: [scmError(503, "APIG.0202", "Backend unavailable.", 15), answer(200, { id, status: "PAID" })],
        },
      },
    });
    await fake.run(sqsRecord({ certificate_id: id }));
    expect(fake.events("withdrawal_retrying")).toEqual([
      expect.objectContaining({ call: "detail", status: 503, errorCode: "APIG.0202", latencyMs: 15 }),
    ]);
    expect(fake.events("withdrawal_already_withdrawn")).toEqual([
      expect.objectContaining({ attempt: 2, certificateStatus: "PAID" }),
    ]);
  });

  it("repeat a shared call's lines for every record of the same certificate, each with its own ids", async () => {
    const id = "LOGS000000000012";
    const a = sqsRecord({ certificate_id: id, request_id: "A" });
    const b = sqsRecord({ certificate_id: id, request_id: "B", batch_id: "b-2" });
    const fake = fakeWorker({ script: { [id]: { cancel: [scmError(502, "APIG.0202"), ok(id)] } } });
    await fake.run(a, b);
    expect(fake.calls).toHaveLength(2);
    expect(fake.events("withdrawal_retrying").map((l) => [l.messageId, l.requestId, l.batchId])).toEqual([
      [a.messageId, "A", undefined],
      [b.messageId, "B", "b-2"],
    ]);
    expect(
      fake
        .events("withdrawal_succeeded")
        .map((l) => l.requestId)
        .sort(),
    ).toEqual(["A", "B"]);
  });

  it("say token_unavailable once and leave every valid record, with its ids, when there is no token at the start", async () => {
    const records = [
      sqsRecord({ certificate_id: "LOGS000000000013", request_id: "T-1" }),
      sqsRecord({ certificate_id: "LOGS000000000017" }),
      sqsRecord("not json"),
    ];
    const fake = fakeWorker({
      getToken: () => {
        throw failureDown();
      },
    });
    const response = await fake.run(...records);
    expect(response.batchItemFailures).toHaveLength(2);
    expect(fake.calls).toEqual([]);
    expect(fake.events("token_unavailable")).toEqual([
      expect.objectContaining({ level: "error", code: "secret_fetch_failed", records: 2 }),
    ]);
    expect(
      fake.events("withdrawal_left_for_retry").map((l) => [l.messageId, l.requestId, l.reason, l.attempt]),
    ).toEqual([
      [records[0]!.messageId, "T-1", "token_unavailable", 0],
      [records[1]!.messageId, records[1]!.messageId, "token_unavailable", 0],
    ]);
    // An invalid body needs no token: it is dead-lettered anyway.
    expect(fake.letters.map((l) => [l.sourceMessageId, l.reason])).toEqual([
      [records[2]!.messageId, "invalid_message"],
    ]);
    expect(fake.events("batch_processed")).toEqual([
      expect.objectContaining({ records: 3, retrying: 2, dead_lettered: 1, failures: 2, scmCalls: 0 }),
    ]);
    expect(fake.metrics).toHaveLength(1);
    expect(fake.metrics[0]!.counts).toMatchObject({
      TokenUnavailable: 1,
      LeftForRetry: 2,
      DeadLettered: 1,
      Withdrawn: 0,
    });
    expect(fake.outcomes.map((o) => o.state).sort()).toEqual(["dead_lettered", "retrying", "retrying"]);
  });

  it("say token_rejected, then token_unavailable with its code, when the re-read after a 401 fails", async () => {
    const id = "LOGS000000000014";
    const fake = fakeWorker({
      script: { [id]: { cancel: [scmError(401, "APIGW.0301", "Incorrect IAM authentication information")] } },
      refresh: () => {
        throw failureDown();
      },
    });
    const record = sqsRecord({ certificate_id: id });
    const response = await fake.run(record);
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: record.messageId }]);
    expect(fake.linesOf(record).map((l) => l.event)).toEqual([
      "token_rejected",
      "token_unavailable",
      "withdrawal_left_for_retry",
    ]);
    expect(fake.events("token_unavailable")[0]).toMatchObject({
      code: "secret_fetch_failed",
      attempt: 1,
      certificateId: id,
    });
    expect(fake.events("withdrawal_left_for_retry")[0]).toMatchObject({ reason: "token_unavailable", status: 401 });
    expect(fake.metrics[0]!.counts).toMatchObject({ TokenUnavailable: 1, LeftForRetry: 1 });
  });

  it("never carry the token, even when SCM echoes it in its error text (logs and DLQ attributes alike)", async () => {
    const id = "LOGS000000000015";
    const echo = `Incorrect token ${FAKE_TOKEN} (X-Auth-Token: ${FAKE_TOKEN})`;
    const fake = fakeWorker({
      script: { [id]: { cancel: [answer(403, { error_code: `SCM.${FAKE_TOKEN}`, error_msg: echo })] } },
    });
    await fake.run(sqsRecord({ certificate_id: id }));
    expect(JSON.stringify(fake.lines)).not.toContain(FAKE_TOKEN);
    expect(fake.letters).toHaveLength(1);
    expect(JSON.stringify(fake.letters[0])).not.toContain(FAKE_TOKEN);
    expect(fake.letters[0]!.errorMsg).toBe("Incorrect token [redacted] (X-Auth-Token: [redacted])");
  });

  /** An IAM-like token with the characters that URL and JSON encodings change. */
  const ECHO_TOKEN = 'MIIEcho+Token/0123456789abcdefABCDEF+/=="quoted"';
  it.each([
    ["lowercased", ECHO_TOKEN.toLowerCase()],
    ["uppercased", ECHO_TOKEN.toUpperCase()],
    ["URL-encoded", encodeURIComponent(ECHO_TOKEN)],
    ["form-encoded, lowercase hex", new URLSearchParams({ t: ECHO_TOKEN }).toString().slice(2).toLowerCase()],
    ["JSON-escaped", JSON.stringify(ECHO_TOKEN)],
    ["cut to 40 characters", ECHO_TOKEN.slice(0, 40)],
    ["cut to its last 12 characters", ECHO_TOKEN.slice(-12)],
  ])("never carry the token echoed %s (logs and DLQ attributes alike)", async (_form, echoed) => {
    const id = "LOGS000000000017";
    const fake = fakeWorker({
      getToken: () => ECHO_TOKEN,
      script: {
        [id]: { cancel: [answer(403, { error_code: "SCM.0003", error_msg: `bad token ${echoed} for ${id}` })] },
      },
    });
    await fake.run(sqsRecord({ certificate_id: id }));
    expect(fake.letters).toHaveLength(1);
    const attributes = deadLetterAttributes(fake.letters[0]!);
    expect(attributes.error_msg?.StringValue).toMatch(/^bad token "?\[redacted\]"? for LOGS000000000017$/);
    expect(findSecretFragment(JSON.stringify([fake.lines, fake.letters, attributes]), [ECHO_TOKEN])).toBeUndefined();
  });

  const ECHO_PASSWORD = 'Pa$$ "w0rd"/with?&=+ signs';
  it.each([
    ["lowercased", ECHO_PASSWORD.toLowerCase()],
    ["URL-encoded", encodeURIComponent(ECHO_PASSWORD)],
    ["JSON-escaped", JSON.stringify(ECHO_PASSWORD).slice(1, -1)],
  ])("never carry the IAM password in the token_unavailable line when IAM echoes it %s", async (_form, echoed) => {
    const rejected: IamHttpResult = {
      kind: "answer",
      status: 401,
      subjectToken: undefined,
      body: { error: { code: 401, message: `password ${echoed} is wrong` } },
    };
    const { exchange } = createIamExchange({
      endpoint: "https://iam.myhuaweicloud.com",
      timeoutMs: 1000,
      transport: async () => rejected,
    });
    const secret = JSON.stringify({ iam: { domain: "acme", user: "scm-bot", password: ECHO_PASSWORD } });
    const tokens = createTokenProvider({ readSecret: async () => secret, ttlMs: 0, exchangeIam: exchange });
    const fake = fakeWorker({ tokens });
    await fake.run(sqsRecord({ certificate_id: "LOGS000000000018" }));
    expect(fake.events("token_unavailable")[0]).toMatchObject({
      code: "iam_rejected",
      error: expect.stringContaining("password [redacted] is wrong"),
    });
    expect(findSecretFragment(JSON.stringify(fake.lines), [ECHO_PASSWORD])).toBeUndefined();
  });

  it("keep going when the metrics sink fails: the batch's answer stands and the failure is logged", async () => {
    const record = sqsRecord({ certificate_id: "LOGS000000000016" });
    const fake = fakeWorker({ metricsThrow: true });
    const response = await fake.run(record);
    expect(response.batchItemFailures).toEqual([]);
    expect(fake.events("metrics_failed")).toEqual([
      expect.objectContaining({ level: "warn", error: "Error: stdout closed" }),
    ]);
  });

  it("use stable snake_case event names only", async () => {
    const records = mixedBatch();
    const fake = fakeWorker({ script: SCRIPT });
    await fake.run(...Object.values(records));
    for (const line of fake.lines) expect(line.event).toMatch(/^[a-z]+(_[a-z]+)*$/);
  });
});

describe("the worker's metrics", () => {
  it("are flushed once per invocation and agree with the outcomes", async () => {
    const records = mixedBatch();
    const fake = fakeWorker({ script: SCRIPT, dlqFailsFor: new Set([records.dlqDown.messageId]) });
    await fake.run(...Object.values(records));
    expect(fake.metrics).toHaveLength(1);
    const [m] = fake.metrics;
    expect(m!.counts).toEqual({
      Withdrawn: 3, // withdrawn, flaky, throttled
      AlreadyWithdrawn: 1,
      DeadLettered: 4, // forbidden, exhausted, notJson, badSchema
      LeftForRetry: 3, // failing, dlqDown, crash
      Retried: 2 + 2 + 1 + 2, // failing ×2, exhausted ×2, flaky ×1, throttled ×2
      Throttled: 2, // 429 and a 400 with APIGW.0308
      TokenUnavailable: 0,
      DeadLetterFailed: 1,
      LedgerWriteFailed: 0, // no ledger configured
      VisibilityChangeFailed: 0, // no visibility changer configured
    });
    expect(m!.deadLetteredByReason).toEqual({ forbidden: 1, retries_exhausted: 1, invalid_message: 2 });
    // One latency per SCM call that answered (the crashing fake throws instead of answering).
    expect(m!.scmLatencyMs).toHaveLength(fake.calls.length - 1);
    // The ledger hook saw the same outcomes the metrics counted, the crashed record's included.
    const states = fake.outcomes.map((o) => o.state);
    expect(fake.outcomes).toHaveLength(Object.keys(records).length);
    expect(states.filter((s) => s === "withdrawn")).toHaveLength(3);
    expect(states.filter((s) => s === "retrying")).toHaveLength(3);
    expect(fake.outcomes.find((o) => o.messageId === records.crash.messageId)).toMatchObject({
      state: "retrying",
      reason: "crashed",
    });
  });

  it("are flushed for an empty event too (zeros, no SCM call)", async () => {
    const fake = fakeWorker();
    await fake.run();
    expect(fake.metrics).toHaveLength(1);
    expect(Object.values(fake.metrics[0]!.counts).every((v) => v === 0)).toBe(true);
    expect(fake.metrics[0]!.scmLatencyMs).toEqual([]);
  });
});
