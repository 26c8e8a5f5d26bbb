/**
 * `npm run bench`: every comparison of issue 6 in one run, side by side with its baseline, printed as
 * a table and written to BENCHMARKS.md with the machine it ran on.
 *
 *   npm run bench                 # everything (about 3 minutes)
 *   npm run bench -- --only 1,3   # some comparisons only (BENCHMARKS.md is then not written)
 *
 * A script, not a test: it exits 1 when a target is missed, but nothing in `npm test` depends on it.
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { UsageError } from "../lib/errors.ts";
import { parseFlagValues } from "../local/flags.ts";
import { buildCli, PROJECT_ROOT } from "../scripts/build.mjs";
import { buildBundles } from "./bundles.ts";
import { benchBulk } from "./bulk.ts";
import { benchCliStart } from "./cli-start.ts";
import { benchColdStart } from "./cold-start.ts";
import { benchRedrive } from "./redrive.ts";
import { benchmarksMarkdown, describeMachine, loadAverage, type Section, textTable } from "./report.ts";
import { startBenchStack } from "./stack.ts";
import { benchThrottling } from "./throttling.ts";
import { benchThroughput } from "./throughput.ts";

const ALL = ["1", "2", "3", "4", "5", "6", "7"] as const;

const USAGE = `usage: npm run bench [-- --only N,N]

Runs the comparisons of docs/benchmarks.md side by side with their baselines (about 2 minutes on 2 cores)
and writes BENCHMARKS.md; --only runs some of them (1 to 7, comma-separated) and leaves BENCHMARKS.md alone.`;

/** The flags, through the project's one parser: a typo or --help must never start a 3-minute run. */
function parseOnly(argv: readonly string[]): Set<string> {
  let values: { only?: string; help?: boolean };
  try {
    values = parseFlagValues([...argv], { only: { type: "string" }, help: { type: "boolean", short: "h" } });
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`npm run bench: ${error.message} (see npm run bench -- --help)`);
    process.exit(2);
  }
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  if (values.only === undefined) return new Set(ALL);
  const value = values.only;
  const picked = value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const bad = picked.filter((p) => !(ALL as readonly string[]).includes(p));
  if (picked.length === 0 || bad.length > 0) {
    console.error(`--only takes comparison numbers from 1 to 7, comma-separated (got ${JSON.stringify(value)})`);
    process.exit(2);
  }
  return new Set(picked);
}

async function main() {
  const only = parseOnly(process.argv.slice(2));
  const started = performance.now();
  const machine = describeMachine();
  const step = (message: string) =>
    console.error(`[bench ${fixed0((performance.now() - started) / 1000)} s] ${message}`);
  step(`${machine.cpu}, ${machine.cores} cores, ${machine.memory}, Node ${machine.node}; ${machine.loadStart}`);

  // Only comparisons 1 to 3 run the deployable bundles; 4 and 7 run the built CLI.
  const needsBundles = ["1", "2", "3"].some((c) => only.has(c));
  if (needsBundles) step("building bundles");
  const bundles = needsBundles ? await buildBundles() : undefined;
  if (only.has("4") || only.has("7")) {
    step("building the CLI");
    await buildCli();
  }
  const stack = await startBenchStack();
  const sections: Section[] = [];
  try {
    if (only.has("1") || only.has("2")) {
      step("1-2: throughput and connection reuse");
      sections.push(...(await benchThroughput(stack, bundles!)));
    }
    if (only.has("3")) {
      step("3: cold start");
      sections.push(await benchColdStart(bundles!));
    }
    if (only.has("4")) {
      step("4: bulk enqueue");
      sections.push(await benchBulk());
    }
    if (only.has("5")) {
      step("5: throttling");
      sections.push(await benchThrottling(stack));
    }
    if (only.has("6")) {
      step("6: dlq redrive with and without the ledger");
      sections.push(await benchRedrive());
    }
    if (only.has("7")) {
      step("7: CLI start");
      sections.push(benchCliStart());
    }
  } finally {
    await stack.close();
  }
  machine.loadEnd = loadAverage();
  const seconds = (performance.now() - started) / 1000;
  step(`done; ${machine.loadEnd}`);

  const rows = sections.flatMap((s) => s.rows);
  console.log(textTable(rows));
  const failed = rows.filter((r) => r.pass === false);
  console.log(failed.length === 0 ? "\nEvery target met." : `\n${failed.length} target(s) missed.`);
  if (only.size === ALL.length) {
    await writeFile(path.join(PROJECT_ROOT, "BENCHMARKS.md"), benchmarksMarkdown(machine, sections, seconds));
    console.log(`Written to BENCHMARKS.md (${fixed0(seconds)} s).`);
  } else {
    for (const section of sections) console.log(`\n${section.title}\n${section.notes.map((n) => `- ${n}`).join("\n")}`);
    console.log(`\nPartial run (--only): BENCHMARKS.md left as it was (${fixed0(seconds)} s).`);
  }
  process.exitCode = failed.length === 0 ? 0 : 1;
}

const fixed0 = (n: number) => n.toFixed(0);

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exit(1);
});
