/**
 * Comparison 7: the operator CLI's start. `scm-withdraw --help` run as a user runs it (the bin
 * executed directly: its shebang finds `node` on PATH, the project's Node first) against a bare
 * `node -e ""`, alternating the two in the same run so both see the same machine load. The bin runs
 * the built CLI (`dist/cli.mjs`, `npm run build`); its `--help` loads the dispatcher only.
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { PROJECT_ROOT } from "../scripts/build.mjs";
import { fixed, median, ratio, type Section } from "./report.ts";

export interface CliStartOptions {
  /** Timed runs of each; the medians are compared. */
  runs: number;
  /** The bound on median(--help) / median(node -e ""). */
  maxRatio: number;
}

export const CLI_START_DEFAULTS: CliStartOptions = { runs: 40, maxRatio: 1.5 };

/** Wall time of one run in ms; throws if it fails. */
function timeRun(command: string, args: string[], env: NodeJS.ProcessEnv): number {
  const started = performance.now();
  const result = spawnSync(command, args, { env, stdio: "ignore" });
  const ms = performance.now() - started;
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} exited ${result.status ?? result.signal}`);
  return ms;
}

export function benchCliStart(options: CliStartOptions = CLI_START_DEFAULTS): Section {
  // The node that runs the bench (the project's Node 24) first on PATH, as in any npm script.
  const env = {
    PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ""}`,
    HOME: process.env.HOME ?? "/tmp",
  };
  const bin = path.join(PROJECT_ROOT, "bin", "scm-withdraw.mjs");
  const help: number[] = [];
  const bare: number[] = [];
  // One untimed run of each warms the file cache.
  timeRun(bin, ["--help"], env);
  timeRun(process.execPath, ["-e", ""], env);
  for (let i = 0; i < options.runs; i++) {
    help.push(timeRun(bin, ["--help"], env));
    bare.push(timeRun(process.execPath, ["-e", ""], env));
  }
  const value = median(help);
  const baseline = median(bare);
  return {
    title: "7. Operator CLI start",
    rows: [
      {
        comparison: "7",
        metric: '`scm-withdraw --help` vs bare `node -e ""`: median wall time',
        value: `${fixed(value, 0)} ms`,
        baseline: `${fixed(baseline, 0)} ms`,
        ratio: ratio(value, baseline),
        target: `≤ ${options.maxRatio}×`,
        pass: value <= options.maxRatio * baseline,
      },
    ],
    notes: [
      `${options.runs} runs of each, alternating, after one untimed run of each; medians of the wall time of the whole process (spawn to exit).`,
      "The bin is executed as a user runs it (`#!/usr/bin/env -S node --max-semi-space-size=16`), with the project's Node first on PATH.",
      "It runs the built CLI (`dist/cli.mjs`, plain JavaScript, no TypeScript loader); `--help` loads only the dispatcher and the command index (cli/commands/index.ts), not the commands, the AWS SDK or HTTP.",
    ],
  };
}
