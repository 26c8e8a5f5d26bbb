import { readFileSync } from "node:fs";
/**
 * Comparison 4: bulk enqueue.
 * - 10,000 ids from a file to the local queue (fauxqs) with `scm-withdraw bulk`, called in-process
 *   through the CLI's own entry (`main(argv, io)` of cli/main.ts, exactly what the bin runs),
 *   against one `SendMessage` per id (a plain loop, the same bodies) in the same run.
 * - `scm-withdraw bulk --dry-run` over a 1,000,000-line file against a plain Node script doing the same
 *   (`bench/bulk-baseline.mjs`: readline, a regex, a Set, the same results CSV), side by side in the same
 *   run: the CLI's own work (`main()` timed in its process, as the script times itself; the TypeScript
 *   loader's start-up is not the file's cost) and, run as a user would (the bin), its peak RSS.
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
  /** Timed rounds of the dry run and of the plain script, alternating; the medians are reported. */
  dryRunRounds: number;
  /** The dry run may take at most this many times the plain script's time. */
  maxDryRunRatio: number;
  /** Timed rounds of each (bulk, then the loop); the medians are reported. */
  rounds: number;
  dryRunLines: number;
  maxDryRunRssMb: number;
}

/** Ids each way sends before the timed runs. */
const WARM_UP = 2000;

export const BULK_DEFAULTS: BulkOptions = {
  ids: 10_000,
  rounds: 3,
  dryRunLines: 1_000_000,
  maxDryRunRssMb: 200,
  dryRunRounds: 3,
  maxDryRunRatio: 1.5,
};

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

/** Whether two files hold the same bytes (two results files of about 30 MB each: read whole, once). */
function filesEqual(a: string, b: string): boolean {
  try {
    return readFileSync(a).equals(readFileSync(b));
  } catch {
    return false;
  }
}

async function queueDepth(sqs: SQSClient, queueUrl: string): Promise<number> {
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["ApproximateNumberOfMessages"] }),
  );
  return Number(Attributes?.ApproximateNumberOfMessages ?? 0);
}

const BIN = pathToFileURL(path.join(PROJECT_ROOT, "bin", "scm-withdraw.mjs")).href;
/** The node flags of the bin's shebang (`#!/usr/bin/env -S node FLAGS`), as npx would run it. */
const binNodeFlags = () => (readFileSync(new URL(BIN), "utf8").split("\n", 1)[0] ?? "").split(/\s+/).slice(3);

/** Runs `scm-withdraw <args>` like the bin does, in a child process; returns its exit code, output and own peak RSS. */
function runBin(args: string[], cwd: string) {
  // The bin reads process.argv.slice(2); with -e there is no script path, so one is put in its place.
  const script = `process.argv.splice(1, 0, "scm-withdraw"); await import(${JSON.stringify(BIN)});`;
  return runNode([...binNodeFlags(), "--input-type=module", "-e", script, ...args], cwd);
}

/**
 * Runs the CLI's `main(args)` in a child process with the bin's node flags, timing `main()` alone (what the
 * CLI does with the file, without the TypeScript loader's start-up); `@@main <seconds>` on stderr.
 */
function runMain(args: string[], cwd: string) {
  const entry = pathToFileURL(path.join(PROJECT_ROOT, "cli", "main.ts")).href;
  const script = [
    `const { main } = await import(${JSON.stringify(entry)});`,
    "const io = { stdout: { write: (s) => process.stdout.write(s) }, stderr: { write: () => {} }, env: {} };",
    "const t = performance.now(); process.exitCode = await main(process.argv.slice(1), io);",
    'process.stderr.write("\\n@@main " + (performance.now() - t) / 1000 + "\\n");',
  ].join(" ");
  return runNode([...binNodeFlags(), "--import", "tsx", "--input-type=module", "-e", script, ...args], cwd);
}

function runNode(
  nodeArgs: string[],
  cwd: string,
): Promise<{ code: number | null; maxRssKb: number; stdout: string; stderr: string; seconds: number }> {
  const exitHook = `process.on("exit", () => process.stderr.write("\\n@@maxrss " + process.resourceUsage().maxRSS + "\\n"));`;
  const withHook = nodeArgs.map((a, i) => (nodeArgs[i - 1] === "-e" ? `${exitHook} ${a}` : a));
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(process.execPath, withHook, {
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
      const main = Number(/@@main ([\d.]+)/.exec(stderr)?.[1] ?? Number.NaN);
      const seconds = Number.isFinite(main) ? main : (performance.now() - started) / 1000;
      resolve({ code, maxRssKb, stdout, stderr: stderr.replace(/\n?@@(maxrss|main) [\d.]+\n/g, ""), seconds });
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
  const sqs = new SQSClient({
    endpoint: server.endpoint,
    region: "eu-west-1",
    credentials: { accessKeyId: "bench", secretAccessKey: "bench" },
  });
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
    const bulkArgs = (file: string, queueUrl: string) => [
      "bulk",
      "--yes",
      "--reason",
      "bench",
      file,
      "--queue-url",
      queueUrl,
      "--endpoint-url",
      server.endpoint,
      "--batch-id",
      "bench",
      "--results",
      `${file}.results.csv`,
      "--json",
    ];
    const requestedAt = new Date().toISOString();
    const sendOneByOne = async (list: readonly string[], queueUrl: string) => {
      for (const id of list) {
        await sqs.send(
          new SendMessageCommand({
            QueueUrl: queueUrl,
            MessageBody: buildWithdrawalBody({
              certificate_id: id,
              source: "bulk",
              batch_id: "bench",
              requested_at: requestedAt,
            }),
          }),
        );
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

  // The dry run over a million lines against the plain script, alternating, each in its own process. A tiny
  // run first lets tsx compile the CLI into its cache, as any earlier run would have.
  const bigFile = path.join(dir, "million.txt");
  await writeIdFile(bigFile, generatedIds("dry", options.dryRunLines));
  const tinyFile = path.join(dir, "tiny.txt");
  await writeIdFile(tinyFile, generatedIds("tiny", 10));
  await runBin(["bulk", tinyFile, "--dry-run", "--results", `${tinyFile}.results.csv`], dir);
  const dryArgs = ["bulk", bigFile, "--dry-run", "--json", "--results", `${bigFile}.results.csv`];
  const plainSeconds: number[] = [];
  const cliSeconds: number[] = [];
  let dryValid = Number.NaN;
  let plainValid = Number.NaN;
  let dryCode: number | null = null;
  let dryOutput = "";
  for (let round = 1; round <= options.dryRunRounds; round++) {
    const plain = await runNode(
      [path.join(PROJECT_ROOT, "bench", "bulk-baseline.mjs"), bigFile, `${bigFile}.plain.csv`],
      dir,
    );
    try {
      const result = JSON.parse(plain.stdout) as { seconds: number; valid: number };
      plainSeconds.push(result.seconds);
      plainValid = result.valid;
    } catch {
      dryOutput = plain.stderr;
    }
    const cli = await runMain(dryArgs, dir);
    cliSeconds.push(cli.seconds);
    dryCode = cli.code;
    try {
      dryValid = (JSON.parse(cli.stdout) as { valid?: number }).valid ?? Number.NaN;
    } catch {
      dryOutput = cli.stderr || cli.stdout;
    }
  }
  // Peak RSS as a user runs it: the bin, TypeScript loader included.
  const dry = await runBin(dryArgs, dir);
  const sameResults = filesEqual(`${bigFile}.plain.csv`, `${bigFile}.results.csv`);
  // Tens of MB nobody needs afterwards.
  await Promise.all(
    [bigFile, `${bigFile}.results.csv`, `${bigFile}.plain.csv`, `${tinyFile}.results.csv`].map((f) =>
      rm(f, { force: true }),
    ),
  );
  const dryOk =
    dry.code === 0 && dryCode === 0 && dryValid === options.dryRunLines && plainValid === options.dryRunLines;
  const dryRssMb = dry.maxRssKb / 1024;
  const cliTime = median(cliSeconds);
  const plainTime = median(plainSeconds);

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
        metric: `bulk --dry-run, ${options.dryRunLines.toLocaleString("en")} lines: time vs a plain Node script`,
        value: `${fixed(cliTime, 2)} s`,
        baseline: `${fixed(plainTime, 2)} s`,
        ratio: ratio(cliTime, plainTime),
        target: `≤ ${options.maxDryRunRatio}× the script`,
        pass: dryOk && sameResults && cliTime <= options.maxDryRunRatio * plainTime,
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
      `Dry run: \`scm-withdraw bulk million.txt --dry-run --json\` against \`bench/bulk-baseline.mjs\` (the plain way: readline, a regex per line, a Set, the same results CSV), ${options.dryRunRounds} rounds alternating, each in its own process (the CLI with the bin's node flags, the script with plain \`node\`); medians (CLI ${list(cliSeconds)} s; script ${list(plainSeconds)} s). Each is timed inside its process from its first step to the results file closed: the CLI's \`main()\`, loaded beforehand through tsx (the TypeScript loader's start-up is the same for any command, not the file's cost). Results files ${sameResults ? "identical" : "DIFFERENT"}.`,
      `Peak RSS: the bin as a user runs it (the built CLI, dist/cli.mjs, with the bin's node flags), one run after a tiny one; \`process.resourceUsage().maxRSS\`, ${fixed(dry.seconds, 1)} s wall. Exit ${dry.code}, ${Number.isFinite(dryValid) ? dryValid.toLocaleString("en") : "?"} lines counted valid.${dryOk ? "" : ` Output: ${(dryOutput || dry.stderr || dry.stdout).trim().split("\n").slice(-3).join(" / ")}`}`,
      ...(bulkOk ? [] : [`bulk output: ${(err || out).trim().split("\n").slice(-3).join(" / ")}`]),
    ],
  };
}
