/**
 * The ledger wired end to end (issue 8): the local pipeline (`startPipeline`: fauxqs, the SCM
 * simulator, the real handler in its containers) with the ledger on dynalite, the operator CLI
 * in-process (`bulk --wait`, `batch status --watch`, `batch report`, `dlq redrive`), and a second
 * pipeline whose ledger is a stopped dynalite (an outage). Random free ports throughout.
 */
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadCleanupConfig } from "../../lib/cleanup-config.ts";
import { createCleanupRuntime } from "../../lib/cleanup-runtime.ts";
import { resolveLedgerTarget } from "../../cli/context.ts";
import { deadLetterAttributes } from "../../lib/dead-letter.ts";
import { silentLogger } from "../../lib/logger.ts";
import { localRequester } from "../../lib/requester.ts";
import { buildWithdrawalBody } from "../../lib/message.ts";
import { startLocalDynamo } from "../../local/dynamodb.ts";
import { LOCAL } from "../../cli/local-defaults.ts";
import { DEMO } from "../../local/demo-certificates.ts";
import { startPipeline, type Pipeline } from "../../local/pipeline.ts";
import { faults, type ScmSimulator } from "../../local/scm-simulator.ts";
import { cli, drain } from "../support/cli.ts";

/** One SCM call per record per attempt, fast backoff; a failed record comes back after 1 s. */
const FAST = {
  visibilityTimeoutSeconds: 1,
  maxReceiveCount: 3,
  env: { MAX_ATTEMPTS: "3", RETRY_BASE_DELAY_MS: "5", RETRY_MAX_DELAY_MS: "20", SCM_TIMEOUT_MS: "1000" },
} as const;
const PORTS = { sqsPort: 0, scmPort: 0, secretsPort: 0, dynamoDbPort: 0 } as const;

/** Certificates under review that only these tests use (the demo ones cover every other outcome). */
const FRESH = ["ledgerE2E0000001", "ledgerE2E0000002", "ledgerE2E0000003", "ledgerE2E0000004"];
const UNKNOWN = "ledgerE2E0000404";
/** Every id of the mixed batch: each demo outcome, fresh withdrawals, and one SCM does not know. */
const BATCH_IDS = [...Object.values(DEMO), ...FRESH, UNKNOWN];

let scratch: string;
let withLedger: Pipeline;
let ledgerDown: Pipeline;
let stoppedEndpoint: string;
const logs = { withLedger: [] as string[], ledgerDown: [] as string[] };

const seed = (sim: ScmSimulator) => {
  for (const id of FRESH) sim.addCertificate({ id, status: "CHECKING" });
};

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), "scm-withdraw-ledger-e2e-"));
  // A dynalite that was running and is not any more: its port refuses connections (the outage).
  const stopped = await startLocalDynamo({ port: 0 });
  stoppedEndpoint = stopped.endpoint;
  await stopped.close();
  [withLedger, ledgerDown] = await Promise.all([
    startPipeline({ ...PORTS, ...FAST, ledger: true, onLogLine: (l) => logs.withLedger.push(l) }),
    startPipeline({
      ...PORTS,
      ...FAST,
      ledger: { endpoint: stoppedEndpoint, tableName: "ledger-down" },
      onLogLine: (l) => logs.ledgerDown.push(l),
    }),
  ]);
  seed(withLedger.sim!);
  seed(ledgerDown.sim!);
}, 60_000);

afterAll(async () => {
  await Promise.all([withLedger?.stop(), ledgerDown?.stop()]);
  rmSync(scratch, { recursive: true, force: true });
});

/** The CLI's flags and environment for a pipeline (its queue, its ledger). */
function target(pipeline: Pipeline): { flags: string[]; env: Record<string, string> } {
  return {
    flags: ["--queue-url", pipeline.queueUrl, "--dlq-url", pipeline.dlqUrl, "--endpoint-url", pipeline.sqsEndpoint],
    env: { LEDGER_TABLE: pipeline.ledger!.tableName, AWS_ENDPOINT_URL_DYNAMODB: pipeline.ledger!.endpoint },
  };
}

function file(name: string, lines: string[]): string {
  const path = join(scratch, name);
  writeFileSync(path, `${lines.join("\n")}\n`);
  return path;
}

const events = (lines: string[], event: string) =>
  lines
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((e) => e.event === event);
const cancelCalls = (sim: ScmSimulator, id: string) =>
  sim.calls.filter((c) => c.kind === "cancel" && c.certificateId === id).length;

/** The DLQ's messages, by certificate id → failure_reason (and removes them). */
async function deadLettersByCertificate(pipeline: Pipeline): Promise<Map<string, string>> {
  const messages = await drain(pipeline.sqs, pipeline.dlqUrl);
  return new Map(
    messages.map((m) => [
      m.MessageAttributes!.certificate_id!.StringValue!,
      m.MessageAttributes!.failure_reason!.StringValue!,
    ]),
  );
}

interface ReportLine {
  request_id: string;
  certificate_id: string;
  state: string;
  reason: string | null;
  http_status: number | null;
  error_code: string | null;
  error_msg: string | null;
  attempts: number;
  finished_at: string | null;
}

/** What the mixed batch ended as with the ledger on; the outage run must end the same. */
let reference: { deadLetters: Map<string, string>; withdrawals: Map<string, number>; batchId: string };

describe("a bulk batch followed to the end through the ledger", () => {
  it("bulk --wait sends, follows and exits 1 because some jobs were dead-lettered; the report matches what SCM saw", async () => {
    const { flags, env } = target(withLedger);
    const batchId = "e2e-mixed";
    const ids = file("mixed.txt", ["# every outcome", ...BATCH_IDS]);
    const run = await cli(
      [
        "bulk",
        "--yes",
        "--reason",
        "CHG-2001 decommission",
        ids,
        "--batch-id",
        batchId,
        "--wait",
        "--interval",
        "200ms",
        ...flags,
      ],
      { env },
    );

    expect(run.stderr).not.toMatch(/warning/);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain(`sent ${BATCH_IDS.length}, failed 0`);
    expect(run.stdout).toContain(`ledger: ${BATCH_IDS.length} jobs in batch ${batchId}`);
    expect(run.stdout).toContain(`batch ${batchId}: done, ${BATCH_IDS.length} of ${BATCH_IDS.length} jobs final`);
    expect(run.stdout).toMatch(new RegExp(`batch ${batchId} done with 5 dead-lettered jobs`));

    // The report, one line per job, against the simulator's own count of withdrawals.
    const out = join(scratch, "mixed-report.jsonl");
    const report = await cli(["batch", "report", batchId, "--out", out, ...flags], { env });
    expect(report.code).toBe(0);
    expect(report.stdout).toContain(`wrote ${BATCH_IDS.length} jobs to ${out}`);
    const lines = readFileSync(out, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as ReportLine);
    expect(lines.map((l) => l.certificate_id).sort()).toEqual([...BATCH_IDS].sort());
    expect(lines.map((l) => l.request_id).sort()).toEqual(BATCH_IDS.map((id) => `${batchId}:${id}`).sort());
    const sim = withLedger.sim!;
    const withdrawnByScm = BATCH_IDS.filter((id) => sim.withdrawals(id) === 1).sort();
    expect(
      lines
        .filter((l) => l.state === "withdrawn")
        .map((l) => l.certificate_id)
        .sort(),
    ).toEqual(withdrawnByScm);
    expect(withdrawnByScm).toEqual(
      [DEMO.withdrawn, DEMO.transientThenWithdrawn, DEMO.throttledThenWithdrawn, ...FRESH].sort(),
    );
    for (const id of BATCH_IDS) expect(sim.withdrawals(id), id).toBeLessThanOrEqual(1);
    expect(lines.find((l) => l.certificate_id === DEMO.alreadyWithdrawn)).toMatchObject({
      state: "already_withdrawn",
      http_status: 400,
      error_code: "SCM.0010",
    });

    // Dead letters: the report's reasons are the DLQ's failure_reason attributes, job for job.
    const deadLetters = await deadLettersByCertificate(withLedger);
    const reported = new Map(lines.filter((l) => l.state === "dead_lettered").map((l) => [l.certificate_id, l.reason]));
    expect(reported).toEqual(deadLetters);
    expect(Object.fromEntries(deadLetters)).toEqual({
      [DEMO.rejected]: "rejected",
      [DEMO.forbidden]: "forbidden",
      [DEMO.notFound]: "not_found",
      [DEMO.alwaysFailing]: "retries_exhausted",
      [UNKNOWN]: "not_found",
    });
    // Every line is final, with its time; SCM was called for every job; errors carry SCM's answer.
    for (const line of lines) {
      expect(["withdrawn", "already_withdrawn", "dead_lettered"], line.certificate_id).toContain(line.state);
      expect(line.finished_at).toMatch(/^\d{4}-\d\d-\d\dT/);
      expect(line.attempts).toBeGreaterThanOrEqual(1);
    }
    expect(lines.find((l) => l.certificate_id === DEMO.alwaysFailing)).toMatchObject({
      http_status: 500,
      error_code: "SCM.0500",
      attempts: 9,
    });
    // The audit trail: who sent each job (the OS user, for a local queue), why and when.
    for (const line of lines)
      expect(line).toMatchObject({
        requested_by: localRequester(),
        request_reason: "CHG-2001 decommission",
        requested_at: expect.stringMatching(/^\d{4}-/),
      });

    // The same report as CSV, by extension.
    const csv = join(scratch, "mixed-report.csv");
    expect((await cli(["batch", "report", batchId, "--out", csv, ...flags], { env })).code).toBe(0);
    const csvLines = readFileSync(csv, "utf8").trim().split("\n");
    expect(csvLines[0]).toBe(
      "request_id,certificate_id,state,reason,http_status,error_code,error_msg,attempts,finished_at,requested_by,request_reason,requested_at",
    );
    expect(csvLines).toHaveLength(BATCH_IDS.length + 1);

    // --json means JSON: the report on stdout is one JSON document with the same rows.
    const asJson = await cli(["batch", "report", batchId, "--json", ...flags], { env });
    expect(asJson.code).toBe(0);
    const document = JSON.parse(asJson.stdout);
    expect(document).toMatchObject({ batch_id: batchId, done: true });
    expect(document.jobs).toEqual(lines);

    reference = { deadLetters, withdrawals: new Map(BATCH_IDS.map((id) => [id, sim.withdrawals(id)])), batchId };
    // Nothing went wrong with the ledger itself.
    expect(events(logs.withLedger, "ledger_write_failed")).toEqual([]);
  }, 30_000);

  it("a DynamoDB outage changes no outcome: same dead letters, same withdrawals; the failures are logged and counted", async () => {
    expect(reference).toBeDefined();
    const { flags } = target(ledgerDown);
    const env = { LEDGER_TABLE: "ledger-down", AWS_ENDPOINT_URL_DYNAMODB: stoppedEndpoint };
    const ids = file("mixed-down.txt", BATCH_IDS);
    // The producer cannot record anything either: it says so, and sends every job all the same.
    const run = await cli(
      ["bulk", "--yes", "--reason", "outage rerun", ids, "--batch-id", reference.batchId, ...flags],
      { env },
    );
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`sent ${BATCH_IDS.length}, failed 0`);
    expect(run.stdout).toContain(`(${BATCH_IDS.length} jobs and the batch's total could not be recorded)`);
    expect(run.stderr).toMatch(/^warning: the ledger \(table ledger-down\) could not record queued: /m);

    await ledgerDown.drain({ timeoutMs: 20_000 });
    const sim = ledgerDown.sim!;
    expect(new Map(BATCH_IDS.map((id) => [id, sim.withdrawals(id)]))).toEqual(reference.withdrawals);
    expect(await deadLettersByCertificate(ledgerDown)).toEqual(reference.deadLetters);

    // The worker logged its failed ledger writes, and counted every failed or skipped one in its metrics.
    const failed = events(logs.ledgerDown, "ledger_write_failed");
    expect(failed.length).toBeGreaterThan(0);
    expect(
      failed.every((e) => e.table === "ledger-down" && (e.operation === "claim" || e.operation === "outcome")),
    ).toBe(true);
    expect(events(logs.ledgerDown, "ledger_unavailable").length).toBeGreaterThan(0);
    const metricLines = logs.ledgerDown
      .filter((l) => l.startsWith('{"_aws"'))
      .map((l) => JSON.parse(l) as { LedgerWriteFailed?: number });
    const counted = metricLines.reduce((sum, m) => sum + (m.LedgerWriteFailed ?? 0), 0);
    // Each delivery of a valid job makes a claim and records an outcome: at least 2 per job, all failed or skipped.
    expect(counted).toBeGreaterThanOrEqual(2 * BATCH_IDS.length);
    expect(events(logs.ledgerDown, "withdrawal_duplicate_skipped")).toEqual([]);
  }, 30_000);

  it("a duplicate delivery of a withdrawn job makes no second SCM call: sent twice, and redriven from the DLQ", async () => {
    expect(reference).toBeDefined();
    const { flags, env } = target(withLedger);
    const id = FRESH[0]!;
    const requestId = `${reference.batchId}:${id}`;
    const body = buildWithdrawalBody({
      certificate_id: id,
      source: "bulk",
      batch_id: reference.batchId,
      request_id: requestId,
    });
    const sim = withLedger.sim!;
    const callsBefore = cancelCalls(sim, id);
    const jobBefore = await withLedger.ledger!.ledger.getJob(
      { requestId, batchId: reference.batchId, certificateId: id },
      { consistent: true },
    );
    expect(jobBefore).toMatchObject({ state: "withdrawn", deliveries: 1 });

    // The same body twice (what an SQS at-least-once duplicate looks like)...
    for (let i = 0; i < 2; i++)
      await withLedger.sqs.send(new SendMessageCommand({ QueueUrl: withLedger.queueUrl, MessageBody: body }));
    // ... and once more through the DLQ and `dlq redrive`, which must not turn a success back into pending.
    await withLedger.sqs.send(
      new SendMessageCommand({
        QueueUrl: withLedger.dlqUrl,
        MessageBody: body,
        MessageAttributes: deadLetterAttributes({
          body,
          reason: "not_found",
          sourceMessageId: "m-old",
          certificateId: id,
          httpStatus: 404,
          errorCode: "SCM.0020",
          errorMsg: "gone",
          attempts: 1,
          receiveCount: 1,
          failedAt: new Date(),
        }),
      }),
    );
    const redrive = await cli(["dlq", "redrive", "--yes", "--reason", "not_found", ...flags], {
      env,
      dlqWaitSeconds: 0,
    });
    expect(redrive.code).toBe(0);
    expect(redrive.stdout).toContain("moved 1 message from withdrawals-dlq to withdrawals");
    await withLedger.drain({ timeoutMs: 15_000 });

    expect(cancelCalls(sim, id)).toBe(callsBefore);
    expect(sim.withdrawals(id)).toBe(1);
    const skipped = events(logs.withLedger, "withdrawal_duplicate_skipped").filter((e) => e.requestId === requestId);
    expect(skipped).toHaveLength(3);
    expect(skipped[0]).toMatchObject({ level: "info", certificateId: id, batchId: reference.batchId, attempt: 0 });
    expect(events(logs.withLedger, "batch_processed").some((e) => Number(e.duplicates) > 0)).toBe(true);
    // Acknowledged, not dead-lettered; the ledger still says withdrawn, once.
    expect(await drain(withLedger.sqs, withLedger.dlqUrl)).toEqual([]);
    expect(
      await withLedger.ledger!.ledger.getJob(
        { requestId, batchId: reference.batchId, certificateId: id },
        { consistent: true },
      ),
    ).toMatchObject({ state: "withdrawn", deliveries: 1, finishedAt: jobBefore!.finishedAt });
  }, 30_000);
});

describe("the other producers", () => {
  it("enqueue gives each job a request_id, records it before sending, and does not send a withdrawn one again", async () => {
    const { flags, env } = target(withLedger);
    const id = "ledgerE2EManual1";
    withLedger.sim!.addCertificate({ id, status: "CHECKING" });
    const first = await cli(["enqueue", id, "--request-id", "OPS-4411", ...flags], { env });
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^certificate_id\s+request_id\s+message_id$/m);
    expect(first.stdout).toMatch(new RegExp(`^${id}\\s+OPS-4411\\s+[0-9a-f-]{36}$`, "m"));
    await withLedger.drain({ timeoutMs: 15_000 });
    // A manual job has no batch: the ledger keys it by its request_id alone.
    expect(
      await withLedger.ledger!.ledger.getJob({ requestId: "OPS-4411", certificateId: id }, { consistent: true }),
    ).toMatchObject({ state: "withdrawn", source: "manual", certificateId: id });

    const again = await cli(["enqueue", id, "--request-id", "OPS-4411", "--json", ...flags], { env });
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({
      sent: [],
      already_done: [{ certificate_id: id, request_id: "OPS-4411" }],
    });
    expect(again.stderr).toBe(`${id}: request OPS-4411 is already withdrawn according to the ledger; not sent again\n`);
    expect(withLedger.sim!.withdrawals(id)).toBe(1);

    // Without --request-id, each job gets a fresh UUID (printed), so the ledger can know it.
    const generated = await cli(["enqueue", FRESH[2]!, "--json", ...flags], { env });
    expect(JSON.parse(generated.stdout).sent[0].request_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-/);
  }, 30_000);

  it("the cleanup sweep records its jobs under its run id, with the run's total: batch status follows it to the end", async () => {
    const { flags, env } = target(withLedger);
    const sim = withLedger.sim!;
    const ids = ["ledgerE2EClean01", "ledgerE2EClean02"];
    for (const id of ids)
      sim.addCertificate({ id, status: "CHECKING", name: "e2e-sweep", domain: "sweep.e2e.example.org" });
    const token = join(scratch, "token.txt");
    writeFileSync(token, LOCAL.demoToken);
    const run = await cli(
      [
        "cleanup",
        "--yes",
        "--content",
        "e2e-sweep",
        "--scm-endpoint",
        withLedger.scmEndpoint,
        "--token-file",
        token,
        "--json",
        ...flags,
      ],
      { env },
    );
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout) as { runId: string; counts: { enqueued: number } };
    expect(report.counts.enqueued).toBe(2);

    const watched = await cli(["batch", "status", report.runId, "--watch", "--interval", "100ms", "--json", ...flags], {
      env,
    });
    expect(watched.code).toBe(0);
    expect(JSON.parse(watched.stdout)).toMatchObject({
      batch_id: report.runId,
      done: true,
      expected_total: 2,
      counts: { withdrawn: 2 },
    });
    const jobs = [];
    for await (const job of withLedger.ledger!.ledger.batchJobs(report.runId)) jobs.push(job);
    expect(jobs.map((j) => [j.requestId, j.source, j.state, j.requestedBy]).sort()).toEqual(
      ids.map((id) => [`${report.runId}-${id}`, "cleanup", "withdrawn", localRequester()]),
    );
    for (const id of ids) expect(sim.withdrawals(id)).toBe(1);
  }, 30_000);
});

describe("a request_id reused for another certificate (issue 11 item 1)", () => {
  it("enqueue: the second certificate is its own job, sent and withdrawn, not skipped as already done", async () => {
    const { flags, env } = target(withLedger);
    const sim = withLedger.sim!;
    const [first, second] = ["ledgerE2EReuse01", "ledgerE2EReuse02"];
    for (const id of [first, second]) sim.addCertificate({ id, status: "CHECKING" });
    expect((await cli(["enqueue", first, "--request-id", "OPS-5511", ...flags], { env })).code).toBe(0);
    await withLedger.drain({ timeoutMs: 15_000 });
    const again = await cli(["enqueue", second, "--request-id", "OPS-5511", "--json", ...flags], { env });
    expect(again.code).toBe(0);
    const out = JSON.parse(again.stdout) as { sent: { certificate_id: string }[]; already_done: unknown[] };
    expect(out.already_done).toEqual([]);
    expect(out.sent.map((s) => s.certificate_id)).toEqual([second]);
    await withLedger.drain({ timeoutMs: 15_000 });
    expect(sim.withdrawals(first)).toBe(1);
    expect(sim.withdrawals(second)).toBe(1);
    // The same pair again is the same job: already done, not sent.
    const third = await cli(["enqueue", second, "--request-id", "OPS-5511", "--json", ...flags], { env });
    expect(JSON.parse(third.stdout)).toMatchObject({
      sent: [],
      already_done: [{ certificate_id: second, request_id: "OPS-5511" }],
    });
  }, 30_000);

  it("inside one batch: enqueue --batch-id twice, and the handler's claim, keep the two certificates apart", async () => {
    const { flags, env } = target(withLedger);
    const sim = withLedger.sim!;
    const ids = ["ledgerE2EReuse03", "ledgerE2EReuse04"];
    for (const id of ids) sim.addCertificate({ id, status: "CHECKING" });
    for (const id of ids)
      expect(
        (await cli(["enqueue", id, "--request-id", "OPS-5512", "--batch-id", "reuse-manual", ...flags], { env })).code,
      ).toBe(0);
    await withLedger.drain({ timeoutMs: 15_000 });
    for (const id of ids) expect(sim.withdrawals(id)).toBe(1);
    expect(events(logs.withLedger, "withdrawal_duplicate_skipped").filter((e) => e.requestId === "OPS-5512")).toEqual(
      [],
    );
    // Each manual enqueue adds its jobs to the batch's total, so the batch reaches "done" (issue 13 item 3).
    const status = await cli(["batch", "status", "reuse-manual", "--json", ...flags], { env });
    expect(JSON.parse(status.stdout)).toMatchObject({
      batch_id: "reuse-manual",
      done: true,
      expected_total: 2,
      counts: { withdrawn: 2 },
    });
  }, 30_000);

  it("bulk --wait with a CSV whose request_id column repeats: both jobs sent, withdrawn and counted; no stall", async () => {
    const { flags, env } = target(withLedger);
    const sim = withLedger.sim!;
    const ids = ["ledgerE2EReuse05", "ledgerE2EReuse06"];
    for (const id of ids) sim.addCertificate({ id, status: "CHECKING" });
    const csv = file("reuse.csv", ["certificate_id,request_id", `${ids[0]},CHG-77`, `${ids[1]},CHG-77`]);
    const run = await cli(
      [
        "bulk",
        "--yes",
        csv,
        "--batch-id",
        "reuse-bulk",
        "--reason",
        "test",
        "--wait",
        "--interval",
        "200ms",
        "--stall-timeout",
        "10s",
        ...flags,
      ],
      { env },
    );
    expect(run.stdout).toContain("sent 2, failed 0");
    expect(run.stdout).toContain("batch reuse-bulk: done, 2 of 2 jobs final");
    expect(run.code).toBe(0);
    for (const id of ids) expect(sim.withdrawals(id)).toBe(1);
  }, 30_000);
});

describe("bulk resumed after Ctrl-C (issue 13 item 4)", () => {
  it("prints how to resume; the re-run sends only what the ledger does not hold as queued or done", async () => {
    const { flags, env } = target(withLedger);
    const sim = withLedger.sim!;
    const ids = [1, 2, 3, 4, 5].map((n) => `ledgerE2EResum0${n}`);
    for (const id of ids) sim.addCertificate({ id, status: "CHECKING" });
    const path = file("resume.txt", ids);
    // Ctrl-C before the run starts: it reads one line, sends it, and stops.
    const interrupted = await cli(["bulk", "--yes", path, "--batch-id", "e2e-resume", "--reason", "CHG 12", ...flags], {
      env,
      signal: AbortSignal.abort(),
    });
    expect(interrupted.code).toBe(130);
    expect(interrupted.stdout).toContain("sent 1, failed 0");
    // The queue and the ledger given on the command line are in it: without them the resumed run talks to the default ones.
    const where = ["--queue-url", "--endpoint-url"]
      .flatMap((name) => [name, flags[flags.indexOf(name) + 1]!])
      .join(" ");
    expect(interrupted.stdout).toContain(
      `resume with: scm-withdraw bulk ${path} --batch-id e2e-resume --reason 'CHG 12' ${where} (jobs already queued or withdrawn are not sent again)`,
    );
    // No total yet: the batch must not look done before it is resumed.
    expect(
      JSON.parse((await cli(["batch", "status", "e2e-resume", "--json", ...flags], { env })).stdout),
    ).toMatchObject({ expected_total: null, done: false });

    const resumed = await cli(
      ["bulk", "--yes", path, "--batch-id", "e2e-resume", "--reason", "CHG 12", "--json", ...flags],
      { env },
    );
    expect(resumed.code).toBe(0);
    const out = JSON.parse(resumed.stdout) as Record<string, number>;
    expect(out.sent).toBe(4);
    expect(out.already_done! + out.already_queued!).toBe(1);
    await withLedger.drain({ timeoutMs: 15_000 });
    for (const id of ids) expect(sim.withdrawals(id)).toBe(1);
    expect(
      JSON.parse((await cli(["batch", "status", "e2e-resume", "--json", ...flags], { env })).stdout),
    ).toMatchObject({ expected_total: 5, done: true, counts: { withdrawn: 5 } });

    // A third run sends nothing at all; --resend-queued would send queued ones again, but all are done.
    const third = JSON.parse(
      (
        await cli(["bulk", "--yes", path, "--batch-id", "e2e-resume", "--reason", "CHG 12", "--json", ...flags], {
          env,
        })
      ).stdout,
    ) as Record<string, number>;
    expect(third).toMatchObject({ sent: 0, already_done: 5, already_queued: 0 });
  }, 30_000);

  it("bulk --wait --json: rate_per_second is the send's rate, not diluted by the time spent following", async () => {
    const { flags, env } = target(withLedger);
    const ids = ["ledgerE2ERate001", "ledgerE2ERate002"];
    for (const id of ids) withLedger.sim!.addCertificate({ id, status: "CHECKING" });
    const path = file("rate.txt", ids);
    const args = ["bulk", "--yes", path, "--reason", "r", "--wait", "--interval", "2s", "--json", ...flags];
    const out = JSON.parse((await cli(args, { env })).stdout) as {
      sent: number;
      elapsed_ms: number;
      rate_per_second: number;
    };
    expect(out.sent).toBe(2);
    // elapsed_ms is rounded to whole ms and the rate to a whole number: on a fast send (a few ms) that
    // rounding alone moves the rate a lot, so compare with the range the rounded elapsed_ms allows.
    const rateOver = (ms: number) => out.sent / Math.max(0.001, ms / 1000);
    expect(out.rate_per_second).toBeGreaterThanOrEqual(Math.floor(rateOver(out.elapsed_ms + 0.5)));
    expect(out.rate_per_second).toBeLessThanOrEqual(Math.ceil(rateOver(Math.max(0.001, out.elapsed_ms - 0.5))));
    // Diluted by following (--interval 2s), elapsed_ms would include at least one 2 s wait.
    expect(out.elapsed_ms).toBeLessThan(2000);
  }, 30_000);

  it("a job an earlier run recorded as queued is not sent again, unless --resend-queued", async () => {
    const { flags, env } = target(withLedger);
    const ids = ["ledgerE2EResum06", "ledgerE2EResum07"];
    for (const id of ids) withLedger.sim!.addCertificate({ id, status: "CHECKING" });
    const batchId = "e2e-resume-queued";
    // What an earlier run left: the first job recorded as queued (its message still in the queue).
    await withLedger.ledger!.ledger.recordQueued([
      { requestId: `${batchId}:${ids[0]}`, batchId, certificateId: ids[0], source: "bulk" },
    ]);
    const path = file("resume-queued.txt", ids);
    const run = JSON.parse(
      (await cli(["bulk", "--yes", path, "--batch-id", batchId, "--reason", "r", "--json", ...flags], { env })).stdout,
    ) as Record<string, number>;
    expect(run).toMatchObject({ sent: 1, already_queued: 1, already_done: 0 });
    const rows = readFileSync(`${path}.results.csv`, "utf8");
    expect(rows).toContain(`1,${ids[0]},already_queued,,`);
    const resend = JSON.parse(
      (
        await cli(
          ["bulk", "--yes", path, "--batch-id", batchId, "--reason", "r", "--resend-queued", "--json", ...flags],
          { env },
        )
      ).stdout,
    ) as Record<string, number>;
    expect(resend.sent! + resend.already_done!).toBe(2);
    await withLedger.drain({ timeoutMs: 15_000 });
    for (const id of ids) expect(withLedger.sim!.withdrawals(id)).toBe(1);
  }, 30_000);
});

describe("job <certificate_id | request_id> (issue 13 item 3)", () => {
  it("finds every job of a request_id across certificates, and of a certificate across batches, with who asked and the DLQ", async () => {
    const { flags, env } = target(withLedger);
    // OPS-5511 was used for two certificates by the test above: two jobs, both withdrawn.
    const byRequest = await cli(["job", "OPS-5511", "--json", ...flags], { env });
    expect(byRequest.code).toBe(0);
    const jobs = JSON.parse(byRequest.stdout).jobs as Record<string, unknown>[];
    expect(jobs.map((j) => [j.certificate_id, j.state, j.batch_id, j.requested_by, j.in_dlq])).toEqual([
      ["ledgerE2EReuse01", "withdrawn", null, localRequester(), false],
      ["ledgerE2EReuse02", "withdrawn", null, localRequester(), false],
    ]);

    // A certificate SCM does not know, sent in two batches: dead-lettered twice, both messages in the DLQ now.
    const gone = "ledgerE2EJob0404";
    for (const batch of ["job-a", "job-b"]) {
      expect((await cli(["enqueue", gone, "--batch-id", batch, "--reason", "ticket 7", ...flags], { env })).code).toBe(
        0,
      );
    }
    await withLedger.drain({ timeoutMs: 15_000 });
    const byCertificate = await cli(["job", gone, ...flags], { env });
    expect(byCertificate.code).toBe(0);
    expect(byCertificate.stdout).toMatch(
      /^2 jobs for ledgerE2EJob0404:\nbatch\s+request_id\s+certificate_id\s+state\s+attempts\s+last SCM answer\s+requested by\s+requested at\s+in DLQ\n/,
    );
    expect(byCertificate.stdout).toMatch(
      /^job-a\s+\S+\s+ledgerE2EJob0404\s+dead_lettered \(not_found\)\s+1\s+HTTP 404 SCM\.0020 .*\s+yes$/m,
    );
    expect(byCertificate.stdout).toMatch(/^job-b\s+.*\s+yes$/m);
    expect(byCertificate.stdout).toContain("ticket 7");
    const dlq = await deadLettersByCertificate(withLedger);
    expect(dlq.get(gone)).toBe("not_found");
    const afterDrain = JSON.parse((await cli(["job", gone, "--json", ...flags], { env })).stdout).jobs as Record<
      string,
      unknown
    >[];
    expect(afterDrain.map((j) => j.in_dlq)).toEqual([false, false]);

    // One request_id for two certificates, each with its own reason: each reason names its job.
    for (const [cert, why] of [
      ["ledgerE2EJob0501", "first"],
      ["ledgerE2EJob0502", "second"],
    ] as const) {
      expect((await cli(["enqueue", cert, "--request-id", "OPS-7700", "--reason", why, ...flags], { env })).code).toBe(
        0,
      );
    }
    const shared = await cli(["job", "OPS-7700", "--no-dlq", ...flags], { env });
    expect(shared.stdout).toContain("reason for OPS-7700 (ledgerE2EJob0501): first\n");
    expect(shared.stdout).toContain("reason for OPS-7700 (ledgerE2EJob0502): second\n");

    const none = await cli(["job", "NO-SUCH-REQUEST", ...flags], { env });
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('no job for "NO-SUCH-REQUEST" in the ledger');
  }, 30_000);
});

describe("the scheduled sweep (createCleanupRuntime, as handlers/cleanup.ts builds it)", () => {
  it("with LEDGER_TABLE, records its jobs and the run's total through its own DynamoDB client", async () => {
    const sim = withLedger.sim!;
    const ids = ["ledgerE2ESched01", "ledgerE2ESched02", "ledgerE2ESched03"];
    for (const id of ids)
      sim.addCertificate({ id, status: "CHECKING", name: "e2e-scheduled", domain: "scheduled.e2e.example.org" });
    // The SDK clients the runtime creates find the local services through the standard variables, as in Lambda.
    const saved = { ...process.env };
    Object.assign(process.env, {
      AWS_ENDPOINT_URL_SQS: withLedger.sqsEndpoint,
      AWS_ENDPOINT_URL_DYNAMODB: withLedger.ledger!.endpoint,
      AWS_REGION: withLedger.region,
      AWS_ACCESS_KEY_ID: "local",
      AWS_SECRET_ACCESS_KEY: "local",
      // What Lambda sets: the sweep's jobs say the function asked for them.
      AWS_LAMBDA_FUNCTION_NAME: "scm-withdraw-e2e-cleanup",
    });
    try {
      const config = loadCleanupConfig({
        ...process.env,
        CLEANUP_MODE: "enqueue",
        CLEANUP_CONTENT: "e2e-scheduled",
        CLEANUP_STATUSES: "CHECKING",
        SCM_ENDPOINT: withLedger.scmEndpoint,
        SCM_TOKEN_SECRET_ID: withLedger.secretId,
        WITHDRAWAL_QUEUE_URL: withLedger.queueUrl,
        LEDGER_TABLE: withLedger.ledger!.tableName,
      });
      expect(config.ledgerTable).toBe(withLedger.ledger!.tableName);
      const runtime = createCleanupRuntime(config, {
        logger: silentLogger,
        tokens: { getToken: async () => LOCAL.demoToken, refresh: async () => LOCAL.demoToken },
      });
      try {
        const report = await runtime.run({ runId: "cleanup-20261127T060000Z-e2e1" });
        expect(report.counts.enqueued).toBe(3);
      } finally {
        runtime.close();
      }
    } finally {
      for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
      Object.assign(process.env, saved);
    }
    await withLedger.drain({ timeoutMs: 15_000 });
    const status = await withLedger.ledger!.ledger.batchStatus("cleanup-20261127T060000Z-e2e1", { consistent: true });
    expect(status).toMatchObject({ expectedTotal: 3, recorded: 3, done: true, counts: { withdrawn: 3 } });
    for await (const job of withLedger.ledger!.ledger.batchJobs("cleanup-20261127T060000Z-e2e1"))
      expect(job.requestedBy).toBe("lambda:scm-withdraw-e2e-cleanup");
  }, 30_000);
});

describe("batch status", () => {
  it("--watch draws a progress bar while jobs are pending and ends, exit 0, when every job is final", async () => {
    const { flags, env } = target(withLedger);
    const slow = "ledgerE2EWatch01";
    const quick = "ledgerE2EWatch02";
    const sim = withLedger.sim!;
    sim.addCertificate({ id: slow, status: "CHECKING" });
    sim.addCertificate({ id: quick, status: "CHECKING" });
    // Three 503s: the first delivery's three attempts fail, the redelivery (1 s later) withdraws it.
    sim.inject(slow, faults.unavailable(), faults.unavailable(), faults.unavailable());
    const sent = await cli(
      ["bulk", "--yes", "--reason", "watch", file("watch.txt", [slow, quick]), "--batch-id", "e2e-watch", ...flags],
      { env },
    );
    expect(sent.code).toBe(0);

    let stderr = "";
    const watched = await cli(["batch", "status", "e2e-watch", "--watch", "--interval", "100ms", ...flags], {
      env,
      stderr: { write: (chunk: string) => (stderr += chunk), isTTY: true },
    });
    expect(watched.code).toBe(0);
    expect(watched.stdout).toContain("batch e2e-watch: done, 2 of 2 jobs final");
    expect(watched.stdout).toMatch(/^withdrawn\s+2\s+yes$/m);
    // It watched while the slow job was still pending: a frame of the bar short of 2/2.
    expect(stderr).toMatch(/\r\x1b\[K\[[#-]{24}\]\s+\d+% [01]\/2 final/);
    expect(sim.withdrawals(slow)).toBe(1);
    expect(sim.withdrawals(quick)).toBe(1);
    expect((await withLedger.ledger!.ledger.batchStatus("e2e-watch", { consistent: true })).done).toBe(true);

    const json = await cli(["batch", "status", "e2e-watch", "--json", ...flags], { env });
    expect(JSON.parse(json.stdout)).toMatchObject({
      batch_id: "e2e-watch",
      done: true,
      expected_total: 2,
      counts: { withdrawn: 2, dead_lettered: 0 },
    });
  }, 30_000);

  it("--watch gives up with exit 1 when nothing in the batch changes for --stall-timeout", async () => {
    const { flags, env } = target(withLedger);
    // A job recorded as queued that never reaches the queue: the batch can never be done.
    await withLedger.ledger!.ledger.recordQueued(
      [{ requestId: "stuck-1", batchId: "e2e-stall", certificateId: "ledgerE2EStall01", source: "bulk" }],
      { batchId: "e2e-stall", expectedTotal: 1 },
    );
    const run = await cli(
      ["batch", "status", "e2e-stall", "--watch", "--interval", "100ms", "--stall-timeout", "1s", ...flags],
      { env },
    );
    expect(run.code).toBe(1);
    expect(run.stdout).toContain("batch e2e-stall: in progress, 0 of 1 job final, 1 pending");
    expect(run.stderr).toContain(
      "batch e2e-stall stalled: nothing changed for 1.0 s, 1 job still pending (1 queued, 0 retrying, 0 requeued)",
    );
  });

  it("a bulk file with no valid line exits 1 and creates no batch", async () => {
    const { flags, env } = target(withLedger);
    const run = await cli(
      ["bulk", "--yes", "--reason", "test", file("no-valid.txt", ["scs12"]), "--batch-id", "e2e-empty", ...flags],
      { env },
    );
    expect(run.code).toBe(1);
    expect(run.stdout).toContain("nothing was sent and no batch was created");
    const status = await cli(["batch", "status", "e2e-empty", ...flags], { env });
    expect(status.code).toBe(1);
    expect(status.stderr).toContain('no batch "e2e-empty" in the ledger');
  });

  it("needs the ledger: without one, batch status and bulk --wait fail in one line and send nothing", async () => {
    const { flags } = target(withLedger);
    const status = await cli(["batch", "status", "e2e-watch", ...flags]);
    expect(status).toMatchObject({
      code: 1,
      stdout: "",
      stderr: "scm-withdraw: error: batch status needs the ledger: set LEDGER_TABLE or --ledger-table\n",
    });
    const ids = file("no-ledger.txt", [FRESH[1]!]);
    const bulk = await cli(["bulk", "--yes", "--reason", "test", ids, "--wait", ...flags]);
    expect(bulk).toMatchObject({
      code: 1,
      stdout: "",
      stderr: "scm-withdraw: error: bulk needs the ledger: set LEDGER_TABLE or --ledger-table\n",
    });
    expect(existsSync(`${ids}.results.csv`)).toBe(false);
    const unknown = await cli(["batch", "report", "no-such-batch", ...flags], { env: target(withLedger).env });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe(
      `scm-withdraw: error: no batch "no-such-batch" in the ledger (table ${withLedger.ledger!.tableName}): check the id (bulk prints it first) and --ledger-table\n`,
    );
  });
});

describe("the handler without and with LEDGER_TABLE", () => {
  const HANDLER = pathToFileURL(join(import.meta.dirname, "../../handlers/withdraw.ts")).href;
  /** Imports the handler in a fresh process, runs one record (Secrets Manager refuses), and lists the AWS SDK clients loaded. */
  const SCRIPT = `
import { createRequire } from "node:module";
const { handler } = await import(${JSON.stringify(HANDLER)});
const atImport = Object.keys(createRequire(import.meta.url).cache).filter((p) => p.includes("client-dynamodb")).length > 0;
const record = { messageId: "m-1", receiptHandle: "r", body: JSON.stringify({ certificate_id: "ledgerE2EImport1" }), attributes: { ApproximateReceiveCount: "1" }, messageAttributes: {}, md5OfBody: "", eventSource: "aws:sqs", eventSourceARN: "arn:aws:sqs:eu-west-1:000000000000:q", awsRegion: "eu-west-1" };
const response = await handler({ Records: [record] }, { getRemainingTimeInMillis: () => 10000, awsRequestId: "req-1" });
const afterBatch = Object.keys(createRequire(import.meta.url).cache).filter((p) => p.includes("client-dynamodb")).length > 0;
process.stderr.write(JSON.stringify({ atImport, afterBatch, failures: response.batchItemFailures.length }));
`;
  const closed = "http://127.0.0.1:9";
  const run = (extra: Record<string, string>) =>
    promisify(execFile)(process.execPath, ["--import", "tsx", "--no-warnings", "--input-type=module", "-e", SCRIPT], {
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        SCM_ENDPOINT: closed,
        SCM_TOKEN_SECRET_ID: "scm-withdraw/token",
        WITHDRAWAL_DLQ_URL: `${closed}/000000000000/withdrawals-dlq`,
        AWS_ENDPOINT_URL_SQS: closed,
        AWS_ENDPOINT_URL_SECRETS_MANAGER: closed,
        AWS_REGION: "eu-west-1",
        AWS_ACCESS_KEY_ID: "test",
        AWS_SECRET_ACCESS_KEY: "test",
        LOG_LEVEL: "error",
        ...extra,
      },
      timeout: 20_000,
    }).then(({ stderr }) => JSON.parse(stderr) as { atImport: boolean; afterBatch: boolean; failures: number });

  it("loads no DynamoDB SDK without LEDGER_TABLE, and none at import with it (the ledger loads on first use)", async () => {
    const [without, withTable] = await Promise.all([
      run({}),
      run({ LEDGER_TABLE: "t", AWS_ENDPOINT_URL_DYNAMODB: closed }),
    ]);
    // Secrets Manager is unreachable: the record is handed back, before any claim.
    expect(without).toEqual({ atImport: false, afterBatch: false, failures: 1 });
    expect(withTable).toMatchObject({ atImport: false, failures: 1 });
  });
});

describe("where the CLI finds the ledger", () => {
  const AWS_QUEUE = "https://sqs.ap-southeast-1.amazonaws.com/123456789012/scm-withdraw-prod-withdrawals";

  it("defaults to the local pipeline's table, only while the queue is the local pipeline's too", () => {
    expect(resolveLedgerTarget({}, {})).toEqual({
      tableName: "scm-withdraw-local-ledger",
      endpoint: "http://127.0.0.1:4582",
      region: "eu-west-1",
      local: true,
      implicit: true,
    });
    expect(resolveLedgerTarget({ "queue-url": AWS_QUEUE }, {})).toBeUndefined();
    expect(resolveLedgerTarget({}, { WITHDRAWAL_QUEUE_URL: AWS_QUEUE })).toBeUndefined();
  });

  it("takes --ledger-table or LEDGER_TABLE (flag first), AWS_ENDPOINT_URL_DYNAMODB, and the region of a real queue", () => {
    expect(resolveLedgerTarget({ "queue-url": AWS_QUEUE }, { LEDGER_TABLE: "scm-withdraw-prod-ledger" })).toEqual({
      tableName: "scm-withdraw-prod-ledger",
      endpoint: undefined,
      region: "ap-southeast-1",
      local: false,
      implicit: false,
    });
    // No queue URL and no region: the SDK's own resolution (a profile's region), not the local default.
    expect(resolveLedgerTarget({ "ledger-table": "t-flag" }, { LEDGER_TABLE: "t-env" })).toMatchObject({
      tableName: "t-flag",
      region: undefined,
      local: false,
    });
    expect(
      resolveLedgerTarget({}, { LEDGER_TABLE: "t-env", AWS_ENDPOINT_URL_DYNAMODB: "http://127.0.0.1:8000/" }),
    ).toMatchObject({ endpoint: "http://127.0.0.1:8000", region: "eu-west-1", local: true });
  });

  it("refuses a table name DynamoDB would refuse, and an endpoint that is not a URL, in one line", () => {
    expect(() => resolveLedgerTarget({ "ledger-table": "a b" }, {})).toThrow(
      /^--ledger-table must be a DynamoDB table name/,
    );
    expect(() => resolveLedgerTarget({}, { AWS_ENDPOINT_URL_DYNAMODB: "127.0.0.1:8000" })).toThrow(
      /^the DynamoDB endpoint must be a URL/,
    );
  });
});
