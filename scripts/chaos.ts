/**
 * `npm run chaos`: thousands of jobs through the local pipeline under random SCM faults, with the
 * event source killed and restarted in the middle of batches; then every job is reconciled and the
 * accounting table printed (see `local/chaos.ts` and docs/testing.md, "Chaos run").
 *
 * Exit codes: 0 every job accounted for, 1 an invariant failed (lost, wrongly dead-lettered, wrong
 * reason, double withdrawal, unfinished) or the run could not start, 2 bad flags.
 */
import { createWriteStream, mkdirSync } from "node:fs";
import { dirname, relative } from "node:path";
import { describeError } from "../lib/errors.ts";
import { LOCAL } from "../cli/local-defaults.ts";
import {
  CHAOS_DEFAULTS,
  formatAccounting,
  formatDiscrepancies,
  formatPlan,
  planChaos,
  runChaos,
  type ChaosPlan,
} from "../local/chaos.ts";
import { UsageError } from "../lib/errors.ts";
import { integerFlag, parseFlagValues } from "../local/flags.ts";

const NAME = "npm run chaos";

const HELP = `Usage: npm run chaos [-- options]

Sends jobs through the local pipeline (fauxqs, the SCM simulator, the real handler in worker-thread
containers fed by the local event source) while the simulator injects random faults per certificate
and the event source is killed and restarted in the middle of batches. Then it reconciles every job
(withdrawn in SCM, or in the DLQ with the right failure_reason, or lost), prints the accounting table,
and exits 1 if anything is lost, wrongly dead-lettered, or withdrawn twice.

Options:
  --jobs N          jobs to send (default ${CHAOS_DEFAULTS.jobs})
  --seed S          the seed of the plan (faults, profiles, kill moments); default: a random one,
                    printed at start. The same seed gives the same plan; timing still varies
  --kills N         kills of the event source and its containers (default ${CHAOS_DEFAULTS.kills})
  --concurrency N   batches in flight at once, one container each (default ${CHAOS_DEFAULTS.maxConcurrency})
  --log-file PATH   where the handler's JSON log lines go (default .local/chaos-worker.log)
  --aksk            sign every SCM call with the demo AK/SK pair instead of sending a token
  -h, --help        show this help`;

function parseFlags(argv: string[]) {
  const values = parseFlagValues(argv, {
    jobs: { type: "string" },
    seed: { type: "string" },
    kills: { type: "string" },
    concurrency: { type: "string" },
    "log-file": { type: "string" },
    aksk: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) return "help" as const;
  return {
    jobs: integerFlag(values, "jobs", { min: 1, max: 1_000_000 }),
    seed: integerFlag(values, "seed", { min: 0, max: 0xffffffff }),
    kills: integerFlag(values, "kills", { min: 0, max: 1000 }),
    maxConcurrency: integerFlag(values, "concurrency", { min: 1, max: 32 }),
    logFile: values["log-file"] ?? ".local/chaos-worker.log",
    aksk: values.aksk ?? false,
  };
}

async function main(): Promise<number> {
  let flags: ReturnType<typeof parseFlags>;
  try {
    flags = parseFlags(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`${NAME}: ${error.message} (see \`${NAME} -- --help\`)\n`);
    return 2;
  }
  if (flags === "help") {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }

  let plan: ChaosPlan;
  try {
    plan = planChaos({
      ...(flags.jobs === undefined ? {} : { jobs: flags.jobs }),
      ...(flags.seed === undefined ? {} : { seed: flags.seed }),
      ...(flags.kills === undefined ? {} : { kills: flags.kills }),
      ...(flags.maxConcurrency === undefined ? {} : { maxConcurrency: flags.maxConcurrency }),
    });
  } catch (error) {
    process.stderr.write(`${NAME}: ${error instanceof Error ? error.message : String(error)}\n`);
    return 2;
  }
  const { settings } = plan;
  mkdirSync(dirname(flags.logFile), { recursive: true });
  const log = createWriteStream(flags.logFile);
  const out = (line: string) => process.stdout.write(`${line}\n`);

  out(
    `chaos run: seed ${settings.seed}, ${settings.jobs} jobs, ${settings.kills} kills (reproduce: ${NAME} -- --seed ${settings.seed} --jobs ${settings.jobs} --kills ${settings.kills})`,
  );
  out(
    `  ${settings.maxConcurrency} containers, batches of ${settings.batchSize}, visibility timeout ${settings.visibilityTimeoutSeconds} s, ` +
      `MAX_RECEIVE_COUNT ${settings.maxReceiveCount} (redrive after ${settings.maxReceiveCount + 2}), MAX_ATTEMPTS ${settings.maxAttempts}, SCM_TIMEOUT_MS ${settings.scmTimeoutMs}`,
  );
  for (const line of formatPlan(plan).split("\n")) out(`  ${line}`);
  out(`  handler log: ${relative(process.cwd(), flags.logFile) || flags.logFile}`);
  out("");

  const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  let report: Awaited<ReturnType<typeof runChaos>>;
  try {
    report = await runChaos(plan, {
      ...(flags.aksk ? { aksk: demoAkSk() } : {}),
      onLogLine: (line) => log.write(`${line}\n`),
      onProgress: (event) => {
        const where = `${seconds(event.elapsedMs)}: ${event.decided}/${event.total} decided`;
        if (event.type === "enqueued") out(`${where}; ${event.total} jobs enqueued`);
        else if (event.type === "tick") out(where);
        else if (event.type === "kill" && event.kill) {
          const k = event.kill;
          const moment =
            k.mode === "before_delete"
              ? `after a batch's answer, before its delete (${k.deletesDropped} acknowledged records not deleted); `
              : "";
          out(
            `${where}; KILL ${k.number}: ${moment}${k.invocationsKilled} batch(es) terminated in their containers (${k.recordsKilled} records); restarted after ${k.restartMs} ms`,
          );
        } else if (event.type === "drained") out(`${where}; queue empty`);
      },
    });
  } catch (error) {
    process.stderr.write(`${NAME}: the run failed: ${describeError(error)}\n`);
    return 1;
  } finally {
    await new Promise<void>((resolve) => log.end(() => resolve()));
  }

  out("");
  out(`Accounting (seed ${settings.seed}, ${settings.jobs} jobs):`);
  out(formatAccounting(report));
  if (!report.ok) {
    out("");
    out("Discrepancies (first 20):");
    out(formatDiscrepancies(report, 20));
    out(`Reproduce the plan: ${NAME} -- --seed ${settings.seed} --jobs ${settings.jobs} --kills ${settings.kills}`);
  }
  return report.ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${NAME}: ${describeError(error)}\n`);
    process.exit(1);
  },
);

/** The local demo AK/SK pair (not a secret: only the simulator accepts it). */
function demoAkSk() {
  const { access_key: accessKey, secret_key: secretKey, domain_id: domainId } = LOCAL.demoAkSk;
  return { accessKey, secretKey, domainId };
}
