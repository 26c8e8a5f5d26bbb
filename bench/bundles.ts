/**
 * Builds, once per bench run, every bundle the comparisons load, with the deployable options of
 * `scripts/build.mjs` (minified ESM, AWS SDK external): the real handler, the Powertools baseline,
 * the hand-written sequential baseline and the container harness.
 *
 * They go to `node_modules/.cache/scm-bench/` because the external `@aws-sdk/*` imports must resolve
 * from the project's `node_modules` (a bundle in /tmp would not find them) and that folder is ignored.
 */
import { mkdir, rm } from "node:fs/promises";
import path from "node:path";
import { buildEntry, PROJECT_ROOT, type BuiltEntry } from "../scripts/build.mjs";

export const BENCH_DIR = path.join(PROJECT_ROOT, "node_modules", ".cache", "scm-bench");

export interface Bundles {
  withdraw: BuiltEntry;
  powertools: BuiltEntry;
  sequential: BuiltEntry;
  container: BuiltEntry;
  /** Where the containers' stdout/stderr go (handler logs). */
  logDir: string;
}

export async function buildBundles(): Promise<Bundles> {
  const outdir = path.join(BENCH_DIR, "bundles");
  const logDir = path.join(BENCH_DIR, "logs");
  await rm(BENCH_DIR, { recursive: true, force: true });
  await mkdir(logDir, { recursive: true });
  const [withdraw, powertools, sequential, container] = await Promise.all([
    buildEntry("handlers/withdraw.ts", { outdir }),
    buildEntry("bench/powertools-handler.ts", { outdir }),
    buildEntry("bench/sequential-handler.ts", { outdir }),
    buildEntry("bench/container.ts", { outdir }),
  ]);
  return { withdraw, powertools, sequential, container, logDir };
}
