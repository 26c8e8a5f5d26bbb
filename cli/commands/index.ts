/**
 * The command index: each command's head (./heads.ts: name, synopsis, summary) and how to load the rest.
 * `scm-withdraw --help` and usage errors need only this, so they never load a command's module (nor
 * the AWS SDK, HTTP or the file parsers it imports): the built CLI starts about as fast as a bare
 * `node` (`npm run bench`). Each command module spreads its head: `{ ...HEADS.status, run, ... }`.
 *
 * Adding a command: its head in ./heads.ts, one line in {@link COMMANDS} (the order `--help` lists them).
 */
import type { LazyCommand } from "../context.ts";
import { HEADS } from "./heads.ts";

/** Every command, in the order `--help` lists them. */
export const COMMANDS: readonly LazyCommand[] = [
  { ...HEADS.enqueue, load: async () => (await import("./enqueue.ts")).enqueueCommand },
  { ...HEADS.bulk, load: async () => (await import("./bulk.ts")).bulkCommand },
  { ...HEADS.batchStatus, load: async () => (await import("./batch-status.ts")).batchStatusCommand },
  { ...HEADS.batchReport, load: async () => (await import("./batch-report.ts")).batchReportCommand },
  { ...HEADS.job, load: async () => (await import("./job.ts")).jobCommand },
  { ...HEADS.dlqList, load: async () => (await import("./dlq-list.ts")).dlqListCommand },
  { ...HEADS.dlqRedrive, load: async () => (await import("./dlq-redrive.ts")).dlqRedriveCommand },
  { ...HEADS.status, load: async () => (await import("./status.ts")).statusCommand },
  { ...HEADS.cleanup, load: async () => (await import("./cleanup.ts")).cleanupCommand },
];
