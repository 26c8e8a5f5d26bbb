/**
 * The withdrawal ledger against a real DynamoDB API: `@aws-sdk/client-dynamodb` over HTTP to dynalite
 * on a random 127.0.0.1 port. Commands are observed through the client's own middleware stack (no
 * module patching), to prove which DynamoDB operations each method uses.
 */
import {
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  GetItemCommand,
  type DynamoDBClient,
} from "@aws-sdk/client-dynamodb";
import { createServer, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DEFAULT_TTL_DAYS,
  LEDGER_TABLE_SCHEMA,
  LedgerError,
  createLedger,
  jobKey,
  jobRefFromBody,
  jobRefFromRequest,
  type JobRef,
  type Ledger,
  type LedgerOptions,
} from "../../lib/ledger.ts";
import { createLogger } from "../../lib/logger.ts";
import { createLedgerTable, localDynamoClient, startLocalDynamo, type LocalDynamo } from "../../local/dynamodb.ts";
import { buildWithdrawalBody } from "../../lib/message.ts";
import type { RecordOutcome, WorkerDependencies } from "../../lib/worker.ts";

let dynamo: LocalDynamo;
let client: DynamoDBClient;
/** Every command name the shared client sent, in order. */
const sent: string[] = [];
let tables = 0;

beforeAll(async () => {
  dynamo = await startLocalDynamo({ port: 0 });
  client = dynamo.client();
  client.middlewareStack.add(
    (next, context) => async (args) => {
      sent.push(String(context.commandName));
      return next(args);
    },
    { step: "initialize", name: "recordCommandNames" },
  );
});

afterAll(async () => {
  client.destroy();
  await dynamo.close();
});

/** A fresh table and ledger per test, so tests never see each other's items. */
async function freshLedger(
  options: Partial<LedgerOptions> = {},
): Promise<{ ledger: Ledger; table: string; logs: string[] }> {
  const table = `ledger-${process.pid}-${++tables}`;
  await createLedgerTable(client, table);
  const logs: string[] = [];
  const ledger = createLedger({
    client,
    tableName: table,
    logger: createLogger({ level: "debug", write: (line) => logs.push(line) }),
    ...options,
  });
  return { ledger, table, logs };
}

const cert = (n: number) => `cert${String(n).padStart(12, "0")}`;

function job(n: number, batchId?: string): JobRef {
  return { requestId: `req-${n}`, certificateId: cert(n), source: "bulk", ...(batchId ? { batchId } : {}) };
}

/** A worker outcome, typed as lib/worker.ts declares it (so a change there breaks this file at compile time). */
function outcome(
  ref: JobRef,
  state: RecordOutcome["state"],
  extra: {
    reason?: string;
    attempts?: number;
    httpStatus?: number;
    errorCode?: string;
    errorMsg?: string;
    messageId?: string;
    receiveCount?: number;
  } = {},
): RecordOutcome {
  const base = {
    messageId: extra.messageId ?? `msg-${ref.requestId}`,
    requestId: ref.requestId,
    certificateId: ref.certificateId,
    request: {
      certificate_id: ref.certificateId!,
      request_id: ref.requestId,
      source: "bulk" as const,
      ...(ref.batchId ? { batch_id: ref.batchId } : {}),
    },
    receiveCount: extra.receiveCount ?? 1,
  };
  const last = { httpStatus: extra.httpStatus, errorCode: extra.errorCode, errorMsg: extra.errorMsg };
  const attempts = extra.attempts ?? 1;
  switch (state) {
    case "withdrawn":
    case "already_withdrawn":
      return { ...base, state, attempts, last };
    case "dead_lettered":
      return { ...base, state, reason: (extra.reason ?? "not_found") as "not_found", attempts, last };
    case "retrying":
      return { ...base, state, reason: (extra.reason ?? "throttled") as "throttled", attempts, last };
  }
}

const since = (mark: number) => sent.slice(mark);

describe("the table", () => {
  it("has the key schema, billing and TTL attribute serverless.yml declares; TTL itself is AWS-only", async () => {
    const table = `ledger-schema-${process.pid}`;
    expect(await createLedgerTable(client, table)).toEqual({ created: true, ttl: "unsupported" });
    // Idempotent: a second start keeps the table.
    expect(await createLedgerTable(client, table)).toEqual({ created: false, ttl: "unsupported" });
    const { Table } = await client.send(new DescribeTableCommand({ TableName: table }));
    expect(Table?.KeySchema).toEqual([
      { AttributeName: LEDGER_TABLE_SCHEMA.partitionKey, KeyType: "HASH" },
      { AttributeName: LEDGER_TABLE_SCHEMA.sortKey, KeyType: "RANGE" },
    ]);
    expect(Table?.BillingModeSummary?.BillingMode).toBe("PAY_PER_REQUEST");
    expect(Table?.GlobalSecondaryIndexes?.map((i) => [i.IndexName, i.KeySchema, i.Projection?.ProjectionType])).toEqual(
      Object.values(LEDGER_TABLE_SCHEMA.indexes).map((index) => [
        index.name,
        [{ AttributeName: index.partitionKey, KeyType: "HASH" }],
        "KEYS_ONLY",
      ]),
    );
    expect(
      (await client.send(new DescribeTimeToLiveCommand({ TableName: table }))).TimeToLiveDescription?.TimeToLiveStatus,
    ).toBe("DISABLED");
  });

  it("refuses a non-loopback host for the local DynamoDB", async () => {
    await expect(startLocalDynamo({ host: "0.0.0.0" })).rejects.toThrow(/loopback/);
  });
});

describe("a batch followed to the end", () => {
  it("records queued jobs and each outcome; batchStatus counts every state and says done only when all are final", async () => {
    const { ledger } = await freshLedger();
    const jobs = [1, 2, 3, 4, 5, 6].map((n) => job(n, "b-mix"));
    const queued = await ledger.recordQueued(jobs, { batchId: "b-mix", expectedTotal: 6, source: "bulk" });
    expect(queued).toEqual({
      written: 6,
      alreadyQueued: 0,
      queuedBefore: [],
      reset: 0,
      alreadyDone: [],
      failed: [],
      batchRecorded: true,
    });

    let status = await ledger.batchStatus("b-mix");
    expect(status).toMatchObject({ expectedTotal: 6, recorded: 6, final: 0, pending: 6, done: false });
    expect(status.counts.queued).toBe(6);

    expect(await ledger.claim(jobs[0]!)).toBe("proceed");
    await ledger.recordOutcome(outcome(jobs[0]!, "withdrawn", { httpStatus: 200 }));
    await ledger.recordOutcome(outcome(jobs[1]!, "withdrawn", { httpStatus: 200, attempts: 2 }));
    await ledger.recordOutcome(outcome(jobs[2]!, "already_withdrawn", { httpStatus: 400, errorCode: "SCM.0010" }));
    await ledger.recordOutcome(
      outcome(jobs[3]!, "dead_lettered", {
        reason: "not_found",
        httpStatus: 404,
        errorCode: "SCM.0404",
        errorMsg: "certificate not found",
      }),
    );
    await ledger.recordOutcome(
      outcome(jobs[4]!, "dead_lettered", { reason: "rejected", httpStatus: 400, errorCode: "SCM.0010" }),
    );
    await ledger.recordOutcome(outcome(jobs[5]!, "retrying", { reason: "throttled", httpStatus: 429, attempts: 3 }));

    status = await ledger.batchStatus("b-mix");
    expect(status.counts).toEqual({
      queued: 0,
      retrying: 1,
      requeued: 0,
      withdrawn: 2,
      already_withdrawn: 1,
      dead_lettered: 2,
    });
    expect(status.deadLetteredByReason).toEqual({ not_found: 1, rejected: 1 });
    expect(status).toMatchObject({ final: 5, pending: 1, done: false });

    // The throttled job comes back on its second delivery and succeeds.
    await ledger.recordOutcome(outcome(jobs[5]!, "withdrawn", { httpStatus: 200, receiveCount: 2 }));
    status = await ledger.batchStatus("b-mix", { consistent: true });
    expect(status.counts).toEqual({
      queued: 0,
      retrying: 0,
      requeued: 0,
      withdrawn: 3,
      already_withdrawn: 1,
      dead_lettered: 2,
    });
    expect(status).toMatchObject({ final: 6, pending: 0, done: true });

    const byId = new Map<string, Awaited<ReturnType<Ledger["getJob"]>>>();
    for await (const item of ledger.batchJobs("b-mix")) byId.set(item.requestId, item);
    expect(byId.get("req-4")).toMatchObject({
      state: "dead_lettered",
      reason: "not_found",
      httpStatus: 404,
      errorCode: "SCM.0404",
      errorMsg: "certificate not found",
      certificateId: cert(4),
      batchId: "b-mix",
      source: "bulk",
    });
    expect(byId.get("req-4")?.finishedAt).toEqual(expect.any(String));
    // attempts add up over deliveries (3 on the first, 1 on the second); the old 429 is gone on success.
    expect(byId.get("req-6")).toMatchObject({
      state: "withdrawn",
      attempts: 4,
      httpStatus: 200,
      errorCode: undefined,
      reason: undefined,
      receiveCount: 2,
    });
    expect(byId.get("req-1")).toMatchObject({
      state: "withdrawn",
      deliveries: 1,
      claimedAt: expect.any(String),
      queuedAt: expect.any(String),
    });
  });

  it("reads a batch's progress with ONE Query (the META item and the jobs share a partition), never a Scan", async () => {
    const { ledger } = await freshLedger();
    await ledger.recordQueued(
      [1, 2, 3].map((n) => job(n, "b-one")),
      { batchId: "b-one", expectedTotal: 3 },
    );
    const mark = sent.length;
    const status = await ledger.batchStatus("b-one");
    expect(status).toMatchObject({ expectedTotal: 3, recorded: 3 });
    expect(since(mark)).toEqual(["QueryCommand"]);
  });

  it("finds a certificate's or a request_id's jobs across batches with one Query per index, never a Scan", async () => {
    const { ledger } = await freshLedger();
    const audit = {
      requestedBy: "arn:aws:iam::123456789012:user/alice",
      requestReason: "CHG-1",
      requestedAt: "2026-11-27T10:00:00Z",
    };
    await ledger.recordQueued([{ ...job(1, "b-x"), ...audit }], { batchId: "b-x" });
    await ledger.recordQueued([{ ...job(1, "b-y"), requestId: "T-9" }], { batchId: "b-y" });
    await ledger.recordQueued([{ ...job(2), requestId: "T-9" }]);
    let mark = sent.length;
    const byCertificate = await ledger.findJobs(cert(1));
    expect(since(mark)).toEqual(["QueryCommand", "QueryCommand", "BatchGetItemCommand"]);
    expect(byCertificate.map((j) => [j.batchId, j.requestId])).toEqual([
      ["b-x", "req-1"],
      ["b-y", "T-9"],
    ]);
    expect(byCertificate[0]).toMatchObject(audit);
    mark = sent.length;
    const byRequest = await ledger.findJobs("T-9");
    expect(since(mark)).toEqual(["QueryCommand", "BatchGetItemCommand"]);
    expect(byRequest.map((j) => [j.batchId, j.certificateId]).sort()).toEqual([
      [undefined, cert(2)],
      ["b-y", cert(1)],
    ]);
  });

  it("lists every job of a batch through one paginated Query, without the META item and without a Scan", async () => {
    const { ledger } = await freshLedger();
    const jobs = Array.from({ length: 120 }, (_, i) => job(i, "b-list"));
    await ledger.recordQueued(jobs, { batchId: "b-list", expectedTotal: 120 });
    await ledger.recordQueued([job(999, "another-batch")], { batchId: "another-batch", expectedTotal: 1 });
    const mark = sent.length;
    const seen: string[] = [];
    for await (const item of ledger.batchJobs("b-list", { pageSize: 25 })) seen.push(item.requestId);
    expect(seen.sort()).toEqual(jobs.map((j) => j.requestId).sort());
    const commands = since(mark);
    expect(new Set(commands)).toEqual(new Set(["QueryCommand"]));
    // 120 jobs in pages of 25: 5 pages, plus at most one empty page that confirms the end.
    expect(commands.length).toBeGreaterThanOrEqual(5);
    expect(commands.length).toBeLessThanOrEqual(6);
    expect(sent).not.toContain("ScanCommand");
  });

  it("never calls a batch done while its expected total is unknown", async () => {
    const { ledger } = await freshLedger();
    const jobs = [job(1, "b-stream"), job(2, "b-stream")];
    await ledger.recordQueued(jobs, { batchId: "b-stream" });
    for (const j of jobs) await ledger.recordOutcome(outcome(j, "withdrawn"));
    expect(await ledger.batchStatus("b-stream")).toMatchObject({ expectedTotal: undefined, final: 2, done: false });
    // A streaming producer says the total at the end.
    expect(await ledger.recordBatch("b-stream", { expectedTotal: 2 })).toBe("written");
    expect(await ledger.batchStatus("b-stream")).toMatchObject({ expectedTotal: 2, done: true });
  });

  it("reports an unknown batch as empty, not done", async () => {
    const { ledger } = await freshLedger();
    expect(await ledger.batchStatus("nope")).toMatchObject({ expectedTotal: undefined, recorded: 0, done: false });
  });
});

describe("redelivery and duplicates", () => {
  it("does not count a redelivered outcome twice (same delivery, same state: nothing changes)", async () => {
    const { ledger } = await freshLedger();
    const j = job(1, "b-dup");
    await ledger.recordQueued([j], { batchId: "b-dup", expectedTotal: 1 });
    const withdrawn = outcome(j, "withdrawn", { attempts: 2, httpStatus: 200 });
    expect(await ledger.recordOutcome(withdrawn)).toBe("written");
    expect(await ledger.recordOutcome(withdrawn)).toBe("unchanged");
    expect(await ledger.recordOutcome(withdrawn)).toBe("unchanged");
    expect((await ledger.batchStatus("b-dup")).counts.withdrawn).toBe(1);
    expect(await ledger.getJob(j)).toMatchObject({ state: "withdrawn", attempts: 2 });

    const r = job(2, "b-dup");
    const retry = outcome(r, "retrying", { attempts: 3, receiveCount: 1 });
    expect(await ledger.recordOutcome(retry)).toBe("written");
    expect(await ledger.recordOutcome(retry)).toBe("unchanged");
    expect(await ledger.getJob(r)).toMatchObject({ state: "retrying", attempts: 3 });
    // The next delivery (receive count 2) is a new fact: its attempts add up.
    expect(await ledger.recordOutcome(outcome(r, "retrying", { attempts: 3, receiveCount: 2 }))).toBe("written");
    expect(await ledger.getJob(r)).toMatchObject({ state: "retrying", attempts: 6, receiveCount: 2 });
    const status = await ledger.batchStatus("b-dup");
    expect(status.counts).toMatchObject({ withdrawn: 1, retrying: 1 });
    expect(status.recorded).toBe(2);
  });

  it("never lets a later outcome overwrite a success", async () => {
    const { ledger } = await freshLedger();
    const j = job(1, "b-sticky");
    await ledger.recordOutcome(outcome(j, "withdrawn", { messageId: "m-a" }));
    expect(await ledger.recordOutcome(outcome(j, "dead_lettered", { messageId: "m-b", reason: "rejected" }))).toBe(
      "unchanged",
    );
    expect(await ledger.recordOutcome(outcome(j, "retrying", { messageId: "m-c" }))).toBe("unchanged");
    expect(await ledger.recordOutcome(outcome(j, "already_withdrawn", { messageId: "m-d" }))).toBe("unchanged");
    expect(await ledger.recordRequeued([j])).toEqual({ written: 0, unchanged: 1, failed: [] });
    expect(await ledger.getJob(j)).toMatchObject({ state: "withdrawn", messageId: "m-a" });
  });

  it("the duplicate guard: a withdrawn job is acknowledged by a conditional write, and both of two concurrent claims say so", async () => {
    const { ledger } = await freshLedger();
    const j = job(1, "b-guard");
    await ledger.recordQueued([j], { batchId: "b-guard", expectedTotal: 1 });
    expect(await ledger.claim(j)).toBe("proceed");
    await ledger.recordOutcome(outcome(j, "withdrawn"));

    const mark = sent.length;
    const [a, b] = await Promise.all([ledger.claim(j), ledger.claim(j)]);
    expect([a, b]).toEqual(["already_withdrawn_in_ledger", "already_withdrawn_in_ledger"]);
    // A write with a condition, not a read followed by a write.
    expect(since(mark)).toEqual(["UpdateItemCommand", "UpdateItemCommand"]);

    for (let i = 0; i < 10; i++) expect(await ledger.claim(j)).toBe("already_withdrawn_in_ledger");
    // Refused claims change nothing: still one delivery, still withdrawn.
    expect(await ledger.getJob(j, { consistent: true })).toMatchObject({ state: "withdrawn", deliveries: 1 });
    expect(ledger.stats()).toMatchObject({ failures: 0, unchanged: 12 });
  });

  it("an already_withdrawn job is guarded too; failed and retrying jobs are claimed again", async () => {
    const { ledger } = await freshLedger();
    const [aw, dl, rt] = [job(1, "b-g2"), job(2, "b-g2"), job(3, "b-g2")];
    await ledger.recordOutcome(outcome(aw, "already_withdrawn"));
    await ledger.recordOutcome(outcome(dl, "dead_lettered", { reason: "forbidden" }));
    await ledger.recordOutcome(outcome(rt, "retrying"));
    expect(await ledger.claim(aw)).toBe("already_withdrawn_in_ledger");
    expect(await ledger.claim(dl)).toBe("proceed");
    expect(await ledger.claim(rt)).toBe("proceed");
    // A claim records the delivery but never changes the state.
    expect(await ledger.getJob(dl)).toMatchObject({ state: "dead_lettered", deliveries: 1 });
  });

  it("stays consistent when claims race the outcome of another delivery: success wins, and no claim after it proceeds", async () => {
    const { ledger } = await freshLedger();
    for (let round = 0; round < 15; round++) {
      const j = job(round, "b-race");
      await ledger.recordQueued([j], { batchId: "b-race" });
      const claimsBefore = Array.from({ length: 4 }, () => ledger.claim(j));
      const racers = await Promise.all([
        ...claimsBefore,
        ledger.recordOutcome(outcome(j, "withdrawn", { messageId: `m-${round}-a` })),
        ledger.recordOutcome(outcome(j, "retrying", { messageId: `m-${round}-b` })),
        ledger.recordOutcome(outcome(j, "dead_lettered", { messageId: `m-${round}-c`, reason: "rejected" })),
      ]);
      const claims = racers.slice(0, 4) as string[];
      const after = await Promise.all(Array.from({ length: 4 }, () => ledger.claim(j)));
      expect(after).toEqual(Array(4).fill("already_withdrawn_in_ledger"));
      const stored = await ledger.getJob(j, { consistent: true });
      // Whatever the order, the success is what stays, and every claim that proceeded was counted.
      expect(stored?.state).toBe("withdrawn");
      expect(stored?.deliveries).toBe(claims.filter((c) => c === "proceed").length);
    }
    const status = await ledger.batchStatus("b-race");
    expect(status.counts.withdrawn).toBe(15);
    expect(status.recorded).toBe(15);
  });

  it("a claim for a job the producer never recorded creates it (manual enqueue without a batch: keyed by request_id)", async () => {
    const { ledger } = await freshLedger();
    const manual: JobRef = { requestId: "OPS-4411", certificateId: cert(7), source: "manual" };
    expect(jobKey(manual)).toEqual({ pk: "REQ#OPS-4411", sk: `JOB#${cert(7)}#OPS-4411` });
    expect(await ledger.claim(manual)).toBe("proceed");
    expect(await ledger.getJob({ requestId: "OPS-4411", certificateId: cert(7) })).toMatchObject({
      state: "queued",
      deliveries: 1,
      certificateId: cert(7),
      source: "manual",
      batchId: undefined,
    });
    await ledger.recordOutcome(outcome(manual, "withdrawn"));
    expect(await ledger.claim(manual)).toBe("already_withdrawn_in_ledger");
  });

  it("a request_id reused for another certificate is another job: its claim proceeds (issue 11: it was skipped)", async () => {
    const { ledger } = await freshLedger();
    for (const batchId of [undefined, "b-reuse"]) {
      const first: JobRef = { requestId: "OPS-4411", certificateId: cert(1), source: "manual", batchId };
      const second: JobRef = { ...first, certificateId: cert(8) };
      expect(await ledger.claim(first)).toBe("proceed");
      await ledger.recordOutcome(outcome(first, "withdrawn"));
      expect(await ledger.claim(first)).toBe("already_withdrawn_in_ledger");
      expect((await ledger.recordQueued([second])).alreadyDone).toEqual([]);
      expect(await ledger.claim(second)).toBe("proceed");
      expect(await ledger.getJob(second, { consistent: true })).toMatchObject({
        state: "queued",
        certificateId: cert(8),
        deliveries: 1,
      });
    }
  });
});

describe("producers: re-runs, unsent jobs and redrive", () => {
  it("a re-run of a batch never resets a finished job: successes are reported, failures are queued again", async () => {
    const { ledger } = await freshLedger();
    const jobs = [1, 2, 3, 4].map((n) => job(n, "b-rerun"));
    await ledger.recordQueued(jobs, { batchId: "b-rerun", expectedTotal: 4 });
    await ledger.recordOutcome(outcome(jobs[0]!, "withdrawn"));
    await ledger.recordOutcome(outcome(jobs[1]!, "dead_lettered", { reason: "forbidden" }));
    await ledger.recordOutcome(outcome(jobs[2]!, "already_withdrawn"));

    // The same file again, with a repeated line.
    const again = await ledger.recordQueued([...jobs, jobs[3]!], { batchId: "b-rerun", expectedTotal: 4 });
    expect(again).toMatchObject({ written: 0, reset: 1, alreadyQueued: 2, failed: [], batchRecorded: true });
    // The repeated line is counted as queued, but only the job found queued before is listed.
    expect(again.queuedBefore.map((j) => j.requestId)).toEqual(["req-4"]);
    expect(again.alreadyDone.map((j) => j.requestId).sort()).toEqual(["req-1", "req-3"]);
    const status = await ledger.batchStatus("b-rerun");
    expect(status.counts).toMatchObject({ withdrawn: 1, already_withdrawn: 1, queued: 2, dead_lettered: 0 });
    expect(await ledger.getJob(jobs[1]!)).toMatchObject({ state: "queued", finishedAt: undefined });
  });

  it("forgets jobs whose send failed, but only while no worker has claimed them", async () => {
    const { ledger } = await freshLedger();
    const jobs = [1, 2, 3].map((n) => job(n, "b-unsent"));
    await ledger.recordQueued(jobs, { batchId: "b-unsent" });
    await ledger.claim(jobs[1]!);
    await ledger.recordOutcome(outcome(jobs[2]!, "withdrawn"));
    expect(await ledger.recordNotSent(jobs)).toEqual({ written: 1, unchanged: 2, failed: [] });
    expect(await ledger.getJob(jobs[0]!)).toBeUndefined();
    expect((await ledger.batchStatus("b-unsent")).recorded).toBe(2);
  });

  it("dlq redrive marks dead-lettered jobs requeued (pending again) until their new outcome", async () => {
    const { ledger } = await freshLedger();
    const jobs = [job(1, "b-redrive"), job(2, "b-redrive")];
    await ledger.recordQueued(jobs, { batchId: "b-redrive", expectedTotal: 2 });
    await ledger.recordOutcome(outcome(jobs[0]!, "withdrawn"));
    await ledger.recordOutcome(outcome(jobs[1]!, "dead_lettered", { reason: "forbidden", httpStatus: 403 }));
    expect((await ledger.batchStatus("b-redrive")).done).toBe(true);

    // The redrive tool knows the job from the DLQ body (byte for byte the original).
    const body = buildWithdrawalBody({
      certificate_id: cert(2),
      request_id: "req-2",
      batch_id: "b-redrive",
      source: "bulk",
    });
    expect(await ledger.recordRequeued([jobRefFromBody(body, "dlq-source-message-id")])).toEqual({
      written: 1,
      unchanged: 0,
      failed: [],
    });
    let status = await ledger.batchStatus("b-redrive");
    expect(status.counts).toMatchObject({ withdrawn: 1, requeued: 1, dead_lettered: 0 });
    expect(status.done).toBe(false);
    expect(await ledger.getJob(jobs[1]!)).toMatchObject({
      state: "requeued",
      requeuedAt: expect.any(String),
      finishedAt: undefined,
    });

    expect(await ledger.claim(jobs[1]!)).toBe("proceed");
    await ledger.recordOutcome(outcome(jobs[1]!, "withdrawn", { messageId: "redriven-message" }));
    status = await ledger.batchStatus("b-redrive");
    expect(status).toMatchObject({ done: true, final: 2 });
    expect(status.counts.withdrawn).toBe(2);
  });

  it("resends the entries a BatchWriteItem leaves unprocessed (throttling) until every job is written", async () => {
    const { ledger, table } = await freshLedger({ sleep: async () => {} });
    // Simulate DynamoDB throttling through the client's middleware: the first two BatchWriteItem calls
    // only write their first 10 entries and hand the rest back as UnprocessedItems.
    let throttled = 0;
    let batchWrites = 0;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName !== "BatchWriteItemCommand") return next(args);
        batchWrites += 1;
        const input = args.input as { RequestItems: Record<string, unknown[]> };
        const entries = input.RequestItems[table] ?? [];
        if (throttled >= 2 || entries.length <= 10) return next(args);
        throttled += 1;
        const result = await next({ ...args, input: { ...input, RequestItems: { [table]: entries.slice(0, 10) } } });
        (result.output as { UnprocessedItems?: unknown }).UnprocessedItems = { [table]: entries.slice(10) };
        return result;
      },
      { step: "initialize", name: "throttleSomeWrites" },
    );
    try {
      const jobs = Array.from({ length: 60 }, (_, i) => job(i, "b-throttle"));
      const result = await ledger.recordQueued(jobs, { batchId: "b-throttle", expectedTotal: 60 });
      expect(result).toMatchObject({ written: 60, failed: [] });
      expect(throttled).toBe(2);
      expect(batchWrites).toBeGreaterThan(3); // 3 calls of ≤ 25, plus the resends
      expect((await ledger.batchStatus("b-throttle")).counts.queued).toBe(60);
    } finally {
      client.middlewareStack.remove("throttleSomeWrites");
    }
  });
});

describe("TTL", () => {
  it(`sets expires_at (epoch seconds) ${DEFAULT_TTL_DAYS} days after each write, on jobs and on the batch`, async () => {
    const start = Date.UTC(2026, 10, 27, 10, 0, 0);
    let clock = start;
    const { ledger, table } = await freshLedger({ now: () => clock });
    const j = job(1, "b-ttl");
    await ledger.recordQueued([j], { batchId: "b-ttl", expectedTotal: 1 });
    const ninetyDays = 90 * 86_400;
    expect((await ledger.getJob(j))?.expiresAt).toBe(start / 1000 + ninetyDays);
    // The last activity counts: an outcome a day later pushes the expiry a day further.
    clock += 86_400_000;
    await ledger.recordOutcome(outcome(j, "withdrawn"));
    expect((await ledger.getJob(j))?.expiresAt).toBe(clock / 1000 + ninetyDays);
    const meta = await client.send(
      new GetItemCommand({ TableName: table, Key: { pk: { S: "BATCH#b-ttl" }, sk: { S: "META" } } }),
    );
    expect(Number(meta.Item?.expires_at?.N)).toBe(start / 1000 + ninetyDays);

    const short = createLedger({ client, tableName: table, ttlDays: 7, now: () => clock });
    await short.claim(job(2, "b-ttl"));
    expect((await short.getJob(job(2, "b-ttl")))?.expiresAt).toBe(clock / 1000 + 7 * 86_400);
  });
});

describe("a ledger outage never decides a job's fate", () => {
  let blackhole: Server;
  let blackholeSockets: Socket[] = [];
  let blackholeEndpoint: string;
  let closedEndpoint: string;

  beforeAll(async () => {
    // Accepts connections and never answers: the worst kind of outage (no error, just silence).
    blackhole = createServer((socket) => blackholeSockets.push(socket));
    await new Promise<void>((resolve) => blackhole.listen(0, "127.0.0.1", resolve));
    blackholeEndpoint = `http://127.0.0.1:${(blackhole.address() as AddressInfo).port}`;
    // A port nothing listens on: connection refused.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    closedEndpoint = `http://127.0.0.1:${(probe.address() as AddressInfo).port}`;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
  });

  afterAll(async () => {
    for (const socket of blackholeSockets) socket.destroy();
    blackholeSockets = [];
    await new Promise<void>((resolve) => blackhole.close(() => resolve()));
  });

  function outageLedger(endpoint: string, options: Partial<LedgerOptions> = {}) {
    const down = localDynamoClient(endpoint);
    const logs: string[] = [];
    const failures: string[] = [];
    const ledger = createLedger({
      client: down,
      tableName: "ledger-down",
      logger: createLogger({ write: (line) => logs.push(line) }),
      workerTimeoutMs: 300,
      requestTimeoutMs: 500,
      onFailure: (operation, kind) => failures.push(`${operation}:${kind}`),
      ...options,
    });
    return { ledger, logs, failures, down };
  }

  it("a DynamoDB that never answers: claim says proceed and recordOutcome resolves, each within its time limit, and both are counted", async () => {
    const { ledger, logs, failures, down } = outageLedger(blackholeEndpoint, { breakerThreshold: 100 });
    try {
      const j = job(1, "b-down");
      let started = Date.now();
      expect(await ledger.claim(j)).toBe("proceed");
      const claimMs = Date.now() - started;
      started = Date.now();
      expect(await ledger.recordOutcome(outcome(j, "withdrawn"))).toBe("failed");
      const outcomeMs = Date.now() - started;
      // 300 ms limit; generous slack for a busy 2-core machine, far below any Lambda deadline.
      expect(claimMs).toBeGreaterThanOrEqual(250);
      expect(claimMs).toBeLessThan(3000);
      expect(outcomeMs).toBeLessThan(3000);
      expect(ledger.stats()).toMatchObject({ failures: 2, failuresByOperation: { claim: 1, outcome: 1 } });
      expect(failures).toEqual(["claim:failed", "outcome:failed"]);
      const events = logs.map((line) => JSON.parse(line) as { event: string; operation?: string; error?: string });
      expect(events.filter((e) => e.event === "ledger_write_failed").map((e) => e.operation)).toEqual([
        "claim",
        "outcome",
      ]);
      expect(events[0]?.error).toMatch(/LedgerTimeoutError/);
    } finally {
      down.destroy();
    }
  });

  it("after a few failures in a row the ledger is skipped at once (breaker), so a batch of records pays almost nothing", async () => {
    const { ledger, logs, down } = outageLedger(blackholeEndpoint, { breakerThreshold: 3, breakerCooldownMs: 60_000 });
    try {
      for (let i = 0; i < 3; i++) expect(await ledger.claim(job(i, "b-down"))).toBe("proceed");
      const started = Date.now();
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => ledger.claim(job(10 + i, "b-down"))));
      expect(results).toEqual(Array(10).fill("proceed"));
      expect(Date.now() - started).toBeLessThan(250); // no call waited for the 300 ms limit
      expect(await ledger.recordOutcome(outcome(job(1, "b-down"), "withdrawn"))).toBe("skipped");
      expect(ledger.stats()).toMatchObject({ failures: 3, skipped: 11 });
      expect(logs.filter((line) => line.includes('"ledger_unavailable"'))).toHaveLength(1);
    } finally {
      down.destroy();
    }
  });

  it("connection refused (wrong endpoint): every write resolves without throwing, fast, and reports what it could not record", async () => {
    const { ledger, down } = outageLedger(closedEndpoint, { breakerThreshold: 1000 });
    try {
      const started = Date.now();
      const jobs = Array.from({ length: 30 }, (_, i) => job(i, "b-refused"));
      const queued = await ledger.recordQueued(jobs, { batchId: "b-refused", expectedTotal: 30 });
      expect(queued.batchRecorded).toBe(false);
      expect(queued.written).toBe(0);
      expect(queued.failed.sort()).toEqual(jobs.map((j) => j.requestId).sort());
      expect(await ledger.claim(jobs[0]!)).toBe("proceed");
      expect(await ledger.recordOutcome(outcome(jobs[0]!, "dead_lettered", { reason: "forbidden" }))).toBe("failed");
      expect((await ledger.recordRequeued([jobs[0]!])).failed).toEqual(["req-0"]);
      expect((await ledger.recordNotSent([jobs[1]!])).failed).toEqual(["req-1"]);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(ledger.stats().failuresByOperation).toMatchObject({
        batch: 1,
        queued: 1,
        claim: 1,
        outcome: 1,
        requeued: 1,
        not_sent: 1,
      });
      // Reads are for the operator: they say the status is unknown instead of inventing one.
      await expect(ledger.batchStatus("b-refused")).rejects.toBeInstanceOf(LedgerError);
      await expect(ledger.batchStatus("b-refused")).rejects.toThrow(/ledger batch_status on table ledger-down failed/);
    } finally {
      down.destroy();
    }
  });

  it("dynalite stopped mid-run: the next claim and outcome resolve without throwing, and the failures are counted", async () => {
    const other = await startLocalDynamo({ port: 0 });
    const otherClient = other.client();
    await createLedgerTable(otherClient, "ledger-stop");
    const ledger = createLedger({ client: otherClient, tableName: "ledger-stop", workerTimeoutMs: 500 });
    try {
      const j = job(1, "b-stop");
      expect(await ledger.claim(j)).toBe("proceed");
      await other.close();
      const started = Date.now();
      expect(await ledger.claim(j)).toBe("proceed");
      expect(await ledger.recordOutcome(outcome(j, "withdrawn"))).toBe("failed");
      expect(Date.now() - started).toBeLessThan(5000);
      expect(ledger.stats()).toMatchObject({ writes: 1, failures: 2 });
    } finally {
      otherClient.destroy();
    }
  });
});

describe("scale", () => {
  it("records a 5,000-job batch in reasonable time and reads its status back", async () => {
    const { ledger } = await freshLedger({ concurrency: 4 });
    const jobs = Array.from({ length: 5000 }, (_, i) => job(i, "b-5000"));
    const started = performance.now();
    const result = await ledger.recordQueued(jobs, { batchId: "b-5000", expectedTotal: 5000, source: "bulk" });
    const queuedMs = performance.now() - started;
    expect(result).toMatchObject({ written: 5000, failed: [], batchRecorded: true });

    const statusStarted = performance.now();
    const status = await ledger.batchStatus("b-5000");
    const statusMs = performance.now() - statusStarted;
    expect(status).toMatchObject({ expectedTotal: 5000, recorded: 5000, done: false });
    expect(status.counts.queued).toBe(5000);
    console.log(
      `ledger scale: recordQueued 5000 jobs in ${Math.round(queuedMs)} ms (${Math.round(5000 / (queuedMs / 1000))} writes/s, BatchGetItem ×50 + BatchWriteItem ×200); batchStatus in ${Math.round(statusMs)} ms`,
    );
    expect(queuedMs).toBeLessThan(60_000);
  }, 90_000);
});

describe("wiring helpers", () => {
  it("derives a job from a request or a queue body the way the worker does (request_id, else the messageId)", () => {
    expect(jobRefFromRequest({ certificate_id: cert(1), source: "cleanup", batch_id: "sweep-1" }, "m-1")).toEqual({
      requestId: "m-1",
      batchId: "sweep-1",
      certificateId: cert(1),
      source: "cleanup",
    });
    expect(jobRefFromBody(JSON.stringify({ certificate_id: cert(2), request_id: "r-2" }), "m-2")).toEqual({
      requestId: "r-2",
      batchId: undefined,
      certificateId: cert(2),
      source: "manual",
    });
    expect(jobRefFromBody("not json", "m-3")).toEqual({ requestId: "m-3", certificateId: undefined });
  });

  it("plugs into the worker's onOutcome hook as is", async () => {
    const { ledger } = await freshLedger();
    const hook: NonNullable<WorkerDependencies["onOutcome"]> = ledger.onOutcome;
    await hook(outcome(job(1, "b-hook"), "withdrawn"));
    expect((await ledger.getJob(job(1, "b-hook")))?.state).toBe("withdrawn");
  });
});
