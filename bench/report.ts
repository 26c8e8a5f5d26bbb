/**
 * The bench's results: rows of figures with their baseline, ratio and target, printed as a table and
 * written to BENCHMARKS.md with the machine they came from.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";

export interface Row {
  /** Which comparison (1 to 7) and what is measured. */
  comparison: string;
  metric: string;
  /** The project's figure. */
  value: string;
  /** The baseline's figure, when there is one. */
  baseline?: string;
  /** value / baseline (or the figure against its bound), as shown. */
  ratio?: string;
  target?: string;
  /** undefined: informational, no target. */
  pass?: boolean;
}

export interface Section {
  title: string;
  rows: Row[];
  /** How it was measured, for BENCHMARKS.md. */
  notes: string[];
}

export const median = (values: readonly number[]): number => percentile(values, 50);

/** Nearest-rank percentile. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export const fixed = (value: number, digits = 1): string => (Number.isFinite(value) ? value.toFixed(digits) : "n/a");
export const ratio = (value: number, baseline: number): string =>
  baseline > 0 && Number.isFinite(value)
    ? `${value / baseline >= 10 ? fixed(value / baseline, 1) : fixed(value / baseline, 2)}×`
    : "n/a";
export const mb = (kib: number): string => `${fixed(kib / 1024, 0)} MB`;
export const verdict = (pass: boolean | undefined): string => (pass === undefined ? "" : pass ? "pass" : "FAIL");

export interface Machine {
  cpu: string;
  cores: number;
  memory: string;
  node: string;
  os: string;
  date: string;
  /** `uptime`'s load averages when the run started and ended. */
  loadStart: string;
  loadEnd?: string;
}

export function describeMachine(): Machine {
  return {
    cpu: os.cpus()[0]?.model.trim() ?? "unknown",
    cores: os.cpus().length,
    memory: `${fixed(os.totalmem() / 2 ** 30, 1)} GiB`,
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    date: new Date().toISOString(),
    loadStart: loadAverage(),
  };
}

/** The output of `uptime` (load averages over 1, 5 and 15 minutes), or os.loadavg() without it. */
export function loadAverage(): string {
  try {
    return execFileSync("uptime", { encoding: "utf8" }).trim().replace(/\s+/g, " ");
  } catch {
    return `load average: ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(", ")}`;
  }
}

const HEADERS = ["#", "metric", "scm-withdraw", "baseline", "ratio", "target", "result"] as const;

function cells(row: Row): string[] {
  return [
    row.comparison,
    row.metric,
    row.value,
    row.baseline ?? "",
    row.ratio ?? "",
    row.target ?? "",
    verdict(row.pass),
  ];
}

/** A plain-text table for the terminal. */
export function textTable(rows: readonly Row[]): string {
  const all = [HEADERS as readonly string[], ...rows.map(cells)];
  const widths = HEADERS.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  const line = (r: readonly string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  return [line(all[0]!), widths.map((w) => "-".repeat(w)).join("  "), ...all.slice(1).map(line)].join("\n");
}

/** A Markdown table (for BENCHMARKS.md). */
export function markdownTable(rows: readonly Row[]): string {
  const escapeCell = (c: string) => c.replace(/\|/g, "\\|");
  return [
    `| ${HEADERS.join(" | ")} |`,
    `| ${HEADERS.map(() => "---").join(" | ")} |`,
    ...rows.map((r) => `| ${cells(r).map(escapeCell).join(" | ")} |`),
  ].join("\n");
}

export function benchmarksMarkdown(machine: Machine, sections: readonly Section[], totalSeconds: number): string {
  const rows = sections.flatMap((s) => s.rows);
  const failed = rows.filter((r) => r.pass === false);
  return `# Benchmarks

Written by \`npm run bench\` (\`bench/run.ts\`); do not edit by hand. Every ratio compares figures measured
side by side in the same run, on this machine:

| | |
| --- | --- |
| CPU | ${machine.cpu} |
| cores | ${machine.cores} |
| memory | ${machine.memory} |
| Node.js | ${machine.node} |
| OS | ${machine.os} |
| date | ${machine.date} |
| load at start | \`${machine.loadStart}\` |
| load at end | \`${machine.loadEnd ?? ""}\` |
| bench duration | ${fixed(totalSeconds, 0)} s |

Result: ${failed.length === 0 ? "every target met." : `${failed.length} target(s) missed: ${failed.map((r) => `${r.comparison} ${r.metric}`).join("; ")}.`}

${markdownTable(rows)}

${sections.map((s) => `## ${s.title}\n\n${s.notes.map((n) => `- ${n}`).join("\n")}`).join("\n\n")}

## Reading these numbers

- Absolute figures depend on the machine and on what else it was doing (see the load above); the
  ratios, measured side by side in one run, are what the targets are about.
- Every service is local (127.0.0.1): the SCM simulator adds a fixed latency per call instead of the
  internet's, and fauxqs stands in for SQS, so the figures are about this code, not about AWS or Huawei.
`;
}

/** The package version of a dependency, for the notes. */
export function versionOf(pkg: string, root: string): string {
  try {
    return (JSON.parse(readFileSync(`${root}/node_modules/${pkg}/package.json`, "utf8")) as { version: string })
      .version;
  } catch {
    return "?";
  }
}
