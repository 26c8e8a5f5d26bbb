/**
 * `npm start`: the whole pipeline on this machine (see `local/pipeline.ts` and
 * docs/running-locally.md). A terminal front end: flags, progress, the summary table, signals.
 *
 * Exit codes: 0 done (drained with `--drain`), 1 the pipeline could not start (a port taken, a bad
 * configuration), 2 bad flags, 130 stopped by Ctrl-C or SIGTERM (after a clean stop, leftovers saved),
 * or a second Ctrl-C (forced: batches in flight abandoned).
 */
import { createWriteStream, mkdirSync, readFileSync, writeFileSync, type WriteStream } from "node:fs";
import { dirname, relative } from "node:path";
import { isAcceptableEndpoint } from "../lib/config.ts";
import { describeError } from "../lib/errors.ts";
import { redact } from "../lib/redact.ts";
import { LOCAL, localDynamoEndpoint } from "../cli/local-defaults.ts";
import { DEMO } from "../local/demo-certificates.ts";
import { UsageError } from "../lib/errors.ts";
import { integerFlag, parseFlagValues } from "../local/flags.ts";
import { readJobsFile } from "../local/jobs-file.ts";
import {
  ContainerStartError,
  LOCAL_PIPELINE_DEFAULTS,
  PortInUseError,
  demoJobs,
  formatSummary,
  runId,
  startPipeline,
  summaryChanged,
  type LeftoverMessage,
  type Pipeline,
  type PipelineProgress,
  type PipelineStats,
} from "../local/pipeline.ts";
import { parseSecret } from "../lib/token-provider.ts";

const NAME = "npm start";

const HELP = `Usage: npm start [-- options]

Runs the whole pipeline on this machine, without AWS: an embedded SQS (fauxqs, 127.0.0.1) with the
${LOCAL.queueName} queue and its DLQ, the SCM simulator, a local Secrets Manager endpoint serving the
token, and the real handler (handlers/withdraw.ts) fed by a local Lambda-style SQS event source.
It enqueues one demo job per outcome, shows progress and a summary, then keeps running so you can
enqueue more from another terminal (npx scm-withdraw enqueue ${DEMO.withdrawn}). Ctrl-C stops
cleanly: batches in flight finish first.

Options:
  --drain                  exit 0 once the queue and everything in flight are empty
  --scm-endpoint URL       a real SCM (https://scm.<region>.myhuaweicloud.com) instead of the simulator
                           (default: $SCM_ENDPOINT if set, else the simulator);
                           needs --token-file; no demo jobs unless --demo
  --token-file PATH        the credential to use: the raw token, {"token": "..."}, or an access key pair
                           {"aksk": {"access_key", "secret_key", "domain_id"}} (default: the simulator's demo token)
  --aksk                   with the simulator: sign every SCM call with a demo AK/SK pair instead of a token
  --jobs FILE              enqueue the jobs in FILE at start, read as \`scm-withdraw bulk\` reads it (.txt: one id
                           per line, # comments; .csv with a certificate_id header; .jsonl); an invalid
                           line stops everything before anything is sent. With --drain: withdraw a list and exit
  --demo, --no-demo        enqueue the demo jobs (default: only with the simulator, and without --jobs)
  --business-errors-as-500 the simulator answers business errors (SCM.* codes) inside HTTP 500, the shape
                           of SCM's older error table, instead of 400/403/404: the outcomes must not change
  --sqs-port N             embedded SQS port (default ${LOCAL.sqsPort}; 0 = any free port)
  --scm-port N             SCM simulator port (default ${LOCAL.scmPort})
  --secrets-port N         local Secrets Manager port (default ${LOCAL.secretsManagerPort})
  --dynamodb-port N        the ledger's local DynamoDB (dynalite) port (default ${LOCAL.dynamoDbPort}; with --sqs-port 0, any free port)
  --no-ledger              no ledger: no DynamoDB, and the handler runs without LEDGER_TABLE
  --visibility-timeout S   queue visibility timeout, seconds (default ${LOCAL_PIPELINE_DEFAULTS.visibilityTimeoutSeconds}): a failed job comes back after it
  --max-receive-count N    the worker's MAX_RECEIVE_COUNT (default ${LOCAL_PIPELINE_DEFAULTS.maxReceiveCount}); the queue's redrive policy
                           moves a message after N+${LOCAL_PIPELINE_DEFAULTS.redriveMarginReceives} receives
  --batch-size N           records per invocation, 1 to 10 (default ${LOCAL_PIPELINE_DEFAULTS.batchSize})
  --batching-window S      seconds a poller waits to fill a batch (default ${LOCAL_PIPELINE_DEFAULTS.batchingWindowMs / 1000})
  --concurrency N          batches in flight at once, one handler container each (default ${LOCAL_PIPELINE_DEFAULTS.maxConcurrency})
  --function-timeout S     the handler's timeout, seconds (default ${LOCAL_PIPELINE_DEFAULTS.functionTimeoutMs / 1000})
  --log-file PATH          where the handler's JSON log lines go, rewritten each run (default .local/worker.log,
                           on other ports .local/sqs-PORT/worker.log); leftovers are saved next to it
  -v, --verbose            also print the handler's log lines here
  -h, --help               show this help

The handler's other settings come from the environment, as in Lambda (MAX_ATTEMPTS, SCM_TIMEOUT_MS,
RETRY_BASE_DELAY_MS, SCM_MAX_RPS, LOG_LEVEL, ...; see docs/configuration.md; locally
RETRY_VISIBILITY_SCHEDULE defaults to ${LOCAL_PIPELINE_DEFAULTS.retryVisibilitySchedule}), e.g.
  SCM_MAX_RPS=5 npm start -- --scm-endpoint https://scm.ap-southeast-1.myhuaweicloud.com --token-file token.txt`;

/** The handler variables (docs/configuration.md) a user may set for a local run (the pipeline wires the rest). */
const PASS_THROUGH = [
  "MAX_ATTEMPTS",
  "RETRY_BASE_DELAY_MS",
  "RETRY_MAX_DELAY_MS",
  "SCM_TIMEOUT_MS",
  "BATCH_CONCURRENCY",
  "TOKEN_CACHE_TTL_MS",
  "SCM_MAX_RPS",
  "SCM_RATE_LIMIT",
  "LOG_LEVEL",
  "ALREADY_WITHDRAWN_STATUSES",
  "IAM_TOKEN_REFRESH_MARGIN_MS",
  "DEADLINE_MARGIN_MS",
  "RETRY_VISIBILITY_SCHEDULE",
] as const;

interface Settings {
  drain: boolean;
  scmEndpoint: string | undefined;
  secret: string | undefined;
  tokenFile: string | undefined;
  /** Bodies to enqueue at start (from --jobs). */
  jobs: string[];
  jobsFile: string | undefined;
  duplicateJobs: number;
  demo: boolean;
  businessErrorsAs500: boolean;
  ledger: boolean;
  dynamoDbPort: number;
  sqsPort: number;
  scmPort: number;
  secretsPort: number;
  visibilityTimeoutSeconds: number;
  maxReceiveCount: number;
  batchSize: number;
  batchingWindowMs: number;
  maxConcurrency: number;
  functionTimeoutMs: number;
  /** --log-file; undefined = worker.log in this run's own folder (see runDir). */
  logFile: string | undefined;
  verbose: boolean;
  /** The SCM endpoint came from $SCM_ENDPOINT, not --scm-endpoint. */
  scmEndpointFromEnv: boolean;
}

function parseFlags(argv: string[]): Settings | "help" {
  const v = parseFlagValues(argv, {
    drain: { type: "boolean" },
    "scm-endpoint": { type: "string" },
    "token-file": { type: "string" },
    aksk: { type: "boolean" },
    jobs: { type: "string" },
    demo: { type: "boolean" },
    "no-demo": { type: "boolean" },
    "business-errors-as-500": { type: "boolean" },
    "sqs-port": { type: "string" },
    "scm-port": { type: "string" },
    "secrets-port": { type: "string" },
    "dynamodb-port": { type: "string" },
    "no-ledger": { type: "boolean" },
    "visibility-timeout": { type: "string" },
    "max-receive-count": { type: "string" },
    "batch-size": { type: "string" },
    "batching-window": { type: "string" },
    concurrency: { type: "string" },
    "function-timeout": { type: "string" },
    "log-file": { type: "string" },
    verbose: { type: "boolean", short: "v" },
    help: { type: "boolean", short: "h" },
  });
  if (v.help) return "help";
  if (v.demo && v["no-demo"]) throw new UsageError("--demo and --no-demo contradict each other");

  const integer = (name: string, fallback: number, min: number, max: number): number =>
    integerFlag(v, name, { min, max }) ?? fallback;

  // SCM_ENDPOINT in the environment is honoured as the worker and `scm-withdraw cleanup` honour it (the flag wins).
  const fromEnv = process.env.SCM_ENDPOINT?.trim() || undefined;
  const scmEndpointFromEnv = v["scm-endpoint"] === undefined && fromEnv !== undefined;
  const scmEndpoint = v["scm-endpoint"] ?? fromEnv;
  const scmName = scmEndpointFromEnv ? "SCM_ENDPOINT (from the environment)" : "--scm-endpoint";
  if (scmEndpoint !== undefined && !isAcceptableEndpoint(scmEndpoint)) {
    throw new UsageError(
      `${scmName} must be an https:// URL (http:// only for loopback hosts), without credentials, query or fragment (got ${JSON.stringify(scmEndpoint)})`,
    );
  }
  if (scmEndpoint !== undefined && v["business-errors-as-500"]) {
    throw new UsageError(
      "--business-errors-as-500 shapes the simulator's answers: it cannot be used with --scm-endpoint",
    );
  }
  const tokenFile = v["token-file"];
  if (scmEndpoint !== undefined && tokenFile === undefined) {
    throw new UsageError(
      `${scmName} needs --token-file: the demo token only opens the simulator${scmEndpointFromEnv ? "; unset SCM_ENDPOINT to use the simulator" : ""}`,
    );
  }
  if (v.aksk && (tokenFile !== undefined || scmEndpoint !== undefined)) {
    throw new UsageError(
      `--aksk signs with the simulator's demo key pair: for a real SCM, put {"aksk": {...}} in --token-file${scmEndpointFromEnv ? " (SCM_ENDPOINT is set in the environment)" : ""}`,
    );
  }
  let secret: string | undefined = v.aksk ? JSON.stringify({ aksk: LOCAL.demoAkSk }) : undefined;
  if (tokenFile !== undefined) {
    try {
      secret = readFileSync(tokenFile, "utf8");
    } catch (error) {
      throw new UsageError(
        `--token-file: cannot read ${tokenFile} (${(error as NodeJS.ErrnoException).code ?? describeError(error)})`,
      );
    }
    try {
      const stored = parseSecret(secret);
      if (stored.kind === "iam") {
        throw new Error(
          'IAM credentials ({"iam": ...}) are not supported by the local pipeline yet; put a token or {"aksk": ...} in the file',
        );
      }
    } catch (error) {
      // The parser's messages describe the problem, never the content.
      throw new UsageError(`--token-file ${tokenFile}: ${(error as Error).message}`);
    }
  }

  const jobsFile = v.jobs;

  return {
    drain: v.drain ?? false,
    scmEndpoint,
    secret,
    tokenFile,
    jobs: [],
    jobsFile,
    duplicateJobs: 0,
    demo: v.demo ?? (v["no-demo"] ? false : scmEndpoint === undefined && jobsFile === undefined),
    businessErrorsAs500: v["business-errors-as-500"] ?? false,
    ledger: !v["no-ledger"],
    // Free ports for everything when SQS takes a free one (tests, several pipelines side by side).
    dynamoDbPort: integer("dynamodb-port", v["sqs-port"] === "0" ? 0 : LOCAL.dynamoDbPort, 0, 65535),
    sqsPort: integer("sqs-port", LOCAL.sqsPort, 0, 65535),
    scmPort: integer("scm-port", LOCAL.scmPort, 0, 65535),
    secretsPort: integer("secrets-port", LOCAL.secretsManagerPort, 0, 65535),
    visibilityTimeoutSeconds: integer(
      "visibility-timeout",
      LOCAL_PIPELINE_DEFAULTS.visibilityTimeoutSeconds,
      1,
      43_200,
    ),
    maxReceiveCount: integer("max-receive-count", LOCAL_PIPELINE_DEFAULTS.maxReceiveCount, 1, 998),
    batchSize: integer("batch-size", LOCAL_PIPELINE_DEFAULTS.batchSize, 1, 10),
    batchingWindowMs: integer("batching-window", LOCAL_PIPELINE_DEFAULTS.batchingWindowMs / 1000, 0, 300) * 1000,
    maxConcurrency: integer("concurrency", LOCAL_PIPELINE_DEFAULTS.maxConcurrency, 1, 64),
    functionTimeoutMs: integer("function-timeout", LOCAL_PIPELINE_DEFAULTS.functionTimeoutMs / 1000, 1, 900) * 1000,
    logFile: v["log-file"],
    verbose: v.verbose ?? false,
    scmEndpointFromEnv,
  };
}

// ---------------------------------------------------------------------------------------------

const out = process.stdout;
const tty = out.isTTY === true;
// `npm start | tee log` then Ctrl-C: tee is gone, and a write would fail with EPIPE. The run must still stop
// cleanly and save what is left, so a broken stdout or stderr only silences it.
const broken = new Set<NodeJS.WriteStream>();
for (const stream of [process.stdout, process.stderr]) stream.on("error", () => broken.add(stream));
const write = (stream: NodeJS.WriteStream, text: string) => {
  if (!broken.has(stream) && !stream.destroyed) stream.write(text);
};
const say = (line = "") => {
  clearLive();
  write(out, `${line}\n`);
};

let liveShown = false;
function clearLive() {
  if (liveShown) {
    write(out, "\r\x1b[2K");
    liveShown = false;
  }
}

function progressLine(stats: PipelineProgress): string {
  const parts = [
    `${stats.runner.records} delivered`,
    `${stats.withdrawn} withdrawn`,
    `${stats.alreadyWithdrawn} already withdrawn`,
    `${stats.deadLetteredTotal} dead-lettered`,
    ...(stats.retrying > 0 ? [`${stats.retrying} to retry`] : []),
    // SQS's view: a batch's messages stay on the queue (in flight) until the batch returns.
    `queue ${stats.pending.inQueue} + ${stats.pending.inFlight} in flight`,
  ];
  return `${(stats.elapsedMs / 1000).toFixed(1).padStart(6)} s  ${parts.join(" · ")}`;
}

const plural = (count: number, noun: string) => `${count} ${noun}${count === 1 ? "" : "s"}`;

function relativePath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel.startsWith("..") ? path : rel;
}

/** The ledger's view of the demo batch: it should agree with the summary above. */
async function sayLedger(p: Pipeline, batchId: string, cli: (args: string) => string): Promise<void> {
  try {
    const status = await p.ledger!.ledger.batchStatus(batchId, { consistent: true });
    const { counts } = status;
    const state = status.done ? "done" : `${status.pending} pending`;
    say(
      `Ledger: demo batch ${batchId}: ${state}, ${counts.withdrawn} withdrawn, ${counts.already_withdrawn} already withdrawn, ${counts.dead_lettered} dead-lettered` +
        ` (the 2 invalid bodies are outside it); ${cli(`batch report ${batchId}`)}`,
    );
  } catch (error) {
    say(`Ledger: cannot read the demo batch: ${describeError(error)}`);
  }
}

/**
 * This run's folder for its log and leftovers: `.local/` on the default ports, `.local/sqs-<port>/` otherwise,
 * so two pipelines side by side (they cannot share an SQS port) never write each other's files.
 */
function runDir(sqsPort: number): string {
  return sqsPort === LOCAL.sqsPort ? ".local" : `.local/sqs-${sqsPort === 0 ? "any" : sqsPort}`;
}

/** A `npx scm-withdraw ...` line that talks to THIS pipeline: on other ports it names the queue and the ledger. */
function cliCommand(p: Pipeline, defaultPorts: boolean): (args: string) => string {
  const ledgerLocal = p.ledger !== undefined && defaultPorts && p.ledger.endpoint === localDynamoEndpoint();
  const env = p.ledger && !ledgerLocal ? `AWS_ENDPOINT_URL_DYNAMODB=${p.ledger.endpoint} ` : "";
  const flags = [
    ...(defaultPorts ? [] : [`--queue-url ${p.queueUrl}`, `--dlq-url ${p.dlqUrl}`]),
    ...(p.ledger && !ledgerLocal ? [`--ledger-table ${p.ledger.tableName}`] : []),
  ];
  return (args) => `${env}npx scm-withdraw ${args}${flags.length > 0 ? ` ${flags.join(" ")}` : ""}`;
}

function saveLeftovers(
  kind: "unfinished" | "dead-letters",
  messages: LeftoverMessage[],
  dir: string,
  id: string,
): string | undefined {
  if (messages.length === 0) return undefined;
  const path = `${dir}/${kind}-${id}.jsonl`;
  const lines =
    kind === "unfinished"
      ? // One body per line: a .jsonl the operator CLI's `bulk` re-enqueues as it is.
        messages.map((m) => (m.body.includes("\n") ? JSON.stringify(m.body) : m.body))
      : messages.map((m) => JSON.stringify({ message_id: m.messageId, ...m.attributes, body: m.body }));
  writeFileSync(path, `${lines.join("\n")}\n`);
  return path;
}

async function main(): Promise<number> {
  let settings: Settings | "help";
  try {
    settings = parseFlags(process.argv.slice(2));
    if (settings !== "help" && settings.jobsFile !== undefined) {
      const read = await readJobsFile(settings.jobsFile, `npm-start-${runId()}`);
      settings = { ...settings, jobs: read.bodies, duplicateJobs: read.duplicates };
    }
  } catch (error) {
    if (error instanceof UsageError) {
      // It quotes what was typed: the one scrubber keeps a URL's credentials out of it.
      write(process.stderr, `${NAME}: ${redact(error.message)} (see npm start -- --help)\n`);
      return 2;
    }
    throw error;
  }
  if (settings === "help") {
    write(out, `${HELP}\n`);
    return 0;
  }
  const s = settings;

  // The log is opened once this run holds its ports: a second run must never rewrite the first one's files.
  let logFile = s.logFile ?? `${runDir(s.sqsPort)}/worker.log`;
  let log: WriteStream | undefined;
  const early: string[] = [];
  const openLog = (path: string) => {
    logFile = path;
    mkdirSync(dirname(path), { recursive: true });
    // One log per run: the embedded queues start empty every time, so earlier runs' lines would mislead.
    log = createWriteStream(path, { flags: "w" });
    for (const line of early.splice(0)) log.write(`${line}\n`);
  };
  const shownErrors = new Set<string>();
  let running = false;
  const onLogLine = (line: string) => {
    if (log) log.write(`${line}\n`);
    else if (early.length < 10_000) early.push(line);
    if (s.verbose) return say(line);
    // The backoff across deliveries (RETRY_VISIBILITY_SCHEDULE): when each job left for retry comes back.
    if (running && line.includes('"event":"retry_delayed"')) {
      try {
        const entry = JSON.parse(line) as {
          certificateId?: string;
          receiveCount?: number;
          visibilityTimeoutS?: number;
        };
        const who = entry.certificateId ?? "a job";
        say(`retry: ${who} (receive ${entry.receiveCount ?? "?"}) comes back in ${entry.visibilityTimeoutS ?? "?"} s`);
      } catch {
        // not JSON: it is in the log file
      }
      return;
    }
    // Errors are worth a line here even without --verbose (once per kind); a failed start is
    // reported once, below.
    if (running && line.includes('"level":"error"')) {
      try {
        const entry = JSON.parse(line) as { event?: string; error?: string; code?: string };
        const key = entry.event ?? "error";
        if (shownErrors.has(key)) return;
        shownErrors.add(key);
        say(
          `handler error: ${key}${entry.code ? ` (${entry.code})` : ""}${entry.error ? `: ${entry.error}` : ""} — more in ${logFile}`,
        );
      } catch {
        // not JSON: it is in the log file
      }
    }
  };

  // A bad value is reported by the handler's own configuration check, which names every bad variable.
  const env: Record<string, string | undefined> = {};
  for (const name of PASS_THROUGH) env[name] = process.env[name];

  let pipeline: Pipeline;
  try {
    pipeline = await startPipeline({
      sqsPort: s.sqsPort,
      scmPort: s.scmPort,
      secretsPort: s.secretsPort,
      ...(s.ledger ? { ledger: true, dynamoDbPort: s.dynamoDbPort } : {}),
      ...(s.scmEndpoint ? { scmEndpoint: s.scmEndpoint } : {}),
      ...(s.secret !== undefined ? { secret: s.secret } : {}),
      ...(s.businessErrorsAs500 ? { simulator: { businessErrorsAs500: true } } : {}),
      visibilityTimeoutSeconds: s.visibilityTimeoutSeconds,
      maxReceiveCount: s.maxReceiveCount,
      batchSize: s.batchSize,
      batchingWindowMs: s.batchingWindowMs,
      maxConcurrency: s.maxConcurrency,
      functionTimeoutMs: s.functionTimeoutMs,
      env,
      onLogLine,
      onError: (error, where) =>
        onLogLine(JSON.stringify({ level: "warn", event: "runner_error", where, error: describeError(error) })),
    });
  } catch (error) {
    if (error instanceof PortInUseError) {
      const flagOf = {
        SQS: "--sqs-port",
        "SCM simulator": "--scm-port",
        "Secrets Manager": "--secrets-port",
        DynamoDB: "--dynamodb-port (or --no-ledger)",
      } as Record<string, string>;
      const flags = error.taken.map((t) => flagOf[t.service] ?? "the port flags").join(", ");
      write(
        process.stderr,
        `${NAME}: ${error.message}: is another npm start running? Stop it, or choose other ports with ${flags} (or --sqs-port 0 for free ones)\n`,
      );
    } else if (error instanceof ContainerStartError) {
      openLog(logFile);
      await new Promise<void>((resolve) => log!.end(resolve));
      write(process.stderr, `${NAME}: ${error.message} (details in ${logFile})\n`);
    } else {
      write(process.stderr, `${NAME}: could not start: ${describeError(error)}\n`);
    }
    return 1;
  }

  const p = pipeline;
  running = true;
  const sqsPort = Number(new URL(p.sqsEndpoint).port);
  openLog(s.logFile ?? `${runDir(sqsPort)}/worker.log`);
  const defaultPorts = sqsPort === LOCAL.sqsPort;
  const { settings: set } = p;
  say("scm-withdraw local pipeline");
  say(`  queue     ${p.queueUrl}`);
  say(`  DLQ       ${p.dlqUrl}`);
  say(
    `            SQS endpoint ${p.sqsEndpoint} (fauxqs, in memory); visibility timeout ${set.visibilityTimeoutSeconds} s;`,
  );
  say(
    `            the worker dead-letters a still-failing job on receive ${set.maxReceiveCount}, the redrive policy after ${set.redriveMaxReceiveCount}`,
  );
  say(
    `  SCM       ${p.sim ? `simulator on ${p.scmEndpoint} (demo certificates ${DEMO.withdrawn} to ${DEMO.throttledThenWithdrawn})` : `${p.scmEndpoint}${s.scmEndpointFromEnv ? " (from SCM_ENDPOINT in the environment)" : ""}`}`,
  );
  const demo = s.secret ? "the simulator's demo AK/SK pair (every SCM call signed)" : "the simulator's demo token";
  const credential = s.tokenFile ? `from ${s.tokenFile}` : demo;
  say(
    `  token     ${credential}, served as secret ${p.secretId} by ${p.secretsEndpoint} (to the handler's random access key only)`,
  );
  say(
    p.ledger
      ? `  ledger    table ${p.ledger.tableName} on ${p.ledger.endpoint} (dynalite, in memory; --no-ledger turns it off)`
      : "  ledger    off (--no-ledger): jobs are not recorded; `scm-withdraw batch` has nothing to read",
  );
  say(
    `  handler   handlers/withdraw.ts in ${set.maxConcurrency} container(s): batches of ${set.batchSize}, window ${set.batchingWindowMs / 1000} s, timeout ${set.functionTimeoutMs / 1000} s`,
  );
  say(
    `  log       ${logFile} (the handler's JSON lines${s.verbose ? ", also shown here" : "; --verbose shows them here"})`,
  );
  say();

  const hint = () => {
    const cli = cliCommand(p, defaultPorts);
    say("Still running. To add jobs, from another terminal:");
    say(`  ${cli(`enqueue ${DEMO.withdrawn}`)}`);
    if (p.ledger)
      say(
        `  ${cli("bulk ids.txt --reason TEXT --wait")}   (records the batch in the ledger and follows it to the end)`,
      );
    say(`  ${cli("status")}   (both queues)`);
    // The sweep by hand finds the demo token by itself on 127.0.0.1, but not the simulator's port.
    const sweepEndpoint =
      p.scmEndpoint === `http://${LOCAL.host}:${LOCAL.scmPort}` ? "" : ` --scm-endpoint ${p.scmEndpoint}`;
    if (p.sim && !s.secret) say(`  ${cli(`cleanup --dry-run${sweepEndpoint}`)}   (the sweep: what it would withdraw)`);
    say(
      `  or any SQS client with AWS_ENDPOINT_URL_SQS=${p.sqsEndpoint} AWS_REGION=${p.region} (any credentials) and the queue URL above`,
    );
    say("Ctrl-C stops (batches in flight finish first).");
  };

  // ---- signals: the first stops cleanly, a second one forces ----
  let stopRequested = false;
  let resolveStop: () => void = () => {};
  const stopSignal = new Promise<void>((resolve) => (resolveStop = resolve));
  let firstSignalAt = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    // Wrappers (npm, npx, tsx) may relay the terminal's one Ctrl-C a second time within milliseconds:
    // only a second Ctrl-C pressed later forces.
    if (stopRequested && Date.now() - firstSignalAt < 1000) return;
    if (stopRequested) {
      say(`${signal} again: forced stop; jobs in flight are abandoned (the in-memory queue goes with them).`);
      process.exit(130);
    }
    stopRequested = true;
    firstSignalAt = Date.now();
    if (tty) say();
    say(
      `${signal}: stopping: no new batches; waiting for ${p.settings.maxConcurrency > 1 ? "the batches" : "the batch"} in flight (Ctrl-C again forces)...`,
    );
    resolveStop();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  if (s.jobs.length > 0 || s.jobsFile !== undefined) {
    const results = await p.enqueue(s.jobs);
    const failed = results.filter((r) => !r.ok);
    say(
      `Enqueued ${plural(results.length - failed.length, "job")} from ${s.jobsFile}${s.duplicateJobs > 0 ? ` (${plural(s.duplicateJobs, "duplicate id")} dropped)` : ""}.`,
    );
    if (failed.length > 0)
      say(`  ${failed.length} could not be sent: ${failed.map((r) => (r.ok ? "" : r.error)).join("; ")}`);
  }
  // With the ledger, the demo's valid jobs form one batch (the invalid bodies cannot carry a batch id).
  const demoBatch = p.ledger
    ? `demo-${new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15)}-${runId().slice(-4)}`
    : undefined;
  const demoBatchSize = Object.keys(DEMO).length;
  if (s.demo) {
    const results = await p.enqueue(
      demoJobs(demoBatch),
      demoBatch ? { batch: { id: demoBatch, expectedTotal: demoBatchSize } } : {},
    );
    const failed = results.filter((r) => !r.ok);
    say(
      `Enqueued ${results.length - failed.length} demo jobs: one per outcome (3 withdrawn, 1 already withdrawn, 6 dead-lettered, one of them after ${set.maxReceiveCount} receives).`,
    );
    if (failed.length > 0)
      say(`  ${failed.length} could not be sent: ${failed.map((r) => (r.ok ? "" : r.error)).join("; ")}`);
  } else if (s.jobsFile === undefined) {
    say("No jobs enqueued (the demo jobs are for the simulator; add --demo to send them anyway, or --jobs FILE).");
  }

  // ---- progress until drained (--drain) or stopped ----
  let busy = s.demo || s.jobs.length > 0;
  let lastActivity = 0;
  let hinted = false;
  let lastPlain = "";
  let lastPlainAt = 0;
  const spinner = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
  let frame = 0;
  if (!busy && !s.drain) {
    hint();
    hinted = true;
  }

  let idleLooks = 0;
  /** The stats of the summary printed last: Ctrl-C prints it again only if something changed since. */
  let lastShown: PipelineStats | undefined;
  let ledgerShown = false;
  while (!stopRequested) {
    const [current, idle] = await Promise.all([p.progress(), p.isIdle()]);
    idleLooks = idle ? idleLooks + 1 : 0;
    // Busy when work is seen, or when jobs came and went between two looks (a quick enqueue).
    const activity = current.runner.invocations + current.enqueued;
    if (!idle || activity !== lastActivity) busy = true;
    lastActivity = activity;
    if (busy && !s.verbose) {
      const line = progressLine(current);
      if (tty) {
        // Cut to the terminal's width: a wrapped line could not be redrawn in place.
        write(
          out,
          `\r\x1b[2K${`${spinner[frame++ % spinner.length]} ${line}`.slice(0, Math.max(20, (out.columns || 120) - 1))}`,
        );
        liveShown = true;
      } else if (line.replace(/^\s*[\d.]+ s/, "") !== lastPlain && Date.now() - lastPlainAt >= 2000) {
        say(line);
        lastPlain = line.replace(/^\s*[\d.]+ s/, "");
        lastPlainAt = Date.now();
      }
    }
    if (idleLooks >= 2 && (busy || s.drain)) {
      // Idle twice in a row: everything enqueued so far has an outcome.
      busy = false;
      clearLive();
      lastShown = await p.stats();
      say(`Summary ${formatSummary(lastShown)}`);
      if (demoBatch && s.demo && !ledgerShown) {
        await sayLedger(p, demoBatch, cliCommand(p, defaultPorts));
        ledgerShown = true;
      }
      say();
      if (s.drain) break;
      if (!hinted) {
        hint();
        hinted = true;
      } else {
        say("Waiting for more jobs (Ctrl-C stops).");
      }
    }
    await Promise.race([new Promise((resolve) => setTimeout(resolve, tty ? 150 : 250)), stopSignal]);
  }

  // ---- stop: let batches in flight finish, then report what is left ----
  const report = await p.stop();
  // Saved before anything is printed: a closed stdout (`npm start | tee log`, then Ctrl-C) loses nothing.
  const dir = dirname(logFile);
  const id = runId();
  const unfinished = saveLeftovers("unfinished", report.unfinished, dir, id);
  const deadLetters = saveLeftovers("dead-letters", report.deadLetters, dir, id);
  clearLive();
  if (stopRequested) {
    say(
      summaryChanged(lastShown, report.stats)
        ? `\nSummary ${formatSummary(report.stats)}\n`
        : "Stopped; nothing changed since the summary above.",
    );
  }
  // The embedded queues live in memory: what is left on them is written down, not lost.
  if (unfinished)
    say(
      `${plural(report.unfinished.length, "job")} had not finished; saved to ${relativePath(unfinished)}: re-enqueue with npx scm-withdraw bulk ${relativePath(unfinished)}`,
    );
  if (deadLetters)
    say(
      `The DLQ's ${plural(report.deadLetters.length, "message")} (body and failure_reason) are saved to ${relativePath(deadLetters)}.`,
    );
  say(`Handler log: ${logFile}`);
  await new Promise<void>((resolve) => log!.end(resolve));
  // Ctrl-C (or SIGTERM) ends a run with 130, as the shell reports for npm itself; 0 only when --drain drained.
  return stopRequested ? 130 : 0;
}

process.exitCode = await main().catch((error: unknown) => {
  clearLive();
  write(process.stderr, `${NAME}: ${describeError(error)}\n`);
  return 1;
});
// Worker threads and sockets are closed; exit now rather than wait for stray timers.
process.exit(process.exitCode);
