/**
 * `scm-withdraw bulk <file>`: a whole list of jobs, streamed. Memory stays flat whatever the file's
 * size: one line at a time is read, ids seen so far live in a compact set (about 40 bytes each),
 * sends wait for room (back-pressure), and the results file is written as results come in.
 */
import { BulkFileError, CliError, UsageError } from "../../lib/errors.ts";
import { randomBytes } from "node:crypto";
import { closeSync, createReadStream, fstatSync, openSync, statSync, unlinkSync, writeSync, type Stats } from "node:fs";
import { resolve } from "node:path";
import { BULK_FORMATS, CertificateIdSet, formatFromPath, readBulk, readBulkFile, type BulkFormat, type BulkReadOptions } from "../../lib/bulk-file.ts";
import type { JobRef } from "../../lib/ledger.ts";
import { parseWithdrawalBody } from "../../lib/message.ts";
import { createSender } from "../../lib/producer.ts";
import { integerFlag, stringFlag } from "../args.ts";
import { DEFAULT_STALL_TIMEOUT_MS, DEFAULT_WATCH_INTERVAL_MS, durationFlag, formatStatus, statusJson, WATCH_OPTIONS, watchBatch, watchVerdict } from "../batch.ts";
import { confirm, mustAsk, YES_OPTION } from "../confirm.ts";
import { EXIT, type Command } from "../context.ts";
import { HEADS } from "./index.ts";
import { resumeCommand, resumeDecisions } from "../resume.ts";
import { createProgress, csvField, formatBytes, formatDuration, plural, queueName } from "../output.ts";

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
    "batch-id": { type: "string", valueName: "ID", description: "the batch id stamped on every job (default: bulk-YYYYMMDD-HHMMSS-xxxx, printed at the start)" },
    reason: { type: "string", valueName: "TEXT", description: "reason for jobs whose line has none" },
    "dry-run": { type: "boolean", description: "validate and count only; send nothing" },
    results: { type: "string", valueName: "PATH", description: "where to write the results CSV (default: <file>.results.csv)" },
    format: { type: "string", valueName: "FORMAT", description: "txt, csv or jsonl, when the extension does not say" },
    concurrency: { type: "string", valueName: "N", description: "SendMessageBatch calls in flight (default 8)" },
    wait: { type: "boolean", description: "follow the batch in the ledger until every job is final; exit 1 if any was dead-lettered" },
    "resend-queued": { type: "boolean", description: "with the ledger, also send jobs it holds as queued (after a run was killed outright)" },
    ...WATCH_OPTIONS,
    ...YES_OPTION,
  },
  async run(context, { values, positionals }) {
    if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? "bulk needs a file" : `bulk takes one file (got ${positionals.length})`, "bulk");
    const file = positionals[0]!;
    const dryRun = values["dry-run"] === true;
    const concurrency = integerFlag(values, "concurrency", { min: 1, max: 64 }, "bulk") ?? 8;
    const format = bulkFormat(file, stringFlag(values, "format"));
    const batchId = stringFlag(values, "batch-id") ?? generateBatchId(new Date());
    const reason = stringFlag(values, "reason");
    const requestedAt = new Date().toISOString();
    const stamp: Record<string, string> = { source: "bulk", batch_id: batchId };
    const flags = parseWithdrawalBody(JSON.stringify({ certificate_id: "0000000000000000", ...stamp, ...(reason !== undefined ? { reason } : {}) }));
    if (!flags.ok) throw new UsageError(flags.problem, "bulk");
    const requestedResults = stringFlag(values, "results") ?? `${file}.results.csv`;
    if (resolve(requestedResults) === resolve(file)) throw new UsageError(`--results would overwrite the input file ${file}`, "bulk");
    closeSync(openInput(file).fd); // a missing or unreadable file is a usage error, before anything else
    const wait = values.wait === true;
    if (wait && dryRun) throw new UsageError("--wait follows a batch that was sent: it cannot be used with --dry-run", "bulk");
    const ask = !dryRun && mustAsk(context, values, "bulk sends a withdrawal for every id in the file (--dry-run checks the file)");
    // The audit trail: every job says why; a .txt line cannot, so --reason is required for it.
    const reasonRequired = !dryRun && reason === undefined;
    if (reasonRequired && format === "txt") throw new UsageError("bulk needs --reason TEXT: why these certificates are withdrawn (kept in every job for the audit trail)", "bulk");
    const intervalMs = durationFlag(values, "interval", { minMs: 100, maxMs: 3_600_000 }, "bulk") ?? DEFAULT_WATCH_INTERVAL_MS;
    const stallTimeoutMs = durationFlag(values, "stall-timeout", { minMs: 1000, maxMs: 7 * 86_400_000 }, "bulk") ?? DEFAULT_STALL_TIMEOUT_MS;
    const { queueUrl } = context.target;
    if (!dryRun) await context.checkQueue(queueUrl);
    // Before reading the file: --wait without a ledger fails here, having sent nothing.
    const ledger = dryRun ? undefined : wait ? await context.requireLedger() : await context.ledger();
    // The audit trail: who sends (set on every line: a line cannot speak for someone else) and why.
    if (!dryRun) stamp.requested_by = await context.requestedBy();
    if (ledger && batchId.length > MAX_LEDGER_BATCH_ID) {
      throw new UsageError(`--batch-id must be at most ${MAX_LEDGER_BATCH_ID} characters with the ledger (each job's request_id is <batch_id>:<certificate_id>)`, "bulk");
    }

    const readOptions = { format, set: stamp, defaults: { requested_at: requestedAt, ...(reason !== undefined ? { reason } : {}) } };
    if (ask) {
      const checked = await checkFile(file, readOptions);
      const summary = `${file}: ${plural(checked.valid, "job")} to send, ${checked.invalid} invalid (not sent), ${plural(checked.duplicates, "duplicate")} (skipped)`;
      const why = reason === undefined ? "no --reason" : `reason ${JSON.stringify(reason)}`;
      const question = `send ${plural(checked.valid, "withdrawal")} as batch ${batchId} (${why}) to ${queueName(queueUrl)}?`;
      if (checked.valid > 0 && !(await confirm(context, [summary], question))) {
        context.note("not confirmed: nothing was sent");
        return context.signal?.aborted ? EXIT.interrupted : EXIT.failed;
      }
    }
    // The input is opened (and held) before the results file is even looked at: see openResults.
    const inputFile = openInput(file);
    const size = inputFile.size;
    let results: ReturnType<typeof openResults>;
    try {
      results = openResults(requestedResults, inputFile, file);
    } catch (error) {
      closeSync(inputFile.fd);
      throw error;
    }
    const resultsPath = results.path;
    results.row(["line", "certificate_id", "outcome", "message_id", "detail"]);

    const counts = { read: 0, valid: 0, invalid: 0, duplicates: 0, sent: 0, failed: 0, ...(ledger ? { already_done: 0, already_queued: 0 } : {}) };
    const ledgerCounts = { failed: 0 };
    /** Jobs recorded as queued whose send failed: the ledger forgets them at the end. */
    const notSent: JobRef[] = [];
    const started = performance.now();
    const stderr = context.io.stderr;
    const progress = createProgress(stderr, { enabled: !context.json });
    let problemsShown = 0;
    let problemsHidden = 0;
    const problem = (line: number, text: string) => {
      if (problemsShown >= MAX_PROBLEM_LINES) {
        problemsHidden++;
        return;
      }
      problemsShown++;
      progress.done();
      context.note(`${file}:${line}: ${text}`);
    };
    const rate = () => Math.round(counts.sent / Math.max(0.001, (performance.now() - started) / 1000));
    let readFraction = 0;
    // Sending lags reading: the bar is the share of the jobs read so far that went out, times the share read.
    const showProgress = () => {
      if (dryRun) {
        progress.update(Math.min(0.99, readFraction), `${counts.valid} valid, ${counts.invalid} invalid, ${plural(counts.duplicates, "duplicate")}`);
        return;
      }
      const done = counts.sent + counts.failed + (counts.already_done ?? 0);
      const text = `${counts.sent} of ${counts.valid} read sent, ${counts.failed} failed, ${counts.invalid} invalid, ${plural(counts.duplicates, "duplicate")}, ${rate()}/s`;
      progress.update(Math.min(0.99, readFraction * (done / Math.max(1, counts.valid))), text);
    };

    if (!context.json) {
      context.print(`batch ${batchId}: ${file} (${format}, ${formatBytes(size)}) -> ${dryRun ? "dry run, nothing will be sent" : queueName(queueUrl)}`);
    }

    const sender = dryRun
      ? undefined
      : createSender<{ line: number; id: string; ref?: JobRef }>({
          sqs: context.sqs,
          queueUrl,
          concurrency,
          onResult: (result) => {
            showProgress();
            if (result.ok) {
              counts.sent++;
              results.row([result.key.line, result.key.id, "sent", result.messageId, ""]);
            } else {
              counts.failed++;
              if (result.key.ref) notSent.push(result.key.ref);
              results.row([result.key.line, result.key.id, "failed", "", result.error]);
              problem(result.key.line, `${result.key.id} not sent: ${result.error}`);
            }
          },
        });

    // With the ledger, jobs wait here until their chunk is recorded as queued; then they are sent.
    let chunk: { line: number; id: string; body: string; ref: JobRef }[] = [];
    const sendChunk = async () => {
      if (!ledger || !sender || chunk.length === 0) return;
      const jobs = chunk;
      chunk = [];
      const queued = await ledger.recordQueued(
        jobs.map((j) => j.ref),
        { batchId, source: "bulk" },
      );
      ledgerCounts.failed += queued.failed.length;
      const decide = resumeDecisions(queued, { resendQueued: values["resend-queued"] === true });
      for (const job of jobs) {
        const decision = decide(job.ref);
        if (decision === "already_done") {
          counts.already_done = (counts.already_done ?? 0) + 1;
          results.row([job.line, job.id, "already_done", "", `request ${job.ref.requestId} is already withdrawn according to the ledger; not sent again`]);
        } else if (decision === "already_queued") {
          counts.already_queued = (counts.already_queued ?? 0) + 1;
          results.row([job.line, job.id, "already_queued", "", `request ${job.ref.requestId} was sent by an earlier run and is still queued; not sent again`]);
        } else {
          await sender.push({ key: { line: job.line, id: job.id, ref: job.ref }, body: job.body });
        }
      }
    };

    // Sized for the file up front (a .txt id line is 17 bytes): growing a million-id set holds the old
    // table and the new one at once, 20 MB more peak memory. Capped, so an odd huge file costs no more.
    const seen = new CertificateIdSet(Math.min(1 << 20, Math.ceil(size / 17)));
    const input = createReadStream(file, { fd: inputFile.fd });
    let interrupted = false;
    try {
      for await (const entry of readBulk(input, readOptions)) {
        counts.read++;
        if ("error" in entry) {
          counts.invalid++;
          results.row([entry.line, entry.certificateId ?? "", "invalid", "", entry.error]);
          problem(entry.line, `${entry.error}; not sent`);
        } else if (reasonRequired && !hasReason(entry.body)) {
          counts.invalid++;
          results.row([entry.line, entry.certificateId, "invalid", "", NO_REASON]);
          problem(entry.line, `${NO_REASON}; not sent`);
        } else {
          const first = seen.firstSeen(entry.certificateId, entry.line);
          if (first !== undefined) {
            counts.duplicates++;
            results.row([entry.line, entry.certificateId, "duplicate", "", `duplicate of line ${first}; skipped`]);
            problem(entry.line, `${entry.certificateId} is a duplicate of line ${first}; skipped`);
          } else {
            counts.valid++;
            if (dryRun) results.row([entry.line, entry.certificateId, "valid", "", ""]);
            else if (ledger) {
              const job = withRequestId(entry.body, batchId, entry.certificateId);
              chunk.push({ line: entry.line, id: entry.certificateId, ...job });
              if (chunk.length >= LEDGER_CHUNK) await sendChunk();
            } else await sender?.push({ key: { line: entry.line, id: entry.certificateId }, body: entry.body });
          }
        }
        // Every 256 records: the bar redraws at most every 100 ms anyway, and a million texts cost time.
        if ((counts.read & 255) === 0) {
          readFraction = input.bytesRead / Math.max(1, size);
          showProgress();
        }
        if (context.signal?.aborted) {
          interrupted = true;
          break;
        }
      }
    } catch (error) {
      if (error instanceof BulkFileError) {
        results.close();
        unlinkSync(resultsPath);
        throw new UsageError(`${file}: ${error.message}`, "bulk");
      }
      await sendChunk();
      await sender?.flush();
      results.close();
      throw error;
    } finally {
      input.destroy();
    }
    readFraction = 1;
    await sendChunk();
    await sender?.flush();
    results.close();
    progress.done();
    // An empty file, or one without a single valid line, is a mistake: exit 1 and create no batch.
    const noJobs = counts.valid === 0 && !interrupted;
    if (noJobs && counts.read === 0) unlinkSync(resultsPath);
    let batchRecorded = false;
    if (ledger && !noJobs) {
      if (notSent.length > 0) await ledger.recordNotSent(notSent);
      // The batch's size: the jobs that went out, and those the ledger already had as done.
      // The batch's size: the jobs that went out, and those the ledger already had. Not after Ctrl-C:
      // the rest of the file is not in it yet, and the batch must not look done before it is resumed.
      const total = counts.sent + (counts.already_done ?? 0) + (counts.already_queued ?? 0);
      if (!interrupted) batchRecorded = (await ledger.recordBatch(batchId, { expectedTotal: total, source: "bulk" })) === "written";
    }

    const elapsedMs = performance.now() - started;
    if (problemsHidden > 0) context.note(`... and ${problemsHidden} more problems: see ${resultsPath}`);
    const inBatch = counts.sent + (counts.already_done ?? 0) + (counts.already_queued ?? 0);
    if (!context.json) {
      context.print(`read ${plural(counts.read, "record")}: ${counts.valid} valid, ${counts.invalid} invalid (not sent), ${plural(counts.duplicates, "duplicate")} (skipped)`);
      if (noJobs) context.print(`no valid job in ${file}: nothing was sent${ledger ? " and no batch was created" : ""}`);
      else if (dryRun) context.print(`dry run: ${counts.valid} would be sent, nothing was sent`);
      else {
        const skipped = `${counts.already_done ? `, ${counts.already_done} already withdrawn` : ""}${counts.already_queued ? `, ${counts.already_queued} already queued` : ""}`;
        context.print(`sent ${counts.sent}, failed ${counts.failed}${skipped ? `${skipped} (not sent again)` : ""} in ${formatDuration(elapsedMs)} (${rate()} messages/s)`);
      }
      if (interrupted) context.print("interrupted: the rest of the file was not read");
      if (interrupted && ledger) context.print(`resume with: ${resumeCommand(file, batchId, reason)} (jobs already queued or withdrawn are not sent again)`);
      if (interrupted && !ledger) context.print(`without the ledger a re-run sends every line again (${resultsPath} lists what was sent)`);
      if (ledger && !noJobs) {
        const totalMissing = !batchRecorded && !interrupted;
        const trouble = ledgerCounts.failed > 0 || totalMissing ? ` (${plural(ledgerCounts.failed, "job")}${totalMissing ? " and the batch's total" : ""} could not be recorded)` : "";
        context.print(`ledger: ${plural(inBatch, "job")} in batch ${batchId}${trouble}${wait || !batchRecorded ? "" : `; follow with \`scm-withdraw batch status ${batchId} --watch\``}`);
      }
      if (counts.read > 0) context.print(`results: ${resultsPath}${resultsPath === requestedResults ? "" : ` (${requestedResults} exists: not overwritten)`}`);
    }

    // --wait: follow the batch until every job is final (an interrupted send has nothing complete to follow).
    let followed: Awaited<ReturnType<typeof watchBatch>> | undefined;
    if (wait && ledger && !interrupted && !noJobs) {
      if (!batchRecorded) throw new CliError(`cannot follow batch ${batchId}: the ledger could not record its total (see the warnings above); the jobs that were sent stay sent`);
      if (!context.json) context.print(`following batch ${batchId} until every job is final (Ctrl-C stops following; the jobs go on)`);
      followed = await watchBatch(context, ledger, batchId, { intervalMs, stallTimeoutMs });
      if (!context.json) {
        for (const line of formatStatus(followed.status)) context.print(line);
        context.print(watchVerdict(batchId, followed.status, followed.end, stallTimeoutMs));
      }
    }

    if (context.json) {
      context.printJson({
        batch_id: batchId,
        file,
        format,
        dry_run: dryRun,
        queue_url: queueUrl,
        ...counts,
        interrupted,
        elapsed_ms: Math.round(elapsedMs),
        rate_per_second: rate(),
        results_file: counts.read > 0 ? resultsPath : null,
        ...(ledger ? { ledger: { table: context.ledgerTarget?.tableName, jobs: inBatch, not_recorded: ledgerCounts.failed, batch_recorded: batchRecorded } } : {}),
        ...(followed ? { wait: { end: followed.end, ...statusJson(followed.status, context.ledgerTarget?.tableName) } } : {}),
      });
    }
    if (interrupted || followed?.end === "interrupted") return EXIT.interrupted;
    if (noJobs || counts.invalid > 0 || counts.failed > 0) return EXIT.failed;
    if (followed && (followed.end !== "done" || followed.status.counts.dead_lettered > 0)) return EXIT.failed;
    return EXIT.ok;
  },
};

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

/** Opens the input file; its size and identity (device + inode) come from the open descriptor, not the name. */
function openInput(file: string): { fd: number; size: number; dev: number; ino: number } {
  let fd: number | undefined;
  try {
    fd = openSync(file, "r");
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new UsageError(`${file} is not a file`, "bulk");
    return { fd, size: stat.size, dev: stat.dev, ino: stat.ino };
  } catch (error) {
    if (fd !== undefined) closeSync(fd);
    if (error instanceof UsageError) throw error;
    const code = (error as { code?: string }).code;
    const why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : code === "EISDIR" ? "it is a directory" : String(code ?? error);
    throw new UsageError(`cannot read ${file}: ${why}`, "bulk");
  }
}

const NO_REASON = "no reason: pass --reason TEXT or give the line a reason";

/** The line's own reason (a csv column or a jsonl field), for runs without --reason. */
function hasReason(body: string): boolean {
  const { reason } = JSON.parse(body) as { reason?: unknown };
  return typeof reason === "string" && reason.trim() !== "";
}

/** `bulk-20261127-101500-ab12`: sortable by time, unique enough to tell two runs of one minute apart. */
export function generateBatchId(now: Date): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  return `bulk-${stamp}-${randomBytes(2).toString("hex")}`;
}

/**
 * The results CSV, written through a 64 KiB buffer so a million rows cost neither memory nor a million syscalls.
 * A path that is the input file under another name (a hard link, a symbolic link) is refused: opening it for
 * writing would truncate the input before a line of it was read.
 */
function openResults(path: string, input: { dev: number; ino: number }, inputName: string): { path: string; row(fields: (string | number)[]): void; close(): void } {
  const existing = statIfAny(path);
  if (existing && existing.dev === input.dev && existing.ino === input.ino) {
    throw new UsageError(`--results ${path} is the input file ${inputName} (through a link); choose another path`, "bulk");
  }
  let fd: number | undefined;
  let chosen = path;
  // A re-run never overwrites an earlier run's results: the first free name of path, path-2, path-3...
  for (let n = 2; fd === undefined; n++) {
    try {
      fd = openSync(chosen, "wx");
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code !== "EEXIST" || n > 1000) throw new UsageError(`cannot write the results file ${chosen}: ${code ?? String(error)}`, "bulk");
      chosen = numbered(path, n);
    }
  }
  let buffer = "";
  let closed = false;
  const flush = () => {
    if (buffer !== "") writeSync(fd, buffer);
    buffer = "";
  };
  return {
    path: chosen,
    row(fields) {
      buffer += `${fields.map(csvField).join(",")}\n`;
      if (buffer.length >= 65_536) flush();
    },
    close() {
      if (closed) return;
      closed = true;
      flush();
      closeSync(fd);
    },
  };
}

/** `ids.txt.results.csv` -> `ids.txt.results-2.csv`. */
function numbered(path: string, n: number): string {
  const dot = path.lastIndexOf(".");
  return dot > path.lastIndexOf("/") + 1 ? `${path.slice(0, dot)}-${n}${path.slice(dot)}` : `${path}-${n}`;
}

function statIfAny(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/** The job's body with a request_id (the ledger's key; `<batch_id>:<certificate_id>` unless the line gave one) and its ledger reference. */
function withRequestId(body: string, batchId: string, certificateId: string): { body: string; ref: JobRef } {
  const request = JSON.parse(body) as { request_id?: string; source?: string; requested_by?: string; reason?: string; requested_at?: string };
  const requestId = request.request_id ?? `${batchId}:${certificateId}`;
  return {
    body: request.request_id === undefined ? JSON.stringify({ ...request, request_id: requestId }) : body,
    ref: {
      requestId,
      batchId,
      certificateId,
      source: request.source ?? "bulk",
      requestedBy: request.requested_by,
      requestReason: request.reason,
      requestedAt: request.requested_at,
    },
  };
}
