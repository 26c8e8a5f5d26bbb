/**
 * The cleanup sweep against the real pieces: the SCM client talks HTTP to the simulator (listing with
 * its documented limits, both offset semantics), the token comes from the local Secrets Manager
 * endpoint through the real SDK, and jobs go to fauxqs through the real SQS SDK and the shared producer.
 * The scheduled handler and the withdraw handler are the real exported ones.
 */
import { DeleteMessageBatchCommand, ReceiveMessageCommand, type Message } from "@aws-sdk/client-sqs";
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import type { Context, SQSBatchResponse, SQSEvent, ScheduledEvent } from "aws-lambda";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { cleanupCommand } from "../../cli/commands/cleanup.ts";
import { LOCAL } from "../../cli/local-defaults.ts";
import { main, type CliIo } from "../../cli/main.ts";
import { parseCleanupFilters, type RawFilters } from "../../lib/cleanup-config.ts";
import { runCleanup, runIdForEvent } from "../../lib/cleanup.ts";
import { createCleanupRuntime } from "../../lib/cleanup-runtime.ts";
import type { CleanupDependencies, CleanupRunOptions } from "../../lib/cleanup-types.ts";
import { CleanupError } from "../../lib/errors.ts";
import { loadCleanupConfig } from "../../lib/cleanup-config.ts";
import { faults, type CertificateStatus } from "../../local/scm-simulator.ts";
import { createLogger } from "../../lib/logger.ts";
import { WithdrawalRequest } from "../../lib/message.ts";
import { createSender } from "../../lib/producer.ts";
import { createScmClient, type ScmClient } from "../../lib/scm-client.ts";
import { createTokenProvider, secretsManagerReader } from "../../lib/token-provider.ts";
import { lambdaContext, sqsEvent, sqsRecord } from "../support/lambda.ts";
import { capturedOutput } from "../support/secret-guard.ts";
import { ROTATED_TOKEN, TEST_AKSK, TEST_TOKEN } from "../support/secrets.ts";
import { SECRET_ID, startStack, type Stack } from "../support/stack.ts";

let stack: Stack;
let secretsManager: SecretsManagerClient;
let scm: ScmClient;
const savedEnv = { ...process.env };

beforeAll(async () => {
  stack = await startStack();
  secretsManager = new SecretsManagerClient({
    endpoint: stack.secrets.url,
    region: "eu-west-1",
    credentials: stack.secrets.credentials,
  });
  scm = createScmClient({ endpoint: stack.sim.url, timeoutMs: 2000 });
});
afterAll(async () => {
  process.env = savedEnv;
  scm.close();
  secretsManager.destroy();
  await stack.close();
});
beforeEach(async () => {
  stack.sim.reset({ certificates: true });
  stack.sim.listOffsetMode = "records";
  stack.sim.acceptToken(TEST_TOKEN);
  stack.sim.rejectToken(ROTATED_TOKEN);
  stack.secrets.recover();
  stack.secrets.setSecret(SECRET_ID, TEST_TOKEN);
  await drainQueue();
  await stack.drainDlq();
});

// ---- helpers ----

/** A 16-character id: prefix + zero-padded number. */
const certId = (prefix: string, n: number) => `${prefix}${String(n).padStart(16 - prefix.length, "0")}`;

/** Adds `count` certificates in `status`, oldest first (their listing order), and returns their ids. */
function addCertificates(
  prefix: string,
  count: number,
  status: CertificateStatus,
  extra: { name?: string; domain?: string } = {},
): string[] {
  const ids: string[] = [];
  for (let i = 1; i <= count; i++) {
    const id = certId(prefix, i);
    stack.sim.addCertificate({ id, status, updated_at: 1_700_000_000_000 + ids.length, ...extra });
    ids.push(id);
  }
  return ids;
}

/** Receives and deletes everything on the withdrawals queue. */
async function drainQueue(): Promise<Message[]> {
  const all: Message[] = [];
  for (;;) {
    const { Messages = [] } = await stack.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: stack.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
    );
    if (Messages.length === 0) return all;
    all.push(...Messages);
    await stack.sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: stack.queueUrl,
        Entries: Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
      }),
    );
  }
}

const jobsOf = (messages: Message[]) => messages.map((m) => WithdrawalRequest.parse(JSON.parse(m.Body!)));
const listCalls = () =>
  stack.sim.calls
    .filter((c) => c.kind === "list")
    .map((c) => Object.fromEntries(new URL(c.path, "http://x").searchParams));

function filters(raw: RawFilters = {}) {
  const { filters, problems } = parseCleanupFilters(raw);
  expect(problems).toEqual([]);
  return filters;
}

/** Real dependencies, with a log collector and fast retries. */
function dependencies(overrides: Partial<CleanupDependencies> = {}) {
  const lines: Record<string, unknown>[] = [];
  const tokens = createTokenProvider({ readSecret: secretsManagerReader(secretsManager, SECRET_ID), ttlMs: 60_000 });
  const deps: CleanupDependencies = {
    scm,
    tokens,
    createSender: (onResult) => createSender<string>({ sqs: stack.sqs, queueUrl: stack.queueUrl, onResult }),
    logger: createLogger({ write: (line) => void lines.push(JSON.parse(line)) }),
    retry: { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 20, timeoutMs: 2000 },
    ...overrides,
  };
  return { deps, lines, tokens };
}

function sweep(
  options: Partial<CleanupRunOptions> & { raw?: RawFilters } = {},
  overrides: Partial<CleanupDependencies> = {},
) {
  const { deps, lines } = dependencies(overrides);
  const { raw, ...rest } = options;
  const run = runCleanup(deps, {
    runId: "cleanup-20261127T101500Z-ab12",
    mode: "enqueue",
    filters: filters(raw),
    offsetMode: "auto",
    ...rest,
  });
  return { run, lines };
}

/** An SCM client that calls `after(query, callNumber)` once each listing answer is back. */
function listingHook(after: (query: Record<string, unknown>, call: number) => void): ScmClient {
  let calls = 0;
  return {
    ...scm,
    listCertificates: async (query, token, options) => {
      const result = await scm.listCertificates(query, token, options);
      after(query, ++calls);
      return result;
    },
  };
}

// ---- tests ----

describe("filters", () => {
  it("lists each review status in its own pass and enqueues only certificates under review", async () => {
    const checking = addCertificates("chk", 3, "CHECKING");
    const org = addCertificates("org", 2, "CHECKING_ORG");
    const supplement = addCertificates("sup", 1, "SUPPLEMENTCHECKING");
    addCertificates("iss", 2, "ISSUED");
    addCertificates("pad", 1, "PAID");
    addCertificates("cnc", 1, "CANCELCHECKING");

    const report = await sweep().run;

    expect(listCalls().map((q) => q.status)).toEqual(["CHECKING", "CHECKING_ORG", "SUPPLEMENTCHECKING"]);
    expect(
      listCalls().every(
        (q) => q.limit === "50" && q.offset === "0" && q.sort_key === "certUpdateTime" && q.sort_dir === "ASC",
      ),
    ).toBe(true);
    expect(report.enqueued.map((j) => j.certificateId)).toEqual([...checking, ...org, ...supplement]);
    expect(
      jobsOf(await drainQueue())
        .map((j) => j.certificate_id)
        .sort(),
    ).toEqual([...checking, ...org, ...supplement].sort());
    expect(report.offsetMode).toBe("not_needed");
  });

  it("lists only the requested statuses", async () => {
    const checking = addCertificates("chk", 2, "CHECKING");
    addCertificates("org", 2, "CHECKING_ORG");
    const report = await sweep({ raw: { statuses: "CHECKING" } }).run;
    expect(listCalls().map((q) => q.status)).toEqual(["CHECKING"]);
    expect(report.enqueued.map((j) => j.certificateId)).toEqual(checking);
  });

  it("passes the content filter to SCM and enqueues only what matches", async () => {
    const shop = addCertificates("shp", 3, "CHECKING", { name: "shop-frontend", domain: "shop.example.com" });
    addCertificates("blg", 3, "CHECKING", { name: "blog", domain: "blog.example.net" });
    const report = await sweep({ raw: { content: "shop", statuses: "CHECKING" } }).run;
    expect(listCalls().map((q) => q.content)).toEqual(["shop"]);
    expect(report.enqueued.map((j) => j.certificateId)).toEqual(shop);
    expect(report.enqueued[0]).toMatchObject({ name: "shop-frontend", domain: "shop.example.com" });
  });

  it("enqueues jobs that validate against WithdrawalRequest, with source cleanup, the run's batch_id and the reason", async () => {
    const ids = addCertificates("chk", 12, "CHECKING");
    const report = await sweep({
      runId: "cleanup-20261127T101500Z-ab12",
      raw: { reason: "stale application (ticket OPS-7)" },
    }).run;
    const messages = await drainQueue();
    expect(messages).toHaveLength(12);
    for (const message of messages) {
      const body = JSON.parse(message.Body!);
      expect(WithdrawalRequest.safeParse(body).success).toBe(true);
      expect(body).toMatchObject({
        source: "cleanup",
        batch_id: "cleanup-20261127T101500Z-ab12",
        reason: "stale application (ticket OPS-7)",
      });
      expect(body.request_id).toBe(`cleanup-20261127T101500Z-ab12-${body.certificate_id}`);
      expect(Date.parse(body.requested_at)).toBeGreaterThan(Date.now() - 60_000);
    }
    expect(new Set(messages.map((m) => m.MessageId))).toEqual(new Set(report.enqueued.map((j) => j.messageId)));
    expect(report.enqueued.map((j) => j.certificateId)).toEqual(ids);
  });

  it("skips the exclude list and reports each one as excluded", async () => {
    const ids = addCertificates("chk", 5, "CHECKING");
    const report = await sweep({ raw: { exclude: `${ids[1]}, ${ids[3]} # keep: customer asked` } }).run;
    expect(report.enqueued.map((j) => j.certificateId)).toEqual([ids[0], ids[2], ids[4]]);
    expect(report.skipped).toEqual([
      { certificateId: ids[1], status: "CHECKING", reason: "excluded" },
      { certificateId: ids[3], status: "CHECKING", reason: "excluded" },
    ]);
    expect(
      jobsOf(await drainQueue())
        .map((j) => j.certificate_id)
        .sort(),
    ).toEqual([ids[0], ids[2], ids[4]].sort());
  });

  it("enqueues at most the cap, oldest first, and reports the rest as over_cap", async () => {
    const ids = addCertificates("chk", 12, "CHECKING");
    const { run, lines } = sweep({ raw: { maxJobs: "5" } });
    const report = await run;
    expect(report.enqueued.map((j) => j.certificateId)).toEqual(ids.slice(0, 5));
    expect(report.skipped.map((s) => [s.certificateId, s.reason])).toEqual(ids.slice(5).map((id) => [id, "over_cap"]));
    expect(report.counts).toMatchObject({ found: 12, selected: 5, enqueued: 5, skipped: { over_cap: 7 } });
    expect(await drainQueue()).toHaveLength(5);
    expect(lines.find((l) => l.event === "cleanup_over_cap")).toMatchObject({ count: 7, maxJobs: 5 });
  });

  it("in a dry run lists and reports, and enqueues nothing", async () => {
    const ids = addCertificates("chk", 4, "CHECKING");
    const { deps, lines } = dependencies({
      createSender: () => expect.unreachable("a dry run must not build a sender"),
    });
    const report = await runCleanup(deps, {
      runId: "cleanup-dry",
      mode: "dry-run",
      filters: filters(),
      offsetMode: "auto",
    });
    expect(report.selected.map((j) => j.certificateId)).toEqual(ids);
    expect(report.enqueued).toEqual([]);
    expect(await drainQueue()).toEqual([]);
    expect(lines.filter((l) => l.event === "cleanup_job_planned").map((l) => l.certificateId)).toEqual(ids);
    expect(stack.sim.calls.filter((c) => c.kind !== "list")).toEqual([]);
  });
});

describe("paging", () => {
  it("reaches all 130 certificates when offset counts records (detected with one probe)", async () => {
    const ids = addCertificates("chk", 130, "CHECKING");
    const { run, lines } = sweep({ raw: { statuses: "CHECKING", maxJobs: "500" } });
    const report = await run;
    expect(listCalls().map((q) => q.offset)).toEqual(["0", "1", "50", "100"]);
    expect(report.offsetMode).toBe("records");
    expect(report.enqueued.map((j) => j.certificateId)).toEqual(ids);
    expect(report.passes).toEqual([
      { status: "CHECKING", totalCount: 130, listed: 130, calls: 4, unreachable: 0, truncatedBy: undefined },
    ]);
    expect(report.warnings).toEqual([]);
    expect(lines.find((l) => l.event === "cleanup_offset_mode_detected")).toMatchObject({ offsetMode: "records" });
    expect(await drainQueue()).toHaveLength(130);
  });

  it("reaches all 130 certificates when offset counts pages (the probe is the second page)", async () => {
    stack.sim.listOffsetMode = "pages";
    const ids = addCertificates("chk", 130, "CHECKING");
    const report = await sweep({ raw: { statuses: "CHECKING", maxJobs: "500" } }).run;
    expect(listCalls().map((q) => q.offset)).toEqual(["0", "1", "2"]);
    expect(report.offsetMode).toBe("pages");
    expect(report.enqueued.map((j) => j.certificateId)).toEqual(ids);
    expect(report.counts.skipped.duplicate).toBe(0);
  });

  it("makes no probe when the offset mode is configured", async () => {
    addCertificates("chk", 130, "CHECKING");
    const report = await sweep({ offsetMode: "records", raw: { statuses: "CHECKING", maxJobs: "500" } }).run;
    expect(listCalls().map((q) => q.offset)).toEqual(["0", "50", "100"]);
    expect(report.counts.selected).toBe(130);
  });

  it("reports certificates past the offset cap (offset counts records: 150 reachable)", async () => {
    const ids = addCertificates("chk", 180, "CHECKING");
    const { run, lines } = sweep({ raw: { statuses: "CHECKING", maxJobs: "500" } });
    const report = await run;
    expect(report.enqueued.map((j) => j.certificateId)).toEqual(ids.slice(0, 150));
    expect(report.passes[0]).toMatchObject({
      totalCount: 180,
      listed: 150,
      unreachable: 30,
      truncatedBy: "offset_cap",
    });
    expect(report.counts.unreachable).toBe(30);
    expect(report.warnings).toEqual([
      "CHECKING: SCM reports 180 matching certificates but the listing's offset cap (offset ≤ 100, counting records) reaches only the first 150; 30 were not seen. Narrow with the content filter, or run again once these are withdrawn.",
    ]);
    expect(lines.find((l) => l.event === "cleanup_offset_cap_reached")).toMatchObject({
      level: "warn",
      status: "CHECKING",
      totalCount: 180,
      reachable: 150,
      unreachable: 30,
    });
  });

  it("reports certificates past the offset cap (offset counts pages: 101 pages reachable)", async () => {
    stack.sim.listOffsetMode = "pages";
    const ids = addCertificates("chk", 1015, "CHECKING");
    const report = await sweep({ pageSize: 10, raw: { statuses: "CHECKING", maxJobs: "2000" } }).run;
    expect(listCalls()).toHaveLength(101);
    expect(listCalls().at(-1)).toMatchObject({ offset: "100", limit: "10" });
    expect(report.counts).toMatchObject({ selected: 1010, unreachable: 5 });
    expect(report.enqueued.map((j) => j.certificateId)).toEqual(ids.slice(0, 1010));
    expect(report.warnings[0]).toContain("counting pages) reaches only the first 1010; 5 were not seen");
  });
});

describe("never the same certificate twice in a run", () => {
  it("skips a certificate that shows up again under a second status", async () => {
    const [moving, ...others] = addCertificates("chk", 3, "CHECKING");
    const hooked = listingHook((query) => {
      // The application moves to organisation validation between the two passes.
      if (query.status === "CHECKING") stack.sim.setStatus(moving!, "CHECKING_ORG");
    });
    const report = await sweep({}, { scm: hooked }).run;
    expect(report.enqueued.map((j) => j.certificateId).sort()).toEqual([moving, ...others].sort());
    expect(report.skipped).toEqual([{ certificateId: moving, status: "CHECKING_ORG", reason: "duplicate" }]);
    expect(jobsOf(await drainQueue()).filter((j) => j.certificate_id === moving)).toHaveLength(1);
  });

  it("skips a certificate that shows up on two pages because the list shifted while paging", async () => {
    const ids = addCertificates("chk", 80, "CHECKING");
    const hooked = listingHook((_query, call) => {
      // After the first page, an older application appears at the head of the list: every later page
      // starts one record earlier, so the first page's last certificate is listed again.
      if (call === 1) stack.sim.addCertificate({ id: certId("new", 1), status: "CHECKING", updated_at: 1 });
    });
    const report = await sweep({ raw: { statuses: "CHECKING", maxJobs: "500" } }, { scm: hooked }).run;
    expect(report.enqueued.map((j) => j.certificateId)).toEqual(ids);
    expect(report.skipped).toEqual([{ certificateId: ids[49], status: "CHECKING", reason: "duplicate" }]);
    const sent = jobsOf(await drainQueue()).map((j) => j.certificate_id);
    expect(sent).toHaveLength(80);
    expect(new Set(sent).size).toBe(80);
  });
});

describe("listing errors", () => {
  it("re-reads the secret once after a 401 and goes on (a rotated token)", async () => {
    const ids = addCertificates("chk", 2, "CHECKING");
    const { deps, tokens } = dependencies();
    await tokens.getToken(); // a warm container holds the old token
    stack.sim.rejectToken(TEST_TOKEN);
    stack.sim.acceptToken(ROTATED_TOKEN);
    stack.secrets.setSecret(SECRET_ID, ROTATED_TOKEN);
    const readsBefore = stack.secrets.reads(SECRET_ID);

    const report = await runCleanup(deps, {
      runId: "cleanup-rotated",
      mode: "enqueue",
      filters: filters(),
      offsetMode: "auto",
    });
    expect(report.enqueued.map((j) => j.certificateId)).toEqual(ids);
    expect(stack.secrets.reads(SECRET_ID) - readsBefore).toBe(1);
    expect(stack.sim.calls.filter((c) => c.kind === "list").map((c) => c.status)).toEqual([401, 200, 200, 200]);
  });

  it("fails with one line when the refreshed token is refused too, and enqueues nothing", async () => {
    addCertificates("chk", 2, "CHECKING");
    stack.sim.rejectToken(TEST_TOKEN);
    const error = await sweep().run.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CleanupError);
    expect(error).toMatchObject({ code: "listing_unauthorized", httpStatus: 401 });
    expect((error as Error).message).toMatch(
      /^listing CHECKING certificates \(offset 0\): SCM answered HTTP 401 APIGW\.0301 .* \(the token was refreshed once and still refused\); nothing was enqueued$/,
    );
    expect((error as Error).message).not.toContain("\n");
    expect(await drainQueue()).toEqual([]);
  });

  it("retries transient answers with backoff and goes on", async () => {
    const ids = addCertificates("chk", 2, "CHECKING");
    stack.sim.inject({ call: "list" }, faults.unavailable(), faults.throttle());
    const { run, lines } = sweep({ raw: { statuses: "CHECKING" } });
    const report = await run;
    expect(report.enqueued.map((j) => j.certificateId)).toEqual(ids);
    expect(stack.sim.calls.map((c) => c.status)).toEqual([503, 429, 200]);
    expect(lines.filter((l) => l.event === "cleanup_listing_retrying").map((l) => l.reason)).toEqual([
      "server_error",
      "throttled",
    ]);
  });

  it("fails after MAX_ATTEMPTS transient answers, and enqueues nothing", async () => {
    addCertificates("chk", 2, "CHECKING");
    stack.sim.injectAlways({ call: "list" }, faults.gatewayTimeout());
    const error = await sweep().run.catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "listing_unavailable", httpStatus: 504, errorCode: "APIG.0203" });
    expect((error as Error).message).toBe(
      "listing CHECKING certificates (offset 0) failed 3 times, last: HTTP 504 APIG.0203 Backend timeout.; nothing was enqueued",
    );
    expect(stack.sim.calls).toHaveLength(3);
    expect(await drainQueue()).toEqual([]);
  });

  it("fails on a permanent answer mid-way and enqueues nothing, not even the pages already read", async () => {
    addCertificates("chk", 120, "CHECKING");
    const hooked = listingHook((_query, call) => {
      if (call === 1) stack.sim.inject({ call: "list" }, faults.scmError(403, "SCM.0003", "tenant has no privilege"));
    });
    const error = await sweep({ offsetMode: "records" }, { scm: hooked }).run.catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "listing_rejected", httpStatus: 403, errorCode: "SCM.0003" });
    expect((error as Error).message).toBe(
      "listing CHECKING certificates (offset 50): SCM answered HTTP 403 SCM.0003 tenant has no privilege; nothing was enqueued",
    );
    expect(await drainQueue()).toEqual([]);
  });

  it.each([400, 500])(
    "decides the listing by error_code first: SCM.0003 under %i fails at once, without retrying",
    async (status) => {
      addCertificates("chk", 2, "CHECKING");
      stack.sim.inject({ call: "list" }, faults.scmError(status, "SCM.0003", "tenant has no privilege"));
      const error = await sweep().run.catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "listing_rejected", httpStatus: status, errorCode: "SCM.0003" });
      expect(stack.sim.calls).toHaveLength(1);
      expect(await drainQueue()).toEqual([]);
    },
  );

  it("retries a listing answered 400 SCM.0016 (a transient business code), then lists", async () => {
    addCertificates("chk", 2, "CHECKING");
    stack.sim.inject({ call: "list" }, faults.scmError(400, "SCM.0016", "order exception"));
    await sweep().run;
    expect(stack.sim.calls.map((c) => c.status).slice(0, 2)).toEqual([400, 200]);
    expect(await drainQueue()).toHaveLength(2);
  });

  it("fails before calling SCM when the token cannot be read", async () => {
    addCertificates("chk", 2, "CHECKING");
    stack.secrets.failNext(Infinity);
    const error = await sweep().run.catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "token_unavailable" });
    expect((error as Error).message).toMatch(/^cannot get the SCM token \(secret_fetch_failed\): /);
    expect(stack.sim.calls).toEqual([]);
  });

  it("fails with a clear line when the listing's answer has no certificates array", async () => {
    stack.sim.inject({ call: "list" }, faults.answer(200, { items: [] }));
    const error = await sweep().run.catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "listing_unexpected" });
    expect((error as Error).message).toBe(
      "listing CHECKING certificates (offset 0): SCM answered HTTP 200 without a usable {certificates, total_count} body",
    );
  });
});

describe("the scheduled handler", () => {
  type Handler = (event: ScheduledEvent, context: Context) => Promise<unknown>;
  const event: ScheduledEvent = {
    version: "0",
    id: "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
    "detail-type": "Scheduled Event",
    source: "aws.events",
    account: "123456789012",
    time: "2026-11-27T10:15:00Z",
    region: "eu-west-1",
    resources: ["arn:aws:events:eu-west-1:123456789012:rule/scm-withdraw-dev-cleanup"],
    detail: {},
  };

  async function coldStart(env: Record<string, string>): Promise<Handler> {
    process.env = { ...savedEnv, ...stack.env, WITHDRAWAL_QUEUE_URL: stack.queueUrl, ...env };
    vi.resetModules();
    const module = await import("../../handlers/cleanup.ts");
    return module.handler as unknown as Handler;
  }

  it("enqueues one job per match with the run id derived from the event, end to end", async () => {
    const ids = addCertificates("chk", 6, "CHECKING");
    const handler = await coldStart({ CLEANUP_MODE: "enqueue", CLEANUP_EXCLUDE: ids[5]! });
    const report = (await handler(event, lambdaContext(60_000))) as Awaited<ReturnType<typeof runCleanup>>;
    const runId = runIdForEvent(event, new Date());
    expect(runId).toMatch(/^cleanup-20261127T101500Z-[0-9a-f]{4}$/);
    expect(report).toMatchObject({
      runId,
      mode: "enqueue",
      counts: { found: 6, enqueued: 5, skipped: { excluded: 1 } },
    });
    const jobs = jobsOf(await drainQueue());
    expect(jobs.map((j) => j.certificate_id).sort()).toEqual(ids.slice(0, 5).sort());
    expect(jobs.every((j) => j.source === "cleanup" && j.batch_id === runId)).toBe(true);
    expect(capturedOutput()).toContain(`"event":"cleanup_finished"`);
  });

  it("is a dry run by default: reports what it would enqueue and sends nothing", async () => {
    addCertificates("chk", 3, "CHECKING");
    const handler = await coldStart({ CLEANUP_MODE: "" });
    const report = (await handler(event, lambdaContext(60_000))) as Awaited<ReturnType<typeof runCleanup>>;
    expect(report).toMatchObject({ mode: "dry-run", counts: { selected: 3, enqueued: 0 } });
    expect(await drainQueue()).toEqual([]);
    expect(capturedOutput()).toContain(`"event":"cleanup_job_planned"`);
  });

  it("does nothing at all when off: no secret read, no SCM call", async () => {
    addCertificates("chk", 3, "CHECKING");
    const reads = stack.secrets.reads();
    const handler = await coldStart({ CLEANUP_MODE: "off" });
    expect(await handler(event, lambdaContext(60_000))).toEqual({ mode: "off" });
    expect(stack.sim.calls).toEqual([]);
    expect(stack.secrets.reads()).toBe(reads);
  });

  it("fails the invocation with one logged line when the listing fails", async () => {
    stack.sim.injectAlways({ call: "list" }, faults.scmError(403, "SCM.0003", "tenant has no privilege"));
    const handler = await coldStart({ CLEANUP_MODE: "enqueue" });
    await expect(handler(event, lambdaContext(60_000))).rejects.toMatchObject({
      name: "CleanupError",
      code: "listing_rejected",
    });
    expect(capturedOutput()).toMatch(/"event":"cleanup_failed".*"code":"listing_rejected"/);
  });

  it("refuses to start with a bad configuration, naming every bad variable", async () => {
    await expect(
      coldStart({
        CLEANUP_MODE: "yes",
        CLEANUP_STATUSES: "CHECKING,ISSUED",
        CLEANUP_EXCLUDE: "scs1, ../x",
        CLEANUP_MAX_JOBS: "0",
      }),
    ).rejects.toThrow(
      /^Invalid configuration: CLEANUP_MODE must be one of off, dry-run, enqueue \(got "yes"\); CLEANUP_STATUSES must list statuses with an application under review .*ISSUED cannot be withdrawn.*; CLEANUP_EXCLUDE has ids that are not 16 characters A-Z, a-z, 0-9: "scs1", "..\/x"; CLEANUP_MAX_JOBS must be an integer from 1 to 10000 \(got "0"\)$/,
    );
  });
});

describe("a sweep and the worker, round trip", () => {
  type WithdrawHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;

  it("withdraws what a sweep enqueued, and a second overlapping sweep's jobs end as already withdrawn, not in the DLQ", async () => {
    const ids = addCertificates("chk", 3, "CHECKING");
    process.env = { ...savedEnv, ...stack.env };
    vi.resetModules();
    const withdraw = (await import("../../handlers/withdraw.ts")).handler as unknown as WithdrawHandler;
    const config = loadCleanupConfig({
      ...stack.env,
      WITHDRAWAL_QUEUE_URL: stack.queueUrl,
      CLEANUP_MODE: "enqueue",
      LOG_LEVEL: "warn",
    });
    const runtime = createCleanupRuntime(config, { sqs: stack.sqs, secretsManager, scm });

    // Two sweeps run before the worker catches up: both enqueue the same three applications.
    const first = await runtime.run({ runId: "cleanup-20261127T101500Z-aaaa" });
    const second = await runtime.run({ runId: "cleanup-20261128T101500Z-bbbb" });
    expect(first.counts.enqueued).toBe(3);
    expect(second.counts.enqueued).toBe(3);
    const messages = await drainQueue();
    const batch = (runId: string) =>
      messages
        .filter((m) => JSON.parse(m.Body!).batch_id === runId)
        .map((m) => sqsRecord(m.Body!, { messageId: m.MessageId! }));

    const firstResponse = await withdraw(sqsEvent(...batch(first.runId)), lambdaContext());
    expect(firstResponse.batchItemFailures).toEqual([]);
    for (const id of ids) expect(stack.sim.certificate(id)?.status).toBe("CANCELCHECKING");
    stack.sim.setStatus(ids[0]!, "PAID"); // one of them has already settled

    const secondResponse = await withdraw(sqsEvent(...batch(second.runId)), lambdaContext());
    expect(secondResponse.batchItemFailures).toEqual([]);
    expect(await stack.drainDlq()).toEqual([]);
    for (const id of ids) expect(stack.sim.withdrawals(id)).toBe(1);
    expect(capturedOutput().match(/"event":"withdrawal_already_withdrawn"/g)?.length).toBeGreaterThanOrEqual(3);

    // Nothing is under review any more: the next sweep finds nothing to do.
    const third = await runtime.run({ runId: "cleanup-20261129T101500Z-cccc" });
    expect(third.counts).toMatchObject({ found: 0, enqueued: 0 });
    runtime.close();
  });
});

describe("scm-withdraw cleanup (the CLI)", () => {
  let dir: string;
  let tokenFile: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), "cleanup-cli-"));
    tokenFile = path.join(dir, "token");
    writeFileSync(tokenFile, `${TEST_TOKEN}\n`);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /**
   * Runs the CLI in-process with the cleanup command registered, against the stack, with the connection
   * flags unless the test gives its own, and `--yes` for a run that enqueues (there is no terminal here).
   */
  async function cli(...argv: string[]) {
    return cliWith({}, ...(argv.includes("--dry-run") ? [] : ["--yes"]), ...argv);
  }

  async function cliWith(io: Partial<CliIo>, ...argv: string[]) {
    const out: string[] = [];
    const err: string[] = [];
    const base = {
      "--queue-url": stack.queueUrl,
      "--endpoint-url": stack.sqsEndpoint,
      "--scm-endpoint": stack.sim.url,
      "--token-file": tokenFile,
    };
    const connection = Object.entries(base)
      .filter(([flag]) => !argv.includes(flag))
      .flat();
    const code = await main(
      ["cleanup", ...connection, ...argv],
      { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) }, env: {}, ...io },
      // The module imported above, not the index's lazy entry: after vi.resetModules() (earlier tests)
      // a lazy load would get fresh copies of the CLI's modules and their error classes.
      [cleanupCommand],
    );
    return { code, stdout: out.join(""), stderr: err.join("") };
  }

  it("refuses to enqueue without a terminal and without --yes, calling nothing", async () => {
    const { code, stdout, stderr } = await cliWith({});
    expect({ code, stdout }).toEqual({ code: 2, stdout: "" });
    expect(stderr).toBe(
      "scm-withdraw: error: cleanup enqueues a withdrawal for every application it finds (--dry-run shows which): pass --yes to confirm (there is no terminal to ask on) (see `scm-withdraw cleanup --help`)\n",
    );
    expect(stack.sim.calls).toEqual([]);
  });

  it("on a terminal, lists, shows the count by status and asks; no enqueues nothing, yes enqueues", async () => {
    const ids = addCertificates("chk", 2, "CHECKING");
    const questions: string[] = [];
    const ask = (reply: string) => async (question: string) => {
      questions.push(question);
      return reply;
    };
    const declined = await cliWith({ ask: ask("") }, "--status", "CHECKING", "--reason", "stale");
    expect(declined.code).toBe(1);
    expect(declined.stderr).toMatch(/^status\s+to enqueue\nCHECKING\s+2\nnot confirmed: nothing was enqueued\n$/);
    expect(questions).toEqual(['enqueue 2 withdrawals (reason "stale") to withdrawals? [y/N] ']);
    expect(await drainQueue()).toEqual([]);
    const accepted = await cliWith({ ask: ask("y") }, "--status", "CHECKING", "--reason", "stale");
    expect(accepted.code).toBe(0);
    expect(
      jobsOf(await drainQueue())
        .map((j) => j.certificate_id)
        .sort(),
    ).toEqual([...ids].sort());
  });

  it("--dry-run prints what it would enqueue and enqueues nothing", async () => {
    const ids = addCertificates("chk", 3, "CHECKING", { name: "shop", domain: "shop.example.com" });
    const { code, stdout, stderr } = await cli("--dry-run", "--exclude", ids[2]!);
    expect(code).toBe(0);
    expect(stderr).toBe("");
    expect(stdout).toMatch(/^cleanup run cleanup-\d{8}T\d{6}Z-[0-9a-f]{4} \(dry run, nothing enqueued\)\n/);
    expect(stdout).toContain(`${ids[0]}  CHECKING  shop  shop.example.com  would enqueue`);
    expect(stdout).toMatch(new RegExp(`${ids[2]}\\s+CHECKING\\s+excluded`));
    expect(stdout).toMatch(/found 3, would enqueue 2, skipped 1 \(excluded 1\), not reachable 0 in \d+ ms\n$/);
    expect(stdout).toContain(
      "ages: unknown without the ledger (SCM's listing has none): every application under review is selected",
    );
    expect(await drainQueue()).toEqual([]);
  });

  it("--min-age needs the ledger, and a well-formed age", async () => {
    addCertificates("chk", 1, "CHECKING");
    const noLedger = await cli("--min-age", "7d");
    expect(noLedger.code).toBe(1);
    expect(noLedger.stderr).toContain("CLEANUP_MIN_AGE needs the ledger (LEDGER_TABLE)");
    const bad = await cli("--min-age", "a week");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--min-age must be a whole number of minutes, hours or days");
    expect(await drainQueue()).toEqual([]);
  });

  it("enqueues with the flags' filters, from an exclude file, up to --max, and prints the batch id", async () => {
    const ids = addCertificates("chk", 6, "CHECKING");
    const excludeFile = path.join(dir, "keep.txt");
    writeFileSync(excludeFile, `# customers who asked to keep theirs\n${ids[0]}\n`);
    const { code, stdout } = await cli(
      "--exclude-file",
      excludeFile,
      "--max",
      "3",
      "--reason",
      "stale (OPS-9)",
      "--status",
      "CHECKING",
    );
    expect(code).toBe(0);
    const batchId = /^batch_id: (cleanup-\S+)$/m.exec(stdout)?.[1];
    expect(batchId).toBeDefined();
    expect(stdout).toContain("over the cap (--max 3): 2 not enqueued: ");
    const jobs = jobsOf(await drainQueue());
    expect(jobs.map((j) => j.certificate_id).sort()).toEqual(ids.slice(1, 4).sort());
    expect(jobs.every((j) => j.source === "cleanup" && j.batch_id === batchId && j.reason === "stale (OPS-9)")).toBe(
      true,
    );
  });

  it("--json prints the whole report, and the offset-cap warning goes to stderr", async () => {
    addCertificates("chk", 160, "CHECKING");
    const { code, stdout, stderr } = await cli("--json", "--dry-run", "--status", "CHECKING", "--max", "500");
    expect(code).toBe(0);
    const report = JSON.parse(stdout);
    expect(report).toMatchObject({
      mode: "dry-run",
      offsetMode: "records",
      counts: { selected: 150, unreachable: 10 },
    });
    expect(stderr).toBe(`warning: ${report.warnings[0]}\n`);
    expect(stderr).toContain("10 were not seen");
  });

  it.each([
    [
      ["--status", "ISSUED"],
      "--status must list statuses with an application under review (CHECKING, CHECKING_ORG, SUPPLEMENTCHECKING); ISSUED cannot be withdrawn",
    ],
    [["--exclude", "scs1,scs1481110651012"], '--exclude has ids that are not 16 characters A-Z, a-z, 0-9: "scs1"'],
    [["--max", "0"], "--max must be an integer from 1 to 10000"],
    [["--offset-mode", "rows"], "--offset-mode must be one of auto, records, pages"],
    [["--exclude-file", "/nonexistent/keep.txt"], "--exclude-file: cannot read /nonexistent/keep.txt (ENOENT)"],
    [["--scm-endpoint", "http://scm.example.com"], "--scm-endpoint must be an https:// URL"],
    [["stray"], 'cleanup takes no arguments (got "stray")'],
  ])("refuses %j in one line, exit 2, calling nothing", async (argv, message) => {
    const { code, stdout, stderr } = await cli(...argv);
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr.split("\n").filter(Boolean)).toHaveLength(1);
    expect(stderr).toContain(`scm-withdraw: error: ${message}`);
    expect(stack.sim.calls).toEqual([]);
  });

  it('lists with AK/SK-signed calls when the token file holds {"aksk": ...}', async () => {
    const ids = addCertificates("chk", 2, "CHECKING");
    stack.sim.acceptAccessKey(TEST_AKSK);
    const akskFile = path.join(dir, "aksk.json");
    writeFileSync(
      akskFile,
      JSON.stringify({
        aksk: { access_key: TEST_AKSK.accessKey, secret_key: TEST_AKSK.secretKey, domain_id: TEST_AKSK.domainId },
      }),
    );
    const { code, stdout, stderr } = await cli("--dry-run", "--token-file", akskFile);
    expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
    for (const id of ids) expect(stdout).toContain(`${id}  CHECKING`);
    const lists = stack.sim.calls.filter((c) => c.kind === "list");
    expect(lists.length).toBeGreaterThan(0);
    expect(lists.every((c) => c.tokenRef === `aksk#${TEST_AKSK.accessKey}`)).toBe(true);
    expect(stdout + stderr).not.toContain(TEST_AKSK.secretKey.slice(0, 12));
  });

  it("refuses a token file that cannot hold a token, without printing it", async () => {
    const bad = path.join(dir, "short-token");
    writeFileSync(bad, "too-short");
    const { code, stderr } = await cli("--token-file", bad);
    expect(code).toBe(2);
    expect(stderr).toBe(
      `scm-withdraw: error: --token-file ${bad}: the stored token is shorter than 32 characters, so it cannot be an IAM token (see \`scm-withdraw cleanup --help\`)\n`,
    );
    expect(stack.sim.calls).toEqual([]);
  });

  it("reads the token from the Secrets Manager secret in SCM_TOKEN_SECRET_ID when no --token-file is given", async () => {
    const ids = addCertificates("chk", 2, "CHECKING");
    // The SDK takes its endpoint and credentials from the process environment, as on a laptop.
    process.env = {
      ...savedEnv,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: stack.secrets.url,
      AWS_ACCESS_KEY_ID: stack.secrets.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: stack.secrets.credentials.secretAccessKey,
    };
    const reads = stack.secrets.reads(SECRET_ID);
    const out: string[] = [];
    const code = await main(
      ["cleanup", "--dry-run", "--queue-url", stack.queueUrl, "--scm-endpoint", stack.sim.url, "--json"],
      {
        stdout: { write: (s: string) => out.push(s) },
        stderr: { write: () => {} },
        env: { SCM_TOKEN_SECRET_ID: SECRET_ID },
      },
      [cleanupCommand],
    );
    process.env = savedEnv;
    expect(code).toBe(0);
    expect(JSON.parse(out.join("")).selected.map((j: { certificateId: string }) => j.certificateId)).toEqual(ids);
    expect(stack.secrets.reads(SECRET_ID)).toBe(reads + 1);
  });

  it("uses the local pipeline's demo token for a simulator on 127.0.0.1 at any port (npm start -- --scm-port N)", async () => {
    const ids = addCertificates("chk", 1, "CHECKING");
    stack.sim.acceptToken(LOCAL.demoToken);
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(
      ["cleanup", "--dry-run", "--queue-url", stack.queueUrl, "--scm-endpoint", stack.sim.url, "--json"],
      { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) }, env: {} },
      [cleanupCommand],
    );
    expect(err.join("")).toBe("");
    expect(code).toBe(0);
    expect(JSON.parse(out.join("")).selected.map((j: { certificateId: string }) => j.certificateId)).toEqual(ids);
  });

  it("fails in one line, exit 1, when the listing fails, and enqueues nothing", async () => {
    addCertificates("chk", 3, "CHECKING");
    stack.sim.injectAlways({ call: "list" }, faults.scmError(403, "SCM.0003", "tenant has no privilege"));
    const { code, stdout, stderr } = await cli();
    expect(code).toBe(1);
    expect(stdout).toBe("");
    expect(stderr).toBe(
      "scm-withdraw: error: listing CHECKING certificates (offset 0): SCM answered HTTP 403 SCM.0003 tenant has no privilege; nothing was enqueued\n",
    );
    expect(await drainQueue()).toEqual([]);
  });
});
