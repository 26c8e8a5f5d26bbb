/**
 * Comparison 3: cold start. The deployable bundle of `handlers/withdraw.ts` (minified ESM, the AWS SDK
 * external as the Lambda runtime provides it) against the Powertools-based equivalent bundled the same
 * way: size, and the time to import it in a fresh Node process (median of N, the two alternated).
 *
 * The handler builds its clients at module scope from the environment and throws on a bad one, so
 * each import gets a valid environment whose endpoints are "trap" listeners on 127.0.0.1 that count
 * every connection: an import that touches the network shows up there. One more import each runs
 * with every endpoint on a closed port, to show that no service needs to be reachable.
 */
import { spawn } from "node:child_process";
import net from "node:net";
import type { Bundles } from "./bundles.ts";
import { fixed, median, ratio, type Section } from "./report.ts";

export interface ColdStartOptions {
  /** Imports per bundle. */
  samples: number;
  maxBytes: number;
}

export const COLD_START_DEFAULTS: ColdStartOptions = { samples: 21, maxBytes: 150 * 1024 };

/** Prints the import time (ms) of the module at argv[1]. */
const IMPORT_SCRIPT =
  "const t = performance.now(); await import(process.argv[1]); process.stdout.write(String(performance.now() - t));";

interface ImportResult {
  code: number | null;
  importMs: number;
  processMs: number;
  stderr: string;
}

function importOnce(file: string, env: Record<string, string>): Promise<ImportResult> {
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(process.execPath, ["--no-warnings", "--input-type=module", "-e", IMPORT_SCRIPT, file], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/tmp", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.on("close", (code) =>
      resolve({ code, importMs: Number(stdout), processMs: performance.now() - started, stderr }),
    );
  });
}

async function trapListener(): Promise<{ port: number; connections: () => number; close: () => Promise<void> }> {
  let count = 0;
  const server = net.createServer((socket) => {
    count++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => count,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function envFor(port: number): Record<string, string> {
  const base = `http://127.0.0.1:${port}`;
  return {
    SCM_ENDPOINT: base,
    SCM_TOKEN_SECRET_ID: "scm-withdraw/token",
    WITHDRAWAL_DLQ_URL: `${base}/000000000000/withdrawals-dlq`,
    AWS_ENDPOINT_URL_SQS: base,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: base,
    AWS_REGION: "eu-west-1",
    AWS_ACCESS_KEY_ID: "bench",
    AWS_SECRET_ACCESS_KEY: "bench",
  };
}

export async function benchColdStart(
  bundles: Bundles,
  options: ColdStartOptions = COLD_START_DEFAULTS,
): Promise<Section> {
  const trap = await trapListener();
  const candidates = { ours: bundles.withdraw.outfile, powertools: bundles.powertools.outfile };
  const results: Record<keyof typeof candidates, ImportResult[]> = { ours: [], powertools: [] };
  const problems: string[] = [];
  try {
    // One unmeasured import each first: the OS file cache then holds both bundles and node_modules.
    for (const file of Object.values(candidates)) await importOnce(file, envFor(trap.port));
    for (let i = 0; i < options.samples; i++) {
      const order = i % 2 === 0 ? (["ours", "powertools"] as const) : (["powertools", "ours"] as const);
      for (const key of order) {
        const result = await importOnce(candidates[key], envFor(trap.port));
        if (result.code !== 0 || !Number.isFinite(result.importMs))
          problems.push(`${key}: exit ${result.code}: ${result.stderr.trim().split("\n").slice(-3).join(" ")}`);
        results[key].push(result);
      }
    }
    const closed = await closedPort();
    const closedRuns = {
      ours: await importOnce(candidates.ours, envFor(closed)),
      powertools: await importOnce(candidates.powertools, envFor(closed)),
    };
    // Give any connection started at import time a moment to reach the trap.
    await new Promise((r) => setTimeout(r, 200));
    const connections = trap.connections();

    const ok = (key: keyof typeof candidates) =>
      results[key].filter((r) => r.code === 0 && Number.isFinite(r.importMs));
    const importMs = {
      ours: median(ok("ours").map((r) => r.importMs)),
      powertools: median(ok("powertools").map((r) => r.importMs)),
    };
    const processMs = {
      ours: median(ok("ours").map((r) => r.processMs)),
      powertools: median(ok("powertools").map((r) => r.processMs)),
    };
    const closedOk = closedRuns.ours.code === 0;
    const kb = (bytes: number) => `${fixed(bytes / 1024, 1)} KB`;

    return {
      title: "3. Cold start",
      rows: [
        {
          comparison: "3",
          metric: "bundle size (minified, AWS SDK external)",
          value: `${kb(bundles.withdraw.bytes)} (${bundles.withdraw.bytes} B)`,
          baseline: `${kb(bundles.powertools.bytes)} (${bundles.powertools.bytes} B)`,
          target: `≤ ${kb(options.maxBytes)}`,
          pass: bundles.withdraw.bytes <= options.maxBytes,
        },
        {
          comparison: "3",
          metric: `import time, fresh process (median of ${options.samples})`,
          value: `${fixed(importMs.ours)} ms`,
          baseline: `${fixed(importMs.powertools)} ms`,
          ratio: ratio(importMs.ours, importMs.powertools),
          target: "≤ 1.0×",
          pass: importMs.ours <= importMs.powertools && problems.length === 0,
        },
        {
          comparison: "3",
          metric: "whole process: start, import, exit (median)",
          value: `${fixed(processMs.ours)} ms`,
          baseline: `${fixed(processMs.powertools)} ms`,
          ratio: ratio(processMs.ours, processMs.powertools),
        },
        {
          comparison: "3",
          metric: "no network at import",
          value: `${connections} connection(s); imports with closed ports: ${closedOk ? "ok" : `exit ${closedRuns.ours.code}`}`,
          baseline: `closed ports: ${closedRuns.powertools.code === 0 ? "ok" : `exit ${closedRuns.powertools.code}`}`,
          target: "0, ok",
          pass: connections === 0 && closedOk,
        },
      ],
      notes: [
        `Both bundles built by \`scripts/build.mjs\`'s \`buildEntry\` (esbuild, minified ESM, target node24, \`@aws-sdk/*\` and \`@smithy/*\` external; source maps in separate files, not counted).`,
        `Import time: \`node --input-type=module -e "… await import(bundle) …"\` in a fresh process, timed inside it around the \`import()\` (which loads the external AWS SDK clients from node_modules too, as the Lambda runtime would), ${options.samples} times each, alternated, after one unmeasured warm-up each (OS file cache). Whole process = spawn to exit, as the parent sees it.`,
        "Each import gets a valid configuration whose endpoints (SCM, SQS, Secrets Manager) are listeners that count connections; one more import each points every endpoint at a closed port and must still succeed.",
        ...(problems.length > 0 ? [`Failed imports: ${problems.slice(0, 3).join("; ")}`] : []),
      ],
    };
  } finally {
    await trap.close();
  }
}
