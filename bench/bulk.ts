import { readFileSync } from "node:fs";
/**
 * Comparison 4: bulk enqueue.
 * - 10,000 ids from a file to the local queue (fauxqs) with `scm-withdraw bulk`, called in-process
 *   through the CLI's own entry (`main(argv, io)` of cli/main.ts, exactly what the bin runs),
 *   against one `SendMessage` per id (a plain loop, the same bodies) in the same run.
 * - `scm-withdraw bulk --dry-run` over a 1,000,000-line file, run as a user would (the bin, in a
 *   child process), and that process's peak RSS.
 */
import { CreateQueueCommand, GetQueueAttributesCommand, SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { main } from "../cli/main.ts";
import { buildWithdrawalBody } from "../lib/message.ts";
import { PROJECT_ROOT } from "../scripts/build.mjs";
import { BENCH_DIR } from "./bundles.ts";
import { fixed, median, ratio, type Section } from "./report.ts";
import { startSqsServer } from "./sqs-server.ts";
import { certificateIds } from "./stack.ts";

export interface BulkOptions {
  ids: number;
  /** Timed rounds of each (bulk, then the loop); the medians are reported. */
  rounds: number;
  dryRunLines: number;
  maxDryRunRssMb: number;
}

/** Ids each way sends before the timed runs. */
const WARM_UP = 2000;

export const BULK_DEFAULTS: BulkOptions = { ids: 10_000, rounds: 3, dryRunLines: 1_000_000, maxDryRunRssMb: 200 };

async function writeIdFile(file: string, ids: Iterable<string>): Promise<void> {
  const out = createWriteStream(file);
  let chunk = "";
  for (const id of ids) {
    chunk += `${id}\n`;
    if (chunk.length >= 1 << 16) {
      if (!out.write(chunk)) await once(out, "drain");
      chunk = "";
    }
  }
  out.end(chunk);
  await once(out, "finish");
}

function* generatedIds(tag: string, count: number): Generator<string> {
  for (let i = 0; i < count; i++) yield `${tag}${String(i).padStart(16 - tag.length, "0")}`;
}

async function queueDepth(sqs: SQSClient, queueUrl: string): Promise<number> {
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["ApproximateNumberOfMessages"] }));
  return Number(Attributes?.ApproximateNumberOfMessages ?? 0);
}

/** Runs `scm-withdraw <args>` like the bin does, in a child process; returns its exit code, output and own peak RSS. */
function runBin(args: string[], cwd: string): Promise<{ code: number | null; maxRssKb: number; stdout: string; stderr: string; seconds: number }> {
  const bin = pathToFileURL(path.join(PROJECT_ROOT, "bin", "scm-withdraw.mjs")).href;
  // The bin reads process.argv.slice(2); with -e there is no script path, so one is put in its place.
  const script = `process.on("exit", () => process.stderr.write("\\n@@maxrss " + process.resourceUsage().maxRSS + "\\n")); process.argv.splice(1, 0, "scm-withdraw"); await import(${JSON.stringify(bin)});`;
  return new Promise((resolve) => {
    const started = performance.now();
    // Run node with the flags of the bin's shebang (`#!/usr/bin/env -S node FLAGS`), as npx would.
    const shebang = readFileSync(new URL(bin), "utf8").split("\n", 1)[0] ?? "";
    const nodeFlags = shebang.split(/\s+/).slice(3);
    const child = spawn(process.execPath, [...nodeFlags, "--input-type=module", "-e", script, ...args], {
      cwd,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/tmp" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr = (stderr + c.toString()).slice(-20_000)));
    child.on("close", (code) => {
      const maxRssKb = Number(/@@maxrss (\d+)/.exec(stderr)?.[1] ?? Number.NaN);
      resolve({ code, maxRssKb, stdout, stderr: stderr.replace(/\n?@@maxrss \d+\n/, ""), seconds: (performance.now() - started) / 1000 });
    });
  });
}

export async function benchBulk(options: BulkOptions = BULK_DEFAULTS): Promise<Section> {
  const dir = path.join(BENCH_DIR, "bulk");
  await mkdir(dir, { recursive: true });
  const ids = certificateIds("bulk", options.ids);
  const idFile = path.join(dir, "ids.txt");
  await writeIdFile(idFile, ids);

  // The queue runs in a process of its own, as with the local pipeline (`npm start`) or SQS itself.
  const server = await startSqsServer();
  const sqs = new SQSClient({ endpoint: server.endpoint, region: "eu-west-1", credentials: { accessKeyId: "bench", secretAccessKey: "bench" } });
  const codes: number[] = [];
  const bulkSeconds: number[] = [];
  const loopSeconds: number[] = [];
  const queued = { bulk: [] as number[], loop: [] as number[] };
  let out = "";
  let err = "";
  try {
    const createQueue = async (name: string) => (await sqs.send(new CreateQueueCommand({ QueueName: name }))).QueueUrl!;

    // scm-withdraw bulk, in-process, through the CLI entry the bin runs.
    const io = {
      stdout: { write: (s: string) => void (out += s) },
      stderr: { write: (s: string) => void (err += s) },
      // No credentials: for a local endpoint the CLI supplies its own placeholder ones.
      env: { AWS_REGION: "eu-west-1" },
    };
    const quiet = { ...io, stdout: { write: () => {} }, stderr: { write: () => {} } };
    const bulkArgs = (file: string, queueUrl: string) => ["bulk", file, "--queue-url", queueUrl, "--endpoint-url", server.endpoint, "--batch-id", "bench", "--reason", "bench", "--results", `${file}.results.csv`, "--json"];
    const requestedAt = new Date().toISOString();
    const sendOneByOne = async (list: readonly string[], queueUrl: string) => {
      for (const id of list) {
        await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: buildWithdrawalBody({ certificate_id: id, source: "bulk", batch_id: "bench", requested_at: requestedAt }) }));
      }
    };

    // Both share the SDK's code in this process: warm both up first, so neither runs on the other's JIT.
    const warmIds = certificateIds("warm", WARM_UP);
    const warmFile = path.join(dir, "warm.txt");
    await writeIdFile(warmFile, warmIds);
    const scratch = await createQueue("bench-warm-up");
    await main(bulkArgs(warmFile, scratch), quiet);
    await sendOneByOne(warmIds, scratch);

    // Rounds alternate the two, so a change in the machine's load hits both alike.
    for (let round = 1; round <= options.rounds; round++) {
      const bulkQueue = await createQueue(`bench-bulk-${round}`);
      const loopQueue = await createQueue(`bench-send-message-${round}`);
      out = "";
      err = "";
      const t0 = performance.now();
      const code = await main(bulkArgs(idFile, bulkQueue), io);
      bulkSeconds.push((performance.now() - t0) / 1000);
      codes.push(code);
      queued.bulk.push(await queueDepth(sqs, bulkQueue));

      // The baseline: one SendMessage per id, one after the other, with the same bodies.
      const t1 = performance.now();
      await sendOneByOne(ids, loopQueue);
      loopSeconds.push((performance.now() - t1) / 1000);
      queued.loop.push(await queueDepth(sqs, loopQueue));
    }
  } finally {
    sqs.destroy();
    await server.close();
  }

  // The dry run over a million lines, as a user runs it (the bin, its own process). A tiny run first
  // lets tsx compile the CLI into its cache, as any earlier run would have.
  const bigFile = path.join(dir, "million.txt");
  await writeIdFile(bigFile, generatedIds("dry", options.dryRunLines));
  const tinyFile = path.join(dir, "tiny.txt");
  await writeIdFile(tinyFile, generatedIds("tiny", 10));
  await runBin(["bulk", tinyFile, "--dry-run"], dir);
  const dry = await runBin(["bulk", bigFile, "--dry-run", "--json"], dir);
  // Tens of MB nobody needs afterwards.
  await Promise.all([bigFile, `${bigFile}.results.csv`].map((f) => rm(f, { force: true })));
  let dryValid = Number.NaN;
  try {
    dryValid = (JSON.parse(dry.stdout) as { valid?: number }).valid ?? Number.NaN;
  } catch {
    // reported below
  }
  const dryOk = dry.code === 0 && dryValid === options.dryRunLines;
  const dryRssMb = dry.maxRssKb / 1024;

  const bulkTime = median(bulkSeconds);
  const loopTime = median(loopSeconds);
  const bulkRate = options.ids / bulkTime;
  const loopRate = options.ids / loopTime;
  const bulkOk = codes.every((c) => c === 0) && [...queued.bulk, ...queued.loop].every((n) => n === options.ids);
  const list = (values: number[]) => values.map((v) => fixed(v, 2)).join(", ");

  return {
    title: "4. Bulk enqueue",
    rows: [
      {
        comparison: "4",
        metric: `${options.ids.toLocaleString("en")} ids to the queue: bulk vs SendMessage per id`,
        value: `${fixed(bulkTime, 2)} s (${fixed(bulkRate, 0)}/s)`,
        baseline: `${fixed(loopTime, 2)} s (${fixed(loopRate, 0)}/s)`,
        ratio: ratio(loopTime, bulkTime),
        target: "≥ 5× faster",
        pass: bulkOk && loopTime >= 5 * bulkTime,
      },
      {
        comparison: "4",
        metric: `bulk --dry-run, ${options.dryRunLines.toLocaleString("en")} lines: peak RSS`,
        value: `${fixed(dryRssMb, 0)} MB (${fixed(dry.seconds, 1)} s)`,
        target: `≤ ${options.maxDryRunRssMb} MB`,
        pass: dryOk && dryRssMb <= options.maxDryRunRssMb,
      },
    ],
    notes: [
      `\`scm-withdraw bulk ids.txt --queue-url … --endpoint-url …\` (${options.ids.toLocaleString("en")} distinct ids, .txt) run in-process through the CLI's entry (\`main(argv, io)\` in cli/main.ts, what the bin calls), to a fresh queue on fauxqs running in a process of its own (as the local pipeline's does): exit codes ${codes.join(", ")}; messages on the queues ${queued.bulk.join(", ")}. It sends \`SendMessageBatch\` calls of 10, 8 in flight (its default).`,
      `${options.rounds} rounds, each bulk then the loop; the figures are the medians (bulk ${list(bulkSeconds)} s; loop ${list(loopSeconds)} s).`,
      `Both warmed up first with ${WARM_UP} ids each to a scratch queue (they share the AWS SDK's code in this process, so whichever ran second would otherwise run on the other's JIT-compiled code).`,
      `Baseline: a loop of \`SendMessage\`, one per id, each awaited before the next (the plain way to script it), with the same message bodies, to another fresh queue: ${queued.loop.join(", ")} messages on the queues.`,
      `Dry run: \`scm-withdraw bulk million.txt --dry-run --json\` in its own process, the way the bin runs (TypeScript through tsx), after one tiny run so tsx's compile cache is warm; peak RSS = that process's \`process.resourceUsage().maxRSS\`. Exit ${dry.code}, ${Number.isFinite(dryValid) ? dryValid.toLocaleString("en") : "?"} lines counted valid.${dryOk ? "" : ` Output: ${(dry.stderr || dry.stdout).trim().split("\n").slice(-3).join(" / ")}`}`,
      ...(bulkOk ? [] : [`bulk output: ${(err || out).trim().split("\n").slice(-3).join(" / ")}`]),
    ],
  };
}
