/**
 * The chaos run, small: a few hundred jobs through fauxqs, the real handler in its containers and the
 * SCM simulator injecting random faults, with the event source killed twice in the middle of batches.
 * The same invariants as `npm run chaos`: nothing lost, every permanent fault in the DLQ with its
 * reason, nothing dead-lettered that should have succeeded, no application withdrawn twice.
 * Then a tampered run proves the reconciliation is not blind, and the plan's own guarantees are checked.
 */
import { DeleteMessageCommand, ReceiveMessageCommand, SendMessageCommand, type Message } from "@aws-sdk/client-sqs";
import { execFile } from "node:child_process";
import { describe, expect, it } from "vitest";
import {
  CHAOS_DEFAULTS,
  formatAccounting,
  formatDiscrepancies,
  planChaos,
  runChaos,
  type ChaosPlan,
} from "../../local/chaos.ts";
import { parseWithdrawalBody } from "../../lib/message.ts";
import { TEST_TOKEN } from "../support/secrets.ts";

const REPO = new URL("../..", import.meta.url).pathname;
/** Fixed, so a failure here can be replayed with the same plan (`planChaos` below). */
const SEED = 20261127;

describe("the chaos run", () => {
  it("accounts for every job through random faults and two kills mid-batch: none lost, none wrongly dead-lettered, no double withdrawal", async () => {
    // MAX_RECEIVE_COUNT 4 (the least that leaves two receives for kills) and 3 containers keep it quick.
    const plan = planChaos({ jobs: 200, seed: SEED, kills: 2, maxConcurrency: 3, maxReceiveCount: 4 });
    const report = await runChaos(plan, { token: TEST_TOKEN });

    // On failure, the message is the accounting table and each discrepancy with its evidence.
    const explain = `${formatAccounting(report)}\n${formatDiscrepancies(report)}`;
    expect(report.discrepancies, explain).toEqual([]);
    expect(report.ok, explain).toBe(true);
    for (const [outcome, count] of Object.entries(report.expected))
      expect(report.actual[outcome as keyof typeof report.actual], `${outcome}\n${explain}`).toBe(count);
    expect(report.actual.lost).toBe(0);
    expect(report.doubleWithdrawals).toBe(0);

    // The kills really happened in the middle of work: batches died in their containers, and one
    // kill fell between a handler's answer and the delete of what it had acknowledged.
    expect(report.kills, explain).toHaveLength(2);
    expect(report.kills.map((k) => k.mode).sort()).toEqual(["before_delete", "mid_invocation"]);
    for (const kill of report.kills) expect(kill.recordsKilled + kill.deletesDropped, explain).toBeGreaterThan(0);
    expect(report.kills.find((k) => k.mode === "before_delete")!.deletesDropped, explain).toBeGreaterThan(0);
    // Their messages came back (at-least-once), and withdrawals done before a kill or a lost answer
    // ended as "already withdrawn", counted as withdrawn.
    expect(report.runner.redeliveries).toBeGreaterThan(0);
    expect(report.recoveredAsAlreadyWithdrawn).toBeGreaterThan(0);
    expect(report.faultsUsed).toBeGreaterThan(100);
  }, 60_000);

  it("notices a lost job, a job dead-lettered that succeeded, and a DLQ message matching no job", async () => {
    // No always-failing jobs and no kills: a quick run.
    const full = planChaos({ jobs: 30, seed: SEED + 1, kills: 0, maxConcurrency: 2 });
    const plan: ChaosPlan = { ...full, jobs: full.jobs.filter((j) => j.profile !== "always_failing") };
    const clean = plan.jobs.find((j) => j.profile === "clean")!;
    let lostBody = "";
    const report = await runChaos(plan, {
      token: TEST_TOKEN,
      afterEnqueue: async ({ sqs, queueUrl, dlqUrl }) => {
        // A job vanishes from the queue (as a bug that deletes without processing would do)...
        let message: Message | undefined;
        do {
          message = (
            await sqs.send(
              new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 1, VisibilityTimeout: 30 }),
            )
          ).Messages?.[0];
        } while (message?.Body === clean.body);
        lostBody = message!.Body!;
        await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message!.ReceiptHandle! }));
        // ...a clean job is also found in the DLQ, and the DLQ holds something no job sent.
        const attributes = { failure_reason: { DataType: "String", StringValue: "retries_exhausted" } };
        await sqs.send(
          new SendMessageCommand({ QueueUrl: dlqUrl, MessageBody: clean.body, MessageAttributes: attributes }),
        );
        await sqs.send(
          new SendMessageCommand({
            QueueUrl: dlqUrl,
            MessageBody: '{"certificate_id":"forged0000000000"}',
            MessageAttributes: attributes,
          }),
        );
      },
    });

    expect(report.ok).toBe(false);
    expect(report.discrepancies.map((d) => d.kind).sort(), formatDiscrepancies(report)).toEqual([
      "lost",
      "unexpected_dead_letter",
      "wrongly_dead_lettered",
    ]);
    expect(report.discrepancies.find((d) => d.kind === "lost")!.job!.body).toBe(lostBody);
    expect(report.discrepancies.find((d) => d.kind === "wrongly_dead_lettered")!.job).toBe(clean);
    expect(formatAccounting(report)).toMatch(/^\s+lost\s+0\s+1\s+FAIL$/m);
    expect(formatAccounting(report)).toMatch(/RESULT: FAILED \(3 discrepancies\)/);
  }, 30_000);

  it("plans the same run from the same seed, within what the worker can absorb", () => {
    const a = planChaos({ jobs: 2000, seed: 42 });
    const b = planChaos({ jobs: 2000, seed: 42 });
    const c = planChaos({ jobs: 2000, seed: 43 });
    const shape = (plan: ChaosPlan) => plan.jobs.map((j) => `${j.body}|${j.description}|${j.expected}`);
    expect(shape(a)).toEqual(shape(b));
    expect(a.killAt).toEqual(b.killAt);
    expect(shape(a)).not.toEqual(shape(c));

    // Every profile occurs, every body is unique (the DLQ is matched by body), malformed ones really are.
    expect(new Set(a.jobs.map((j) => j.profile)).size).toBe(11);
    expect(new Set(a.jobs.map((j) => j.body)).size).toBe(a.jobs.length);
    for (const job of a.jobs) expect(parseWithdrawalBody(job.body).ok, job.body).toBe(job.profile !== "malformed");
    // A certificate that should be withdrawn has at most 2·MAX_ATTEMPTS − 1 transient faults: at most
    // two receives, leaving MAX_RECEIVE_COUNT − 2 for kills to waste.
    const faultsPerCertificate = new Map<string, number>();
    for (const job of a.jobs)
      if (job.certificateId)
        faultsPerCertificate.set(
          job.certificateId,
          (faultsPerCertificate.get(job.certificateId) ?? 0) + job.faults.length,
        );
    const withdrawable = a.jobs.filter((j) => j.expected === "withdrawn" || j.expected === "already_withdrawn");
    expect(Math.max(...withdrawable.map((j) => faultsPerCertificate.get(j.certificateId!)!))).toBeLessThanOrEqual(
      2 * CHAOS_DEFAULTS.maxAttempts - 1,
    );
    expect(() => planChaos({ maxReceiveCount: 3 })).toThrow("maxReceiveCount must be an integer of at least 4 (got 3)");
  });

  it("npm run chaos refuses a bad flag with one line and exit code 2", async () => {
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        "npx",
        ["tsx", "scripts/chaos.ts", "--jobs", "lots"],
        { cwd: REPO, timeout: 30_000 },
        (error, stdout, stderr) =>
          resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr }),
      );
    });
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(
      stderr
        .trim()
        .split("\n")
        .filter((l) => l.startsWith("npm run chaos:")),
    ).toEqual([
      'npm run chaos: --jobs must be a whole number from 1 to 1000000 (got "lots") (see `npm run chaos -- --help`)',
    ]);
  }, 30_000);
});
