/**
 * `scm-withdraw bulk <file>`: a whole list of jobs, streamed. Memory stays flat whatever the file's
 * size: one line at a time is read, ids seen so far live in a compact set (about 40 bytes each),
 * sends wait for room (back-pressure), and the results file is written as results come in.
 */
import { BulkFileError, CliError, UsageError } from "../../lib/errors.ts";
import { randomBytes } from "node:crypto";
import { closeSync } from "node:fs";
import { resolve } from "node:path";
import {
  BULK_FORMATS,
  CertificateIdSet,
  formatFromPath,
  readBulkFile,
  type BulkFormat,
  type BulkReadOptions,
} from "../../lib/bulk-file.ts";
import { parseWithdrawalBody } from "../../lib/message.ts";
import { integerFlag, stringFlag, type ParsedArgs } from "../args.ts";
import {
  DEFAULT_STALL_TIMEOUT_MS,
  DEFAULT_WATCH_INTERVAL_MS,
  durationFlag,
  formatStatus,
  statusJson,
  WATCH_OPTIONS,
  watchBatch,
  watchVerdict,
} from "../batch.ts";
import { openInput, openResults, type InputFile, type ResultsFile } from "../bulk-files.ts";
import { BulkRun, readAndSend, type BulkPlan } from "../bulk-run.ts";
import { confirm, mustAsk, YES_OPTION } from "../confirm.ts";
import { HEADS } from "./heads.ts";
import { EXIT, type Command, type CommandContext } from "../context.ts";
import { resumeCommand } from "../resume.ts";
import { formatBytes, formatDuration, plural, queueName } from "../output.ts";

/** `<batch_id>:<certificate_id>` must fit in a request_id (at most 128 characters). */
const MAX_LEDGER_BATCH_ID = 128 - 1 - 16;

export const bulkCommand: Command = {
  ...HEADS.bulk,
  description: [
    "Formats (by extension, or --format):",
    "  .txt    one certificate id per line; blank lines and # comments are skipped",
    "  .csv    a header row with a certificate_id column (reason, request_id, requested_at columns are used too)",
    "  .jsonl  one JSON message per line, validated against the full message schema",
    "",
    'Every valid job is stamped with source "bulk" and the batch id, and sent with SendMessageBatch',
    "(10 per call, several calls in flight; entries SQS reports as failed are retried). Invalid lines are",
    "reported with their line numbers and never sent; the valid lines around them still are. A certificate",
    "id seen before in the file is skipped as a duplicate. The results file gets one row per record:",
    "line, certificate_id, outcome (sent, failed, invalid, duplicate; valid in a dry run), message_id, detail.",
    "",
    "With the ledger (LEDGER_TABLE / --ledger-table, or the local pipeline's), every job gets a request_id",
    "(<batch_id>:<certificate_id> unless its line has one) and is recorded as queued before it is sent;",
    "a job the ledger already holds as withdrawn (a re-run of the same file and batch id) is not sent",
    "again (outcome already_done), nor is one it holds as queued (outcome already_queued: a re-run of an",
    "interrupted run resumes it; --resend-queued sends those again). At the end the batch's total is recorded, so `batch status` can tell",
    "when it is done. --wait then follows the batch to the end with a progress bar.",
    "",
    "On a terminal, bulk first reads the whole file, says how many jobs it would send (with the batch id",
    "and reason) and asks; --yes skips the question and is needed when there is no terminal.",
    "",
    "Exit 0 when every record was valid and sent (with --wait: and every job withdrawn or already",
    "withdrawn); 1 when any line was invalid, any send failed, or (with --wait) any job was dead-lettered",
    "or the batch stalled.",
  ].join("\n"),
  options: {
    "batch-id": {
      type: "string",
      valueName: "ID",
      description: "the batch id stamped on every job (default: bulk-YYYYMMDD-HHMMSS-xxxx, printed at the start)",
    },
    reason: { type: "string", valueName: "TEXT", description: "reason for jobs whose line has none" },
    "dry-run": { type: "boolean", description: "validate and count only; send nothing" },
    results: {
      type: "string",
      valueName: "PATH",
      description: "where to write the results CSV (default: <file>.results.csv)",
    },
    format: { type: "string", valueName: "FORMAT", description: "txt, csv or jsonl, when the extension does not say" },
    concurrency: { type: "string", valueName: "N", description: "SendMessageBatch calls in flight (default 8)" },
    wait: {
      type: "boolean",
      description: "follow the batch in the ledger until every job is final; exit 1 if any was dead-lettered",
    },
    "resend-queued": {
      type: "boolean",
      description: "with the ledger, also send jobs it holds as queued (after a run was killed outright)",
    },
    ...WATCH_OPTIONS,
    ...YES_OPTION,
  },
  async run(context, args) {
    const plan = await planBulk(context, args);
    if (plan.ask) {
      const declined = await askToSend(context, plan);
      if (declined !== undefined) return declined;
    }
    const { input, results } = openFiles(plan);
    const run = new BulkRun(context, plan, results);
    if (!context.json) {
      const to = plan.dryRun ? "dry run, nothing will be sent" : queueName(plan.queueUrl);
      context.print(`batch ${plan.batchId}: ${plan.file} (${plan.format}, ${formatBytes(input.size)}) -> ${to}`);
    }
    await readAndSend(run, input);
    const end = await closeBatch(run);
    reportText(run, end);
    const followed = await followBatch(run, end);
    if (context.json) reportJson(run, end, followed);
    return exitCode(run, end, followed);
  },
};

/** Reads the flags, then checks the queue and the ledger: every mistake is reported before anything is sent. */
async function planBulk(context: CommandContext, { values, positionals }: ParsedArgs): Promise<BulkPlan> {
  if (positionals.length !== 1) {
    throw new UsageError(
      positionals.length === 0 ? "bulk needs a file" : `bulk takes one file (got ${positionals.length})`,
      "bulk",
    );
  }
  const file = positionals[0]!;
  const dryRun = values["dry-run"] === true;
  const concurrency = integerFlag(values, "concurrency", { min: 1, max: 64 }, "bulk") ?? 8;
  const format = bulkFormat(file, stringFlag(values, "format"));
  const batchId = stringFlag(values, "batch-id") ?? generateBatchId(new Date());
  const reason = stringFlag(values, "reason");
  const requestedAt = new Date().toISOString();
  const stamp: Record<string, string> = { source: "bulk", batch_id: batchId };
  const withReason = reason !== undefined ? { reason } : {};
  const flags = parseWithdrawalBody(JSON.stringify({ certificate_id: "0000000000000000", ...stamp, ...withReason }));
  if (!flags.ok) throw new UsageError(flags.problem, "bulk");
  const requestedResults = stringFlag(values, "results") ?? `${file}.results.csv`;
  if (resolve(requestedResults) === resolve(file))
    throw new UsageError(`--results would overwrite the input file ${file}`, "bulk");
  closeSync(openInput(file).fd); // a missing or unreadable file is a usage error, before anything else
  const wait = values.wait === true;
  if (wait && dryRun)
    throw new UsageError("--wait follows a batch that was sent: it cannot be used with --dry-run", "bulk");
  const ask =
    !dryRun && mustAsk(context, values, "bulk sends a withdrawal for every id in the file (--dry-run checks the file)");
  // The audit trail: every job says why; a .txt line cannot, so --reason is required for it.
  const reasonRequired = !dryRun && reason === undefined;
  if (reasonRequired && format === "txt") {
    throw new UsageError(
      "bulk needs --reason TEXT: why these certificates are withdrawn (kept in every job for the audit trail)",
      "bulk",
    );
  }
  const intervalMs =
    durationFlag(values, "interval", { minMs: 100, maxMs: 3_600_000 }, "bulk") ?? DEFAULT_WATCH_INTERVAL_MS;
  const stallTimeoutMs =
    durationFlag(values, "stall-timeout", { minMs: 1000, maxMs: 7 * 86_400_000 }, "bulk") ?? DEFAULT_STALL_TIMEOUT_MS;
  const { queueUrl } = context.target;
  if (!dryRun) await context.checkQueue(queueUrl);
  // Before reading the file: --wait without a ledger fails here, having sent nothing.
  const ledger = dryRun ? undefined : wait ? await context.requireLedger() : await context.ledger();
  // The audit trail: who sends (set on every line: a line cannot speak for someone else) and why.
  if (!dryRun) stamp.requested_by = await context.requestedBy();
  if (ledger && batchId.length > MAX_LEDGER_BATCH_ID) {
    throw new UsageError(
      `--batch-id must be at most ${MAX_LEDGER_BATCH_ID} characters with the ledger (each job's request_id is <batch_id>:<certificate_id>)`,
      "bulk",
    );
  }
  const readOptions = { format, set: stamp, defaults: { requested_at: requestedAt, ...withReason } };
  return {
    file,
    format,
    dryRun,
    concurrency,
    batchId,
    reason,
    reasonRequired,
    readOptions,
    requestedResults,
    wait,
    ask,
    intervalMs,
    stallTimeoutMs,
    queueUrl,
    ledger,
    resendQueued: values["resend-queued"] === true,
    given: values,
  };
}

/** Reads the file once to say what it holds, and asks; returns the exit code when the answer is no. */
async function askToSend(context: CommandContext, plan: BulkPlan): Promise<number | undefined> {
  const { file, batchId, reason } = plan;
  const checked = await checkFile(file, plan.readOptions);
  const summary = `${file}: ${plural(checked.valid, "job")} to send, ${checked.invalid} invalid (not sent), ${plural(checked.duplicates, "duplicate")} (skipped)`;
  const why = reason === undefined ? "no --reason" : `reason ${JSON.stringify(reason)}`;
  const question = `send ${plural(checked.valid, "withdrawal")} as batch ${batchId} (${why}) to ${queueName(plan.queueUrl)}?`;
  if (checked.valid > 0 && !(await confirm(context, [summary], question))) {
    context.note("not confirmed: nothing was sent");
    return context.signal?.aborted ? EXIT.interrupted : EXIT.failed;
  }
  return undefined;
}

/** The input is opened (and held) before the results file is even looked at: see openResults. */
function openFiles(plan: BulkPlan): { input: InputFile; results: ResultsFile } {
  const input = openInput(plan.file);
  let results: ResultsFile;
  try {
    results = openResults(plan.requestedResults, input, plan.file);
  } catch (error) {
    closeSync(input.fd);
    throw error;
  }
  results.row(["line", "certificate_id", "outcome", "message_id", "detail"]);
  return { input, results };
}

/** How sending ended, as the reports and the exit code need it. */
interface BulkEnd {
  /** No valid line in a file read to its end: exit 1, and no batch. */
  noJobs: boolean;
  batchRecorded: boolean;
  /** The batch's size: the jobs that went out, and those the ledger already had (done, or queued by an earlier run). */
  inBatch: number;
  elapsedMs: number;
}

/** The ledger forgets the jobs that were not sent and learns the batch's size. */
async function closeBatch(run: BulkRun): Promise<BulkEnd> {
  const { counts, plan } = run;
  // An empty file, or one without a single valid line, is a mistake: exit 1 and create no batch.
  const noJobs = counts.valid === 0 && !run.interrupted;
  if (noJobs && counts.read === 0) run.results.discard();
  const inBatch = counts.sent + (counts.already_done ?? 0) + (counts.already_queued ?? 0);
  let batchRecorded = false;
  if (plan.ledger && !noJobs) {
    if (run.notSent.length > 0) await plan.ledger.recordNotSent(run.notSent);
    // Not after Ctrl-C: the rest of the file is not in the batch yet, and it must not look done before it is resumed.
    if (!run.interrupted) {
      batchRecorded =
        (await plan.ledger.recordBatch(plan.batchId, { expectedTotal: inBatch, source: "bulk" })) === "written";
    }
  }
  return { noJobs, batchRecorded, inBatch, elapsedMs: performance.now() - run.started };
}

/** The summary for a person (stdout), after the problems not shown (stderr, with --json too). */
function reportText(run: BulkRun, end: BulkEnd): void {
  const { context, counts, plan } = run;
  const { file, ledger, batchId } = plan;
  const resultsPath = run.results.path;
  if (run.problemsHidden > 0) context.note(`... and ${run.problemsHidden} more problems: see ${resultsPath}`);
  if (context.json) return;
  const duplicates = plural(counts.duplicates, "duplicate");
  context.print(
    `read ${plural(counts.read, "record")}: ${counts.valid} valid, ${counts.invalid} invalid (not sent), ${duplicates} (skipped)`,
  );
  if (end.noJobs)
    context.print(`no valid job in ${file}: nothing was sent${ledger ? " and no batch was created" : ""}`);
  else if (plan.dryRun) context.print(`dry run: ${counts.valid} would be sent, nothing was sent`);
  else {
    const done = counts.already_done ? `, ${counts.already_done} already withdrawn` : "";
    const skipped = `${done}${counts.already_queued ? `, ${counts.already_queued} already queued` : ""}`;
    const notAgain = skipped ? `${skipped} (not sent again)` : "";
    context.print(
      `sent ${counts.sent}, failed ${counts.failed}${notAgain} in ${formatDuration(end.elapsedMs)} (${run.rate(end.elapsedMs)} messages/s)`,
    );
  }
  if (run.interrupted) context.print("interrupted: the rest of the file was not read");
  if (run.interrupted && ledger) {
    context.print(
      `resume with: ${resumeCommand(file, batchId, plan.reason, plan.given)} (jobs already queued or withdrawn are not sent again)`,
    );
  }
  if (run.interrupted && !ledger)
    context.print(`without the ledger a re-run sends every line again (${resultsPath} lists what was sent)`);
  if (ledger && !end.noJobs) {
    const totalMissing = !end.batchRecorded && !run.interrupted;
    const missing = `${plural(run.ledgerFailed, "job")}${totalMissing ? " and the batch's total" : ""}`;
    const trouble = run.ledgerFailed > 0 || totalMissing ? ` (${missing} could not be recorded)` : "";
    const follow =
      plan.wait || !end.batchRecorded ? "" : `; follow with \`scm-withdraw batch status ${batchId} --watch\``;
    context.print(`ledger: ${plural(end.inBatch, "job")} in batch ${batchId}${trouble}${follow}`);
  }
  if (counts.read > 0) {
    const kept = resultsPath === plan.requestedResults ? "" : ` (${plan.requestedResults} exists: not overwritten)`;
    context.print(`results: ${resultsPath}${kept}`);
  }
}

type Followed = Awaited<ReturnType<typeof watchBatch>>;

/** --wait: follows the batch until every job is final (an interrupted send has nothing complete to follow). */
async function followBatch(run: BulkRun, end: BulkEnd): Promise<Followed | undefined> {
  const { context, plan } = run;
  const { ledger, batchId } = plan;
  if (!plan.wait || !ledger || run.interrupted || end.noJobs) return undefined;
  if (!end.batchRecorded) {
    throw new CliError(
      `cannot follow batch ${batchId}: the ledger could not record its total (see the warnings above); the jobs that were sent stay sent`,
    );
  }
  if (!context.json)
    context.print(`following batch ${batchId} until every job is final (Ctrl-C stops following; the jobs go on)`);
  const { intervalMs, stallTimeoutMs } = plan;
  const followed = await watchBatch(context, ledger, batchId, { intervalMs, stallTimeoutMs });
  if (!context.json) {
    for (const line of formatStatus(followed.status)) context.print(line);
    context.print(watchVerdict(batchId, followed.status, followed.end, stallTimeoutMs));
  }
  return followed;
}

function reportJson(run: BulkRun, end: BulkEnd, followed: Followed | undefined): void {
  const { context, counts, plan } = run;
  const table = context.ledgerTarget?.tableName;
  context.printJson({
    batch_id: plan.batchId,
    file: plan.file,
    format: plan.format,
    dry_run: plan.dryRun,
    queue_url: plan.queueUrl,
    ...counts,
    interrupted: run.interrupted,
    elapsed_ms: Math.round(end.elapsedMs),
    rate_per_second: run.rate(end.elapsedMs), // the send's rate: --wait's following is not in it
    results_file: counts.read > 0 ? run.results.path : null,
    ...(plan.ledger
      ? { ledger: { table, jobs: end.inBatch, not_recorded: run.ledgerFailed, batch_recorded: end.batchRecorded } }
      : {}),
    ...(followed ? { wait: { end: followed.end, ...statusJson(followed.status, table) } } : {}),
  });
}

function exitCode(run: BulkRun, end: BulkEnd, followed: Followed | undefined): number {
  const { counts } = run;
  if (run.interrupted || followed?.end === "interrupted") return EXIT.interrupted;
  if (end.noJobs || counts.invalid > 0 || counts.failed > 0) return EXIT.failed;
  if (followed && (followed.end !== "done" || followed.status.counts.dead_lettered > 0)) return EXIT.failed;
  return EXIT.ok;
}
/** A first pass over the file before asking: how many jobs it holds (valid, first of their id). */
async function checkFile(
  file: string,
  options: BulkReadOptions,
): Promise<{ valid: number; invalid: number; duplicates: number }> {
  const counts = { valid: 0, invalid: 0, duplicates: 0 };
  const seen = new CertificateIdSet();
  try {
    for await (const entry of readBulkFile(file, options)) {
      if ("error" in entry) counts.invalid++;
      else if (seen.firstSeen(entry.certificateId, entry.line) !== undefined) counts.duplicates++;
      else counts.valid++;
    }
  } catch (error) {
    if (error instanceof BulkFileError) throw new UsageError(`${file}: ${error.message}`, "bulk");
    throw error;
  }
  return counts;
}

function bulkFormat(file: string, given: string | undefined): BulkFormat {
  if (given !== undefined) {
    if (!(BULK_FORMATS as readonly string[]).includes(given))
      throw new UsageError(`--format must be one of ${BULK_FORMATS.join(", ")} (got ${JSON.stringify(given)})`, "bulk");
    return given as BulkFormat;
  }
  const format = formatFromPath(file);
  if (!format)
    throw new UsageError(
      `cannot tell the format of ${file} from its name: use .txt, .csv or .jsonl, or pass --format`,
      "bulk",
    );
  return format;
}

/** `bulk-20261127-101500-ab12`: sortable by time, unique enough to tell two runs of one minute apart. */
export function generateBatchId(now: Date): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  return `bulk-${stamp}-${randomBytes(2).toString("hex")}`;
}
