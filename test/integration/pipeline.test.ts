/**
 * The local pipeline end to end: `npm start -- --drain` as a user runs it, then `startPipeline`
 * (fauxqs + the SCM simulator + the real handler in its containers, through the event-source
 * runner), then the runner's Lambda semantics with a plain function. Random free ports throughout.
 */
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import type { Context, SQSBatchResponse, SQSEvent } from "aws-lambda";
import { buildApp } from "fauxqs";
import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { buildWithdrawalBody } from "../../lib/message.ts";
import { DEMO } from "../../local/demo-certificates.ts";
import {
  DEMO_EXPECTED,
  formatSummary,
  REDRIVE_POLICY_REASON,
  startPipeline,
  summaryChanged,
  type Pipeline,
} from "../../local/pipeline.ts";
import { createEventSourceRunner, type InvocationReport, type Invoke } from "../../local/runner.ts";
import { faults } from "../../local/scm-simulator.ts";
import { TEST_TOKEN } from "../support/secrets.ts";

const REPO = new URL("../..", import.meta.url).pathname;
const FREE_PORTS = { sqsPort: 0, scmPort: 0, secretsPort: 0 } as const;
/** Fast local settings: a failed record comes back after 1 s; one SCM call per invocation. */
const FAST_ENV = { MAX_ATTEMPTS: "1", SCM_TIMEOUT_MS: "300", RETRY_BASE_DELAY_MS: "5", RETRY_MAX_DELAY_MS: "20" };
const job = (certificateId: string) => buildWithdrawalBody({ certificate_id: certificateId, source: "manual" });

let scratch: string;
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), "scm-withdraw-pipeline-"));
});
afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

/** `npm start` on free ports with a 1 s visibility timeout, its output piped (the Ctrl-C tests). */
function spawnStart(logFile: string) {
  const ports = ["--sqs-port", "0", "--scm-port", "0", "--secrets-port", "0"];
  return spawn(
    process.execPath,
    ["--import", "tsx", "scripts/start.ts", ...ports, "--visibility-timeout", "1", "--log-file", logFile],
    { cwd: REPO, env: { ...process.env, FORCE_COLOR: "0" }, stdio: ["ignore", "pipe", "pipe"] },
  );
}

describe.concurrent("the local pipeline", () => {
  it.each([
    ["", "drain", []],
    [" (business errors inside HTTP 500)", "drain-500", ["--business-errors-as-500"]],
  ])("npm start -- --drain%s runs the demo jobs and ends with the expected table", async (_name, dir, flags) => {
    const tokenFile = join(scratch, `token-${dir}.txt`);
    writeFileSync(tokenFile, `${TEST_TOKEN}\n`);
    const logFile = join(scratch, dir, "worker.log");
    const ports = ["--sqs-port", "0", "--scm-port", "0", "--secrets-port", "0"];
    const args = [
      "start",
      "--",
      "--drain",
      ...ports,
      "--visibility-timeout",
      "1",
      "--token-file",
      tokenFile,
      "--log-file",
      logFile,
      ...flags,
    ];
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        "npm",
        args,
        { cwd: REPO, timeout: 60_000, env: { ...process.env, FORCE_COLOR: "0" } },
        (error, stdout, stderr) =>
          resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr }),
      );
    });

    expect(stderr, stderr).not.toMatch(/npm start:/);
    expect(code).toBe(0);
    const row = (label: string) => Number(new RegExp(`^\\s+${label}\\s+(\\d+)$`, "m").exec(stdout)?.[1]);
    expect(row("withdrawn")).toBe(DEMO_EXPECTED.withdrawn);
    expect(row("already withdrawn")).toBe(DEMO_EXPECTED.alreadyWithdrawn);
    for (const [reason, count] of Object.entries(DEMO_EXPECTED.deadLettered)) expect(row(reason), reason).toBe(count);
    expect(row("dead-lettered \\(in the DLQ\\)")).toBe(6);
    expect(row("still pending")).toBe(0);
    // The handler's JSON lines went to the log file, not to the screen; the token went nowhere.
    expect(stdout).not.toMatch(/^\{/m);
    const log = readFileSync(logFile, "utf8");
    expect(log.split("\n").filter((l) => l.includes('"event":"withdrawal_succeeded"'))).toHaveLength(
      DEMO_EXPECTED.withdrawn,
    );
    // The same outcomes whichever shape SCM's business errors come in.
    const forbidden = log
      .split("\n")
      .find((l) => l.includes('"event":"withdrawal_dead_lettered"') && l.includes("SCM.0003"));
    expect(forbidden).toContain(`"status":${flags.length > 0 ? 500 : 403}`);
    const deadLetterFile = readdirSync(join(scratch, dir)).find((name) => name.startsWith("dead-letters-"));
    expect(deadLetterFile).toBeDefined();
    const deadLetters = readFileSync(join(scratch, dir, deadLetterFile!), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { failure_reason: string });
    expect(deadLetters.map((d) => d.failure_reason).sort()).toEqual(
      Object.entries(DEMO_EXPECTED.deadLettered)
        .flatMap(([r, n]) => Array(n).fill(r))
        .sort(),
    );
    for (const text of [stdout, stderr, log]) expect(text.includes(TEST_TOKEN)).toBe(false);
  });

  it("npm start never prints the credentials of an --scm-endpoint it refuses", async () => {
    const tokenFile = join(scratch, "token-refused.txt");
    writeFileSync(tokenFile, `${TEST_TOKEN}\n`);
    const endpoint = "https://admin:S3cretPassw0rd@scm.example.com";
    const args = ["--import", "tsx", "scripts/start.ts", "--scm-endpoint", endpoint, "--token-file", tokenFile];
    const { code, stderr } = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(process.execPath, args, { cwd: REPO, timeout: 30_000 }, (error, _stdout, stderr) =>
        resolve({ code: typeof error?.code === "number" ? error.code : 0, stderr }),
      );
    });
    expect(code).toBe(2);
    expect(stderr).toContain("--scm-endpoint must be an https:// URL");
    expect(stderr).not.toContain("admin");
    expect(stderr).not.toContain("S3cretPassw0rd");
  });

  it("Ctrl-C after more jobs came in: the last summary npm start prints counts them", async () => {
    const logFile = join(scratch, "ctrl-c", "worker.log");
    const child = spawnStart(logFile);
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
    try {
      // The demo jobs are done and summed up; then two more jobs come from another producer.
      await vi.waitFor(() => expect(stdout).toContain("Still running."), { timeout: 40_000, interval: 100 });
      const endpoint = /AWS_ENDPOINT_URL_SQS=(http:\/\/127\.0\.0\.1:\d+)/.exec(stdout)![1]!;
      const queueUrl = /^ {2}queue {5}(\S+)$/m.exec(stdout)![1]!;
      const dlqUrl = /^ {2}DLQ {7}(\S+)$/m.exec(stdout)![1]!;
      const sqs = new SQSClient({
        endpoint,
        region: "eu-west-1",
        credentials: { accessKeyId: "local", secretAccessKey: "local" },
      });
      try {
        await sqs.send(
          new SendMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: [DEMO.withdrawn, DEMO.notFound].map((id, i) => ({ Id: String(i), MessageBody: job(id) })),
          }),
        );
        const depth = async (url: string) => {
          const { Attributes } = await sqs.send(
            new GetQueueAttributesCommand({
              QueueUrl: url,
              AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            }),
          );
          return (
            Number(Attributes!.ApproximateNumberOfMessages) + Number(Attributes!.ApproximateNumberOfMessagesNotVisible)
          );
        };
        // Both processed (the not-found one is in the DLQ beside the demo's 6), whether or not a summary followed yet.
        await vi.waitFor(async () => expect([await depth(queueUrl), await depth(dlqUrl)]).toEqual([0, 7]), {
          timeout: 20_000,
          interval: 50,
        });
      } finally {
        sqs.destroy();
      }
      child.kill("SIGINT");
      expect(await exited).toBe(130);
    } finally {
      child.kill("SIGKILL");
    }

    expect(stderr, stderr).not.toMatch(/npm start:/);
    expect(stdout).toMatch(/^SIGINT: stopping/m);
    // The last table printed, in the loop or on Ctrl-C, is the one "nothing changed since" refers to.
    const last = (label: string) =>
      Number([...stdout.matchAll(new RegExp(`^\\s+${label}\\s+(\\d+)$`, "gm"))].at(-1)?.[1]);
    expect(last("withdrawn")).toBe(DEMO_EXPECTED.withdrawn);
    expect(last("already withdrawn")).toBe(DEMO_EXPECTED.alreadyWithdrawn + 1);
    expect(last("not_found")).toBe(DEMO_EXPECTED.deadLettered.not_found + 1);
    expect(last("dead-lettered \\(in the DLQ\\)")).toBe(7);
    expect(last("still pending")).toBe(0);
  });

  it("Ctrl-C with stdout and stderr gone (`npm start | tee log`, tee stopped too): stops cleanly and still saves the DLQ", async () => {
    const dir = join(scratch, "epipe");
    const child = spawnStart(join(dir, "worker.log"));
    let stdout = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
    try {
      await vi.waitFor(() => expect(stdout).toContain("Still running."), { timeout: 40_000, interval: 100 });
      // The reader goes away: every later write of the child fails with EPIPE.
      child.stdout.destroy();
      child.stderr.destroy();
      child.kill("SIGINT");
      expect(await exited).toBe(130);
    } finally {
      child.kill("SIGKILL");
    }
    const saved = readdirSync(dir).find((name) => name.startsWith("dead-letters-"));
    expect(saved).toBeDefined();
    expect(readFileSync(join(dir, saved!), "utf8").trim().split("\n")).toHaveLength(6);
  });

  it("names every taken port at once, before starting anything", async () => {
    const taken = await Promise.all(
      [0, 1].map(
        () =>
          new Promise<Server>((resolve) => {
            const server = createServer();
            server.listen(0, "127.0.0.1", () => resolve(server));
          }),
      ),
    );
    const [sqsPort, secretsPort] = taken.map((server) => (server.address() as AddressInfo).port);
    try {
      await expect(startPipeline({ sqsPort, scmPort: 0, secretsPort })).rejects.toThrow(
        `ports ${sqsPort} (SQS), ${secretsPort} (Secrets Manager) on 127.0.0.1 are already in use`,
      );
    } finally {
      for (const server of taken) server.close();
    }
  });

  it("summaryChanged: a delivery that moves no row of the table (a job the ledger already has as withdrawn) is still a change", async () => {
    const pipeline = await startPipeline({
      ...FREE_PORTS,
      ledger: true,
      dynamoDbPort: 0,
      seedDemo: false,
      visibilityTimeoutSeconds: 1,
      maxConcurrency: 1,
      env: FAST_ENV,
    });
    try {
      const sim = pipeline.sim!;
      const id = "summary000000001";
      sim.addCertificate({ id, status: "CHECKING" });
      const body = buildWithdrawalBody({ certificate_id: id, source: "manual", request_id: "summary-changed-1" });
      await pipeline.enqueue([body]);
      const shown = await pipeline.drain({ timeoutMs: 20_000 });
      expect(shown.withdrawn).toBe(1);
      // Only time has passed: nothing to print again.
      expect(summaryChanged(shown, await pipeline.stats())).toBe(false);

      // The same job from another producer: the worker acknowledges it without calling SCM (the ledger
      // has it as withdrawn), so every row of the table stays as it was; only the deliveries moved.
      await pipeline.enqueue([body]);
      const now = await pipeline.drain({ timeoutMs: 20_000 });
      expect(sim.withdrawals(id)).toBe(1);
      expect(now.runner.records).toBe(shown.runner.records + 1);
      expect(formatSummary(now).split("\n").slice(1)).toEqual(formatSummary(shown).split("\n").slice(1));
      expect(summaryChanged(shown, now)).toBe(true);
      expect(summaryChanged(undefined, now)).toBe(true);
      expect(summaryChanged(now, (await pipeline.stop()).stats)).toBe(false);
    } finally {
      await pipeline.stop();
    }
  });

  describe("through the runner, the real handler and the simulator", () => {
    let pipeline: Pipeline;
    const reports: InvocationReport[] = [];
    beforeAll(async () => {
      pipeline = await startPipeline({
        ...FREE_PORTS,
        seedDemo: false,
        visibilityTimeoutSeconds: 1,
        maxReceiveCount: 3,
        maxConcurrency: 1,
        env: FAST_ENV,
        onInvocation: (r) => reports.push(r),
      });
    });
    afterAll(async () => {
      await pipeline?.stop();
    });
    const deliveriesOf = (messageId: string) =>
      reports.flatMap((r) =>
        r.messageIds.flatMap((id, i) =>
          id === messageId ? [{ receiveCount: r.receiveCounts[i], failed: r.failed.includes(id) }] : [],
        ),
      );

    it.each([
      ["two 503s", "retry00000000503", () => [faults.unavailable(), faults.unavailable()]],
      ["two hangs beyond SCM_TIMEOUT_MS", "retry0000000hang", () => [faults.hang(), faults.hang()]],
    ])(
      "redelivers a record that fails transiently twice (%s), not deleted in between, then withdraws it",
      async (_name, id, makeFaults) => {
        const sim = pipeline.sim!;
        sim.addCertificate({ id, status: "CHECKING" });
        sim.inject(id, ...makeFaults());
        const [sent] = await pipeline.enqueue([job(id)]);
        expect(sent?.ok).toBe(true);
        const messageId = sent!.ok ? sent!.messageId : "";

        await vi.waitFor(() => expect(sim.withdrawals(id)).toBe(1), { timeout: 20_000, interval: 100 });
        await pipeline.drain({ timeoutMs: 20_000 });
        // Same message, three receives: the failed ones stayed on the queue and came back.
        expect(deliveriesOf(messageId)).toEqual([
          { receiveCount: 1, failed: true },
          { receiveCount: 2, failed: true },
          { receiveCount: 3, failed: false },
        ]);
        expect(sim.calls.filter((c) => c.kind === "cancel" && c.certificateId === id)).toHaveLength(3);
        const stats = await pipeline.stats();
        expect(stats.deadLettered).toEqual({});
        expect(stats.pending).toEqual({ inQueue: 0, inFlight: 0 });
      },
    );
  });

  it("the queue's redrive policy moves a record the worker never settles to the DLQ", async () => {
    const reports: InvocationReport[] = [];
    // MAX_RECEIVE_COUNT 1: the queue's redrive maxReceiveCount is 3.
    const pipeline = await startPipeline({
      ...FREE_PORTS,
      seedDemo: false,
      visibilityTimeoutSeconds: 1,
      maxReceiveCount: 1,
      maxConcurrency: 1,
      env: FAST_ENV,
      onInvocation: (r) => reports.push(r),
    });
    try {
      // Secrets Manager down: the handler hands the whole batch back every time, never dead-letters.
      pipeline.secrets.failNext(Infinity);
      const body = job("redrive000000001");
      const [sent] = await pipeline.enqueue([body]);
      const stats = await pipeline.drain({ timeoutMs: 20_000 });

      expect(stats.deadLettered).toEqual({ [REDRIVE_POLICY_REASON]: 1 });
      expect(stats.withdrawn).toBe(0);
      expect(reports.flatMap((r) => r.receiveCounts)).toEqual([1, 2, 3]);
      expect(reports.every((r) => r.outcome === "partial" && r.failed.length === 1)).toBe(true);
      const { deadLetters } = await pipeline.stop();
      expect(deadLetters).toMatchObject([{ messageId: sent!.ok ? sent!.messageId : "", body, attributes: {} }]);
    } finally {
      await pipeline.stop();
    }
  });

  it("stop() lets the batch in flight finish and reports what it did not start: nothing is lost", async () => {
    const pipeline = await startPipeline({
      ...FREE_PORTS,
      seedDemo: false,
      visibilityTimeoutSeconds: 1,
      maxConcurrency: 1,
      batchSize: 1,
      env: { ...FAST_ENV, SCM_TIMEOUT_MS: "5000" },
    });
    try {
      const sim = pipeline.sim!;
      const slow = "stopslow00000001";
      const waiting = "stopwait00000001";
      sim.addCertificate({ id: slow, status: "CHECKING" });
      sim.addCertificate({ id: waiting, status: "CHECKING" });
      sim.inject(slow, faults.delay(1500));
      await pipeline.enqueue([job(slow)]);
      await vi.waitFor(() => expect(sim.calls.some((c) => c.certificateId === slow)).toBe(true), {
        timeout: 10_000,
        interval: 20,
      });
      await pipeline.enqueue([job(waiting)]);

      const report = await pipeline.stop();
      // The batch in flight finished and was deleted; the job behind it is handed back.
      expect(sim.withdrawals(slow)).toBe(1);
      expect(report.stats.withdrawn).toBe(1);
      expect(report.unfinished.map((m) => m.body)).toEqual([job(waiting)]);
      expect(sim.withdrawals(waiting)).toBe(0);
      expect(report.deadLetters).toEqual([]);
    } finally {
      await pipeline.stop();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// The runner's Lambda semantics, with a plain function as the handler
// ---------------------------------------------------------------------------------------------

interface Queue {
  sqs: SQSClient;
  queueUrl: string;
  queueArn: string;
  close(): Promise<void>;
}

async function startQueue(visibilityTimeout = 1): Promise<Queue> {
  const app = buildApp({ logger: false });
  await app.listen({ port: 0, host: "127.0.0.1" });
  const endpoint = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const sqs = new SQSClient({
    endpoint,
    region: "eu-west-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
  });
  const queueUrl = (
    await sqs.send(
      new CreateQueueCommand({
        QueueName: "runner-test",
        Attributes: { VisibilityTimeout: String(visibilityTimeout) },
      }),
    )
  ).QueueUrl!;
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["QueueArn"] }),
  );
  return {
    sqs,
    queueUrl,
    queueArn: Attributes!.QueueArn!,
    close: async () => {
      sqs.destroy();
      await app.close();
    },
  };
}

/** Runs `invoke` as the function until `done` says so; returns every invocation's report. */
async function runUntil(
  queue: Queue,
  invoke: Invoke,
  done: (reports: InvocationReport[]) => boolean,
  options: { batchSize?: number; batchingWindowMs?: number; functionTimeoutMs?: number } = {},
) {
  const reports: InvocationReport[] = [];
  const runner = createEventSourceRunner({
    sqs: queue.sqs,
    queueUrl: queue.queueUrl,
    queueArn: queue.queueArn,
    region: "eu-west-1",
    invoke,
    visibilityTimeoutSeconds: 1,
    maxConcurrency: 1,
    ...options,
    onInvocation: (r) => reports.push(r),
  });
  runner.start();
  try {
    await vi.waitFor(() => expect(done(reports)).toBe(true), { timeout: 15_000, interval: 50 });
  } finally {
    await runner.stop();
  }
  return reports;
}

describe.concurrent("the event-source runner", () => {
  it("hands the function Lambda-shaped records and a context counting down from the function timeout", async () => {
    const queue = await startQueue();
    try {
      await queue.sqs.send(
        new SendMessageCommand({
          QueueUrl: queue.queueUrl,
          MessageBody: '{"certificate_id":"scs1000000000001"}',
          MessageAttributes: { origin: { DataType: "String", StringValue: "test" } },
        }),
      );
      let seen: { event: SQSEvent; remaining: number } | undefined;
      await runUntil(
        queue,
        async (event: SQSEvent, context: Context) => {
          seen = { event, remaining: context.getRemainingTimeInMillis() };
          return { batchItemFailures: [] };
        },
        (r) => r.length === 1,
        { functionTimeoutMs: 7000 },
      );
      const record = seen!.event.Records[0]!;
      expect(record).toMatchObject({
        body: '{"certificate_id":"scs1000000000001"}',
        md5OfBody: createHash("md5").update('{"certificate_id":"scs1000000000001"}').digest("hex"),
        eventSource: "aws:sqs",
        eventSourceARN: queue.queueArn,
        awsRegion: "eu-west-1",
        attributes: { ApproximateReceiveCount: "1" },
        messageAttributes: {
          origin: { dataType: "String", stringValue: "test", stringListValues: [], binaryListValues: [] },
        },
      });
      expect(record.messageId).toMatch(/^[0-9a-f-]{36}$/);
      expect(record.receiptHandle).toBeTruthy();
      expect(Number(record.attributes.SentTimestamp)).toBeGreaterThan(0);
      expect(seen!.remaining).toBeGreaterThan(0);
      expect(seen!.remaining).toBeLessThanOrEqual(7000);
    } finally {
      await queue.close();
    }
  });

  it("deletes only the records that succeeded; the failed ones come back with a higher ApproximateReceiveCount", async () => {
    const queue = await startQueue();
    try {
      await queue.sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: queue.queueUrl,
          Entries: ["ok-1", "fail", "ok-2"].map((body, i) => ({ Id: String(i), MessageBody: body })),
        }),
      );
      const seen: { body: string; receiveCount: string }[] = [];
      const reports = await runUntil(
        queue,
        async (event: SQSEvent): Promise<SQSBatchResponse> => {
          seen.push(
            ...event.Records.map((r) => ({ body: r.body, receiveCount: r.attributes.ApproximateReceiveCount })),
          );
          const failing = event.Records.filter(
            (r) => r.body === "fail" && r.attributes.ApproximateReceiveCount === "1",
          );
          return { batchItemFailures: failing.map((r) => ({ itemIdentifier: r.messageId })) };
        },
        (r) => r.some((report) => report.receiveCounts.includes(2)),
      );
      expect(reports[0]!.outcome).toBe("partial");
      expect(seen.filter((s) => s.body.startsWith("ok")).map((s) => s.receiveCount)).toEqual(["1", "1"]);
      expect(seen.filter((s) => s.body === "fail").map((s) => s.receiveCount)).toEqual(["1", "2"]);
    } finally {
      await queue.close();
    }
  });

  it.each([
    ["the function throws", "error", async () => Promise.reject(new Error("boom"))],
    [
      "the function outlives its timeout",
      "timeout",
      (_e: SQSEvent, _c: Context, signal: AbortSignal) =>
        new Promise((_, reject) => signal.addEventListener("abort", () => reject(new Error("aborted")))),
    ],
    [
      "the response names a message that is not in the batch (Lambda: invalid)",
      "invalid_response",
      async () => ({ batchItemFailures: [{ itemIdentifier: "not-in-this-batch" }] }),
    ],
    [
      "the response has an empty itemIdentifier (Lambda: invalid)",
      "invalid_response",
      async () => ({ batchItemFailures: [{ itemIdentifier: "" }] }),
    ],
  ] as const)("deletes nothing when %s", async (_name, outcome, behave) => {
    const queue = await startQueue();
    try {
      await queue.sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: queue.queueUrl,
          Entries: ["a", "b"].map((body, i) => ({ Id: String(i), MessageBody: body })),
        }),
      );
      let calls = 0;
      const invoke: Invoke = async (event, context, signal) => {
        calls += 1;
        // First delivery misbehaves; the redelivery succeeds, so the run ends.
        return calls === 1 ? (behave as Invoke)(event, context, signal) : undefined;
      };
      const reports = await runUntil(queue, invoke, (r) => r.some((report) => report.outcome === "success"), {
        functionTimeoutMs: 500,
      });
      expect(reports[0]!.outcome).toBe(outcome);
      expect(reports[0]!.succeeded).toEqual([]);
      // Both records came back: nothing of the failed batch had been deleted.
      expect(reports.at(-1)!.receiveCounts).toEqual([2, 2]);
    } finally {
      await queue.close();
    }
  });

  it("fills a batch during the batching window", async () => {
    const queue = await startQueue();
    try {
      const sizes: number[] = [];
      const runner = createEventSourceRunner({
        sqs: queue.sqs,
        queueUrl: queue.queueUrl,
        queueArn: queue.queueArn,
        region: "eu-west-1",
        visibilityTimeoutSeconds: 5,
        maxConcurrency: 1,
        batchSize: 3,
        batchingWindowMs: 10_000,
        invoke: async (event) => void sizes.push(event.Records.length),
      });
      runner.start();
      for (const body of ["1", "2", "3"]) {
        await queue.sqs.send(new SendMessageCommand({ QueueUrl: queue.queueUrl, MessageBody: body }));
        await new Promise((resolve) => setTimeout(resolve, 150));
      }
      // A full batch ends the window early.
      await vi.waitFor(() => expect(sizes).toEqual([3]), { timeout: 8000, interval: 50 });
      await runner.stop();
    } finally {
      await queue.close();
    }
  });
});
