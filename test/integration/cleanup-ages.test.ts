/**
 * "Stale" needs an age, and SCM's listing gives none: the sweep remembers when it first saw each
 * certificate under review (lib/sightings.ts, in the ledger's table) and, with CLEANUP_MIN_AGE,
 * enqueues only those seen for at least that long. Against dynalite (the real DynamoDB SDK over HTTP),
 * the SCM simulator and fauxqs.
 */
import { GetItemCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DeleteMessageBatchCommand, ReceiveMessageCommand, type Message } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { parseCleanupFilters } from "../../lib/cleanup-config.ts";
import { runCleanup } from "../../lib/cleanup.ts";
import type { CleanupDependencies, CleanupRunOptions } from "../../lib/cleanup-types.ts";
import { CleanupError } from "../../lib/errors.ts";
import { createLogger } from "../../lib/logger.ts";
import { createSender } from "../../lib/producer.ts";
import { createScmClient, type ScmClient } from "../../lib/scm-client.ts";
import { createSightings, SIGHTING_GAP_MS, sightingKey } from "../../lib/sightings.ts";
import { createLedgerTable, startLocalDynamo, type LocalDynamo } from "../../local/dynamodb.ts";
import { TEST_TOKEN } from "../support/secrets.ts";
import { startStack, type Stack } from "../support/stack.ts";

const DAY = 86_400_000;
const T0 = Date.parse("2026-11-01T06:00:00Z");

let stack: Stack;
let dynamo: LocalDynamo;
let client: DynamoDBClient;
let scm: ScmClient;
let tables = 0;

beforeAll(async () => {
  stack = await startStack();
  dynamo = await startLocalDynamo({ port: 0 });
  client = dynamo.client();
  scm = createScmClient({ endpoint: stack.sim.url, timeoutMs: 2000 });
});
afterAll(async () => {
  scm.close();
  client.destroy();
  await dynamo.close();
  await stack.close();
});
beforeEach(async () => {
  stack.sim.reset({ certificates: true });
  stack.sim.acceptToken(TEST_TOKEN);
  await drainQueue();
});

async function freshTable(): Promise<string> {
  const table = `sightings-${process.pid}-${++tables}`;
  await createLedgerTable(client, table);
  return table;
}

async function drainQueue(): Promise<Message[]> {
  const all: Message[] = [];
  for (;;) {
    const { Messages = [] } = await stack.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: stack.queueUrl, MaxNumberOfMessages: 10 }),
    );
    if (Messages.length === 0) return all;
    all.push(...Messages);
    const entries = Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! }));
    await stack.sqs.send(new DeleteMessageBatchCommand({ QueueUrl: stack.queueUrl, Entries: entries }));
  }
}

/** A sweep at the simulated time `at`, with sightings in `table` (or none), logging into `lines`. */
function sweep(at: number, table: string | undefined, options: Partial<CleanupRunOptions> = {}) {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ write: (line) => void lines.push(JSON.parse(line)) });
  const deps: CleanupDependencies = {
    scm,
    tokens: { getToken: async () => TEST_TOKEN, refresh: async () => TEST_TOKEN },
    createSender: (onResult) => createSender<string>({ sqs: stack.sqs, queueUrl: stack.queueUrl, onResult }),
    logger,
    retry: { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 20, timeoutMs: 2000 },
    now: () => at,
    ...(table ? { sightings: createSightings({ client, tableName: table, logger, now: () => at }) } : {}),
  };
  const { filters } = parseCleanupFilters({});
  const run = runCleanup(deps, {
    runId: "cleanup-20261127T101500Z-ab12",
    mode: "enqueue",
    filters,
    offsetMode: "auto",
    ...options,
  });
  return { run, lines };
}

const enqueuedIds = async () =>
  (await drainQueue()).map((m) => (JSON.parse(m.Body!) as { certificate_id: string }).certificate_id).sort();

describe("first sightings", () => {
  it("stick: a later sighting returns the first one's time, and updates only last_seen_at", async () => {
    const table = await freshTable();
    const at = (t: number) =>
      createSightings({ client, tableName: table, logger: createLogger({ write: () => {} }), now: () => t });
    expect(await at(T0).record([{ id: "scs1000000000001", status: "CHECKING" }])).toEqual(
      new Map([["scs1000000000001", T0]]),
    );
    const later = await at(T0 + DAY).record([
      { id: "scs1000000000001", status: "CHECKING_ORG" },
      { id: "scs1000000000002", status: "CHECKING" },
    ]);
    expect(later).toEqual(
      new Map([
        ["scs1000000000001", T0],
        ["scs1000000000002", T0 + DAY],
      ]),
    );
    const key = sightingKey("scs1000000000001");
    const { Item } = await client.send(
      new GetItemCommand({ TableName: table, Key: { pk: { S: key.pk }, sk: { S: key.sk } } }),
    );
    expect(Item).toMatchObject({
      first_seen_at: { N: String(T0) },
      last_seen_at: { N: String(T0 + DAY) },
      status: { S: "CHECKING_ORG" },
      expires_at: { N: String(Math.floor((T0 + DAY) / 1000) + 30 * 86_400) },
    });
  });

  it("two sweeps racing agree on one first sighting", async () => {
    const table = await freshTable();
    const at = (t: number) =>
      createSightings({ client, tableName: table, logger: createLogger({ write: () => {} }), now: () => t });
    const certificates = Array.from({ length: 20 }, (_, i) => ({
      id: `scs20000000000${String(i).padStart(2, "0")}`,
      status: "CHECKING",
    }));
    const [a, b] = await Promise.all([at(T0).record(certificates), at(T0 + 1000).record(certificates)]);
    for (const { id } of certificates) {
      expect([T0, T0 + 1000]).toContain(a.get(id));
      expect(b.get(id)).toBe(a.get(id));
    }
  });

  it("start over after a gap: the certificate left review in between", async () => {
    const table = await freshTable();
    const at = (t: number) =>
      createSightings({ client, tableName: table, logger: createLogger({ write: () => {} }), now: () => t });
    await at(T0).record([{ id: "scs3000000000001", status: "CHECKING" }]);
    const back = T0 + SIGHTING_GAP_MS + DAY;
    expect((await at(back).record([{ id: "scs3000000000001", status: "CHECKING" }])).get("scs3000000000001")).toBe(
      back,
    );
    expect(
      (await at(back + DAY).record([{ id: "scs3000000000001", status: "CHECKING" }])).get("scs3000000000001"),
    ).toBe(back);
  });
});

describe("CLEANUP_MIN_AGE", () => {
  it("enqueues only certificates seen under review for at least the minimum age; the others are too_recent", async () => {
    const table = await freshTable();
    stack.sim.addCertificate({ id: "scs4000000000001", status: "CHECKING" });
    stack.sim.addCertificate({ id: "scs4000000000002", status: "CHECKING_ORG" });
    // Sweeps every other day from 8 days ago record both sightings and enqueue nothing: too recent.
    for (let day = 8; day > 0; day -= 2) {
      const earlier = await sweep(T0 - day * DAY, table, { minAgeMs: 7 * DAY }).run;
      expect(earlier.counts).toMatchObject({ selected: 0, skipped: { too_recent: 2 } });
    }
    expect(await enqueuedIds()).toEqual([]);
    // A third application appears; today's sweep withdraws the two older ones only.
    stack.sim.addCertificate({ id: "scs4000000000003", status: "SUPPLEMENTCHECKING" });
    const today = await sweep(T0, table, { minAgeMs: 7 * DAY }).run;
    expect(await enqueuedIds()).toEqual(["scs4000000000001", "scs4000000000002"]);
    expect(today.ages).toEqual({ tracked: true, minAgeMs: 7 * DAY });
    const eightDaysAgo = new Date(T0 - 8 * DAY).toISOString();
    expect(today.enqueued.map((j) => j.firstSeenAt)).toEqual([eightDaysAgo, eightDaysAgo]);
    expect(today.skipped).toEqual([
      { certificateId: "scs4000000000003", status: "SUPPLEMENTCHECKING", reason: "too_recent" },
    ]);
  });

  it("forgets what it enqueued: seen under review again (applied for again), its clock starts over", async () => {
    const table = await freshTable();
    stack.sim.addCertificate({ id: "scs4100000000001", status: "CHECKING" });
    await sweep(T0 - 2 * DAY, table, { mode: "dry-run" }).run;
    expect((await sweep(T0, table, { minAgeMs: DAY }).run).counts.enqueued).toBe(1);
    await drainQueue();
    const again = await sweep(T0 + DAY, table, { minAgeMs: DAY }).run;
    expect(again.skipped).toEqual([{ certificateId: "scs4100000000001", status: "CHECKING", reason: "too_recent" }]);
  });

  it("without a minimum age, records sightings and selects everything", async () => {
    const table = await freshTable();
    stack.sim.addCertificate({ id: "scs5000000000001", status: "CHECKING" });
    const report = await sweep(T0, table).run;
    expect(report.ages).toEqual({ tracked: true, minAgeMs: undefined });
    expect(report.enqueued.map((j) => [j.certificateId, j.firstSeenAt])).toEqual([
      ["scs5000000000001", new Date(T0).toISOString()],
    ]);
  });

  it("enqueues nothing whose sighting could not be written (age_unknown)", async () => {
    stack.sim.addCertificate({ id: "scs6000000000001", status: "CHECKING" });
    const { run, lines } = sweep(T0, "no-such-table", { minAgeMs: DAY });
    const report = await run;
    expect(report.counts).toMatchObject({ selected: 0, skipped: { age_unknown: 1 } });
    expect(await enqueuedIds()).toEqual([]);
    expect(lines.find((l) => l.event === "cleanup_sighting_failed")).toMatchObject({
      level: "warn",
      certificateId: "scs6000000000001",
    });
  });

  it("without the ledger: says it cannot age-filter; with a minimum age, refuses to run and enqueues nothing", async () => {
    stack.sim.addCertificate({ id: "scs7000000000001", status: "CHECKING" });
    const plain = sweep(T0, undefined);
    expect((await plain.run).ages).toEqual({ tracked: false, minAgeMs: undefined });
    expect(plain.lines.find((l) => l.event === "cleanup_ages_unknown")).toMatchObject({ level: "info" });
    await drainQueue();
    const filtered = sweep(T0, undefined, { minAgeMs: DAY });
    await expect(filtered.run).rejects.toThrow(CleanupError);
    await expect(filtered.run).rejects.toMatchObject({ code: "age_unknown" });
    expect(await enqueuedIds()).toEqual([]);
  });
});
