/**
 * `scm-withdraw bulk <file>`: a whole list of jobs, streamed. Memory stays flat whatever the file's
 * size: one line at a time is read, ids seen so far live in a compact set (about 40 bytes each),
 * sends wait for room (back-pressure), and the results file is written as results come in.
 */
import { BulkFileError, CliError, UsageError } from "../../lib/errors.ts";
import { randomBytes } from "node:crypto";
import { closeSync, createReadStream, unlinkSync } from "node:fs";
import { resolve } from "node:path";
import { BULK_FORMATS, CertificateIdSet, formatFromPath, readBulk, readBulkFile, type BulkFormat, type BulkLine, type BulkReadOptions } from "../../lib/bulk-file.ts";
import type { JobRef, Ledger } from "../../lib/ledger.ts";
import { parseWithdrawalBody } from "../../lib/message.ts";
import { createSender, type Sender, type SendResult } from "../../lib/producer.ts";
import { integerFlag, stringFlag, type ParsedArgs } from "../args.ts";
import { DEFAULT_STALL_TIMEOUT_MS, DEFAULT_WATCH_INTERVAL_MS, durationFlag, formatStatus, statusJson, WATCH_OPTIONS, watchBatch, watchVerdict } from "../batch.ts";
import { openInput, openResults, type InputFile, type ResultsFile } from "../bulk-files.ts";
import { confirm, mustAsk, YES_OPTION } from "../confirm.ts";
import { EXIT, type Command, type CommandContext } from "../context.ts";
import { createProgress, formatBytes, formatDuration, plural, queueName, type Progress } from "../output.ts";

/** Problem lines printed to stderr before the rest is left to the results file. */
const MAX_PROBLEM_LINES = 20;
/**
 * Jobs recorded in the ledger per round before they are sent (a BatchGetItem per 100 to see what is
 * already there, a BatchWriteItem per 25): large enough to keep DynamoDB calls few, small enough that
 * a job is never sent long after it was recorded.
 */
const LEDGER_CHUNK = 500;
/** `<batch_id>:<certificate_id>` must fit in a request_id (at most 128 characters). */
const MAX_LEDGER_BATCH_ID = 128 - 1 - 16;

export const bulkCommand: Command = {
  name: "bulk",
  summary: "send every certificate id in a .txt, .csv or .jsonl file (streamed, de-duplicated)",
  usage: "bulk <file> [--batch-id ID] [--reason TEXT] [--dry-run] [--yes] [--wait] [--results PATH] [--format txt|csv|jsonl] [--concurrency N]",
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
    "again (outcome already_done). At the end the batch's total is recorded, so `batch status` can tell",
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
    "batch-id": { type: "string", valueName: "ID", description: "the batch id stamped on every job (default: bulk-YYYYMMDD-HHMMSS-xxxx, printed at the start)" },
    reason: { type: "string", valueName: "TEXT", description: "reason for jobs whose line has none" },
    "dry-run": { type: "boolean", description: "validate and count only; send nothing" },
    results: { type: "string", valueName: "PATH", description: "where to write the results CSV (default: <file>.results.csv)" },
    format: { type: "string", valueName: "FORMAT", description: "txt, csv or jsonl, when the extension does not say" },
    concurrency: { type: "string", valueName: "N", description: "SendMessageBatch calls in flight (default 8)" },
    wait: { type: "boolean", description: "follow the batch in the ledger until every job is final; exit 1 if any was dead-lettered" },
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

/** What the command line asks for, read and checked before a line of the file is read. */
interface BulkPlan {
  file: string;
  format: BulkFormat;
  dryRun: boolean;
  concurrency: number;
  batchId: string;
  reason: string | undefined;
  readOptions: BulkReadOptions;
  /** --results, or `<file>.results.csv` (a run never overwrites: see openResults). */
  requestedResults: string;
  wait: boolean;
  /** On a terminal, a real run first says what it would send and asks. */
  ask: boolean;
  intervalMs: number;
  stallTimeoutMs: number;
  queueUrl: string;
  ledger: Ledger | undefined;
}

/** Reads the flags, then checks the queue and the ledger: every mistake is reported before anything is sent. */
async function planBulk(context: CommandContext, { values, positionals }: ParsedArgs): Promise<BulkPlan> {
  if (positionals.length !== 1) {
    throw new UsageError(positionals.length === 0 ? "bulk needs a file" : `bulk takes one file (got ${positionals.length})`, "bulk");
  }
  const file = positionals[0]!;
  const dryRun = values["dry-run"] === true;
  const concurrency = integerFlag(values, "concurrency", { min: 1, max: 64 }, "bulk") ?? 8;
  const format = bulkFormat(file, stringFlag(values, "format"));
  const batchId = stringFlag(values, "batch-id") ?? generateBatchId(new Date());
  const reason = stringFlag(values, "reason");
  const requestedAt = new Date().toISOString();
  const stamp = { source: "bulk", batch_id: batchId };
  const withReason = reason !== undefined ? { reason } : {};
  const flags = parseWithdrawalBody(JSON.stringify({ certificate_id: "0000000000000000", ...stamp, ...withReason }));
  if (!flags.ok) throw new UsageError(flags.problem, "bulk");
  const requestedResults = stringFlag(values, "results") ?? `${file}.results.csv`;
  if (resolve(requestedResults) === resolve(file)) throw new UsageError(`--results would overwrite the input file ${file}`, "bulk");
  closeSync(openInput(file).fd); // a missing or unreadable file is a usage error, before anything else
  const wait = values.wait === true;
  if (wait && dryRun) throw new UsageError("--wait follows a batch that was sent: it cannot be used with --dry-run", "bulk");
  const ask = !dryRun && mustAsk(context, values, "bulk sends a withdrawal for every id in the file (--dry-run checks the file)");
  const intervalMs = durationFlag(values, "interval", { minMs: 100, maxMs: 3_600_000 }, "bulk") ?? DEFAULT_WATCH_INTERVAL_MS;
  const stallTimeoutMs = durationFlag(values, "stall-timeout", { minMs: 1000, maxMs: 7 * 86_400_000 }, "bulk") ?? DEFAULT_STALL_TIMEOUT_MS;
  const { queueUrl } = context.target;
  if (!dryRun) await context.checkQueue(queueUrl);
  // Before reading the file: --wait without a ledger fails here, having sent nothing.
  const ledger = dryRun ? undefined : wait ? await context.requireLedger() : await context.ledger();
  if (ledger && batchId.length > MAX_LEDGER_BATCH_ID) {
    throw new UsageError(
      `--batch-id must be at most ${MAX_LEDGER_BATCH_ID} characters with the ledger (each job's request_id is <batch_id>:<certificate_id>)`,
      "bulk",
    );
  }
  const readOptions = { format, set: stamp, defaults: { requested_at: requestedAt, ...withReason } };
  return { file, format, dryRun, concurrency, batchId, reason, readOptions, requestedResults, wait, ask, intervalMs, stallTimeoutMs, queueUrl, ledger };
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

type Counts = { read: number; valid: number; invalid: number; duplicates: number; sent: number; failed: number; already_done?: number };
type SendKey = { line: number; id: string; ref?: JobRef };
type ValidLine = Extract<BulkLine, { body: string }>;

/** One run's state: its counts, the problems shown, the progress bar, the sender and the jobs waiting for the ledger. */
class BulkRun {
  readonly counts: Counts;
  /** Jobs the ledger could not record as queued. */
  ledgerFailed = 0;
  /** Jobs recorded as queued whose send failed: the ledger forgets them at the end. */
  readonly notSent: JobRef[] = [];
  readonly started = performance.now();
  readonly progress: Progress;
  /** The share of the file read so far. */
  readFraction = 0;
  interrupted = false;
  problemsHidden = 0;
  private problemsShown = 0;
  private readonly sender: Sender<SendKey> | undefined;
  /** With the ledger, jobs wait here until their chunk is recorded as queued; then they are sent. */
  private chunk: { line: number; id: string; body: string; ref: JobRef }[] = [];

  constructor(
    readonly context: CommandContext,
    readonly plan: BulkPlan,
    readonly results: ResultsFile,
  ) {
    this.counts = { read: 0, valid: 0, invalid: 0, duplicates: 0, sent: 0, failed: 0, ...(plan.ledger ? { already_done: 0 } : {}) };
    this.progress = createProgress(context.io.stderr, { enabled: !context.json });
    this.sender = plan.dryRun
      ? undefined
      : createSender<SendKey>({ sqs: context.sqs, queueUrl: plan.queueUrl, concurrency: plan.concurrency, onResult: (r) => this.onSent(r) });
  }

  /** A problem line on stderr, up to MAX_PROBLEM_LINES; the results file has them all. */
  problem(line: number, text: string): void {
    if (this.problemsShown >= MAX_PROBLEM_LINES) {
      this.problemsHidden++;
      return;
    }
    this.problemsShown++;
    this.progress.done();
    this.context.note(`${this.plan.file}:${line}: ${text}`);
  }

  rate(): number {
    return Math.round(this.counts.sent / Math.max(0.001, (performance.now() - this.started) / 1000));
  }

  /** Sending lags reading: the bar is the share of the jobs read so far that went out, times the share read. */
  showProgress(): void {
    const { counts } = this;
    const duplicates = plural(counts.duplicates, "duplicate");
    if (this.plan.dryRun) {
      this.progress.update(Math.min(0.99, this.readFraction), `${counts.valid} valid, ${counts.invalid} invalid, ${duplicates}`);
      return;
    }
    const done = counts.sent + counts.failed + (counts.already_done ?? 0);
    const text = `${counts.sent} of ${counts.valid} read sent, ${counts.failed} failed, ${counts.invalid} invalid, ${duplicates}, ${this.rate()}/s`;
    this.progress.update(Math.min(0.99, this.readFraction * (done / Math.max(1, counts.valid))), text);
  }

  /** One record of the file: invalid, a duplicate, or a job to send (in a dry run, only counted). */
  async take(entry: BulkLine, seen: CertificateIdSet): Promise<void> {
    const { counts, results } = this;
    counts.read++;
    if ("error" in entry) {
      counts.invalid++;
      results.row([entry.line, entry.certificateId ?? "", "invalid", "", entry.error]);
      this.problem(entry.line, `${entry.error}; not sent`);
      return;
    }
    const first = seen.firstSeen(entry.certificateId, entry.line);
    if (first !== undefined) {
      counts.duplicates++;
      results.row([entry.line, entry.certificateId, "duplicate", "", `duplicate of line ${first}; skipped`]);
      this.problem(entry.line, `${entry.certificateId} is a duplicate of line ${first}; skipped`);
      return;
    }
    counts.valid++;
    await this.send(entry);
  }

  /** Sends what waits for the ledger, then waits for every send in flight. */
  async flush(): Promise<void> {
    await this.sendChunk();
    await this.sender?.flush();
  }

  private async send(entry: ValidLine): Promise<void> {
    const { plan } = this;
    if (plan.dryRun) this.results.row([entry.line, entry.certificateId, "valid", "", ""]);
    else if (plan.ledger) {
      const job = withRequestId(entry.body, plan.batchId, entry.certificateId);
      this.chunk.push({ line: entry.line, id: entry.certificateId, ...job });
      if (this.chunk.length >= LEDGER_CHUNK) await this.sendChunk();
    } else await this.sender?.push({ key: { line: entry.line, id: entry.certificateId }, body: entry.body });
  }

  /** Records the waiting jobs as queued, then sends those the ledger does not already hold as withdrawn. */
  private async sendChunk(): Promise<void> {
    const { ledger, batchId } = this.plan;
    if (!ledger || !this.sender || this.chunk.length === 0) return;
    const jobs = this.chunk;
    this.chunk = [];
    const queued = await ledger.recordQueued(
      jobs.map((j) => j.ref),
      { batchId, source: "bulk" },
    );
    this.ledgerFailed += queued.failed.length;
    const done = new Set(queued.alreadyDone);
    for (const job of jobs) {
      if (done.has(job.ref.requestId)) {
        this.counts.already_done = (this.counts.already_done ?? 0) + 1;
        const detail = `request ${job.ref.requestId} is already withdrawn according to the ledger; not sent again`;
        this.results.row([job.line, job.id, "already_done", "", detail]);
      } else {
        await this.sender.push({ key: { line: job.line, id: job.id, ref: job.ref }, body: job.body });
      }
    }
  }

  private onSent(result: SendResult<SendKey>): void {
    this.showProgress();
    const { line, id, ref } = result.key;
    if (result.ok) {
      this.counts.sent++;
      this.results.row([line, id, "sent", result.messageId, ""]);
    } else {
      this.counts.failed++;
      if (ref) this.notSent.push(ref);
      this.results.row([line, id, "failed", "", result.error]);
      this.problem(line, `${id} not sent: ${result.error}`);
    }
  }
}

/** Reads the file one record at a time and sends as it reads; Ctrl-C stops reading, and what was read still goes. */
async function readAndSend(run: BulkRun, inputFile: InputFile): Promise<void> {
  const { context, plan, counts, results } = run;
  // Sized for the file up front (a .txt id line is 17 bytes): growing a million-id set holds the old
  // table and the new one at once, 20 MB more peak memory. Capped, so an odd huge file costs no more.
  const seen = new CertificateIdSet(Math.min(1 << 20, Math.ceil(inputFile.size / 17)));
  const input = createReadStream(plan.file, { fd: inputFile.fd });
  try {
    for await (const entry of readBulk(input, plan.readOptions)) {
      await run.take(entry, seen);
      // Every 256 records: the bar redraws at most every 100 ms anyway, and a million texts cost time.
      if ((counts.read & 255) === 0) {
        run.readFraction = input.bytesRead / Math.max(1, inputFile.size);
        run.showProgress();
      }
      if (context.signal?.aborted) {
        run.interrupted = true;
        break;
      }
    }
  } catch (error) {
    if (error instanceof BulkFileError) {
      results.close();
      unlinkSync(results.path);
      throw new UsageError(`${plan.file}: ${error.message}`, "bulk");
    }
    await run.flush();
    results.close();
    throw error;
  } finally {
    input.destroy();
  }
  run.readFraction = 1;
  await run.flush();
  results.close();
  run.progress.done();
}

/** How sending ended, as the reports and the exit code need it. */
interface BulkEnd {
  /** No valid line in a file read to its end: exit 1, and no batch. */
  noJobs: boolean;
  batchRecorded: boolean;
  /** The batch's size: the jobs that went out, and those the ledger already had as done. */
  inBatch: number;
  elapsedMs: number;
}

/** The ledger forgets the jobs that were not sent and learns the batch's size. */
async function closeBatch(run: BulkRun): Promise<BulkEnd> {
  const { counts, plan } = run;
  // An empty file, or one without a single valid line, is a mistake: exit 1 and create no batch.
  const noJobs = counts.valid === 0 && !run.interrupted;
  if (noJobs && counts.read === 0) unlinkSync(run.results.path);
  const inBatch = counts.sent + (counts.already_done ?? 0);
  let batchRecorded = false;
  if (plan.ledger && !noJobs) {
    if (run.notSent.length > 0) await plan.ledger.recordNotSent(run.notSent);
    batchRecorded = (await plan.ledger.recordBatch(plan.batchId, { expectedTotal: inBatch, source: "bulk" })) === "written";
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
  context.print(`read ${plural(counts.read, "record")}: ${counts.valid} valid, ${counts.invalid} invalid (not sent), ${duplicates} (skipped)`);
  if (end.noJobs) context.print(`no valid job in ${file}: nothing was sent${ledger ? " and no batch was created" : ""}`);
  else if (plan.dryRun) context.print(`dry run: ${counts.valid} would be sent, nothing was sent`);
  else {
    const skipped = counts.already_done ? `, ${counts.already_done} already withdrawn (not sent again)` : "";
    context.print(`sent ${counts.sent}, failed ${counts.failed}${skipped} in ${formatDuration(end.elapsedMs)} (${run.rate()} messages/s)`);
  }
  if (run.interrupted) context.print("interrupted: the rest of the file was not read");
  if (ledger && !end.noJobs) {
    const missing = `${plural(run.ledgerFailed, "job")}${end.batchRecorded ? "" : " and the batch's total"}`;
    const trouble = run.ledgerFailed > 0 || !end.batchRecorded ? ` (${missing} could not be recorded)` : "";
    const follow = plan.wait || !end.batchRecorded ? "" : `; follow with \`scm-withdraw batch status ${batchId} --watch\``;
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
    throw new CliError(`cannot follow batch ${batchId}: the ledger could not record its total (see the warnings above); the jobs that were sent stay sent`);
  }
  if (!context.json) context.print(`following batch ${batchId} until every job is final (Ctrl-C stops following; the jobs go on)`);
  const followed = await watchBatch(context, ledger, batchId, { intervalMs: plan.intervalMs, stallTimeoutMs: plan.stallTimeoutMs });
  if (!context.json) {
    for (const line of formatStatus(followed.status)) context.print(line);
    context.print(watchVerdict(batchId, followed.status, followed.end, plan.stallTimeoutMs));
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
    rate_per_second: run.rate(),
    results_file: counts.read > 0 ? run.results.path : null,
    ...(plan.ledger ? { ledger: { table, jobs: end.inBatch, not_recorded: run.ledgerFailed, batch_recorded: end.batchRecorded } } : {}),
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
async function checkFile(file: string, options: BulkReadOptions): Promise<{ valid: number; invalid: number; duplicates: number }> {
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
    if (!(BULK_FORMATS as readonly string[]).includes(given)) throw new UsageError(`--format must be one of ${BULK_FORMATS.join(", ")} (got ${JSON.stringify(given)})`, "bulk");
    return given as BulkFormat;
  }
  const format = formatFromPath(file);
  if (!format) throw new UsageError(`cannot tell the format of ${file} from its name: use .txt, .csv or .jsonl, or pass --format`, "bulk");
  return format;
}

/** `bulk-20261127-101500-ab12`: sortable by time, unique enough to tell two runs of one minute apart. */
export function generateBatchId(now: Date): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  return `bulk-${stamp}-${randomBytes(2).toString("hex")}`;
}

/** The job's body with a request_id (the ledger's key; `<batch_id>:<certificate_id>` unless the line gave one) and its ledger reference. */
function withRequestId(body: string, batchId: string, certificateId: string): { body: string; ref: JobRef } {
  const request = JSON.parse(body) as { request_id?: string; source?: string };
  const requestId = request.request_id ?? `${batchId}:${certificateId}`;
  return {
    body: request.request_id === undefined ? JSON.stringify({ ...request, request_id: requestId }) : body,
    ref: { requestId, batchId, certificateId, source: request.source ?? "bulk" },
  };
}
