/**
 * `scm-withdraw bulk <file>`: a whole list of jobs, streamed. Memory stays flat whatever the file's
 * size: one line at a time is read, ids seen so far live in a compact set (about 40 bytes each),
 * sends wait for room (back-pressure), and the results file is written as results come in.
 */
import { randomBytes } from "node:crypto";
import { closeSync, createReadStream, openSync, statSync, unlinkSync, writeSync } from "node:fs";
import { resolve } from "node:path";
import { BULK_FORMATS, BulkFileError, CertificateIdSet, formatFromPath, readBulk, type BulkFormat } from "../../bulk-file.ts";
import { parseWithdrawalBody } from "../../message.ts";
import { createSender } from "../../producer.ts";
import { integerFlag, stringFlag, UsageError } from "../args.ts";
import { EXIT, type Command } from "../context.ts";
import { createProgress, csvField, formatBytes, formatDuration, plural, queueName } from "../output.ts";

/** Problem lines printed to stderr before the rest is left to the results file. */
const MAX_PROBLEM_LINES = 20;

export const bulkCommand: Command = {
  name: "bulk",
  summary: "send every certificate id in a .txt, .csv or .jsonl file (streamed, de-duplicated)",
  usage: "bulk <file> [--batch-id ID] [--reason TEXT] [--dry-run] [--results PATH] [--format txt|csv|jsonl] [--concurrency N]",
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
    "Exit 0 when every record was valid and sent; 1 when any line was invalid or any send failed.",
  ].join("\n"),
  options: {
    "batch-id": { type: "string", valueName: "ID", description: "the batch id stamped on every job (default: bulk-YYYYMMDD-HHMMSS-xxxx, printed at the start)" },
    reason: { type: "string", valueName: "TEXT", description: "reason for jobs whose line has none" },
    "dry-run": { type: "boolean", description: "validate and count only; send nothing" },
    results: { type: "string", valueName: "PATH", description: "where to write the results CSV (default: <file>.results.csv)" },
    format: { type: "string", valueName: "FORMAT", description: "txt, csv or jsonl, when the extension does not say" },
    concurrency: { type: "string", valueName: "N", description: "SendMessageBatch calls in flight (default 8)" },
  },
  async run(context, { values, positionals }) {
    if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? "bulk needs a file" : `bulk takes one file (got ${positionals.length})`, "bulk");
    const file = positionals[0]!;
    const dryRun = values["dry-run"] === true;
    const concurrency = integerFlag(values, "concurrency", { min: 1, max: 64 }, "bulk") ?? 8;
    const format = bulkFormat(file, stringFlag(values, "format"));
    const size = fileSize(file);
    const batchId = stringFlag(values, "batch-id") ?? generateBatchId(new Date());
    const reason = stringFlag(values, "reason");
    const requestedAt = new Date().toISOString();
    const stamp = { source: "bulk", batch_id: batchId };
    const flags = parseWithdrawalBody(JSON.stringify({ certificate_id: "0000000000000000", ...stamp, ...(reason !== undefined ? { reason } : {}) }));
    if (!flags.ok) throw new UsageError(flags.problem, "bulk");
    const resultsPath = stringFlag(values, "results") ?? `${file}.results.csv`;
    if (resolve(resultsPath) === resolve(file)) throw new UsageError(`--results would overwrite the input file ${file}`, "bulk");
    const { queueUrl } = context.target;
    if (!dryRun) await context.checkQueue(queueUrl);

    const results = openResults(resultsPath);
    results.row(["line", "certificate_id", "outcome", "message_id", "detail"]);

    const counts = { read: 0, valid: 0, invalid: 0, duplicates: 0, sent: 0, failed: 0 };
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

    if (!context.json) {
      context.print(`batch ${batchId}: ${file} (${format}, ${formatBytes(size)}) -> ${dryRun ? "dry run, nothing will be sent" : queueName(queueUrl)}`);
    }

    const sender = dryRun
      ? undefined
      : createSender<{ line: number; id: string }>({
          sqs: context.sqs,
          queueUrl,
          concurrency,
          onResult: (result) => {
            if (result.ok) {
              counts.sent++;
              results.row([result.key.line, result.key.id, "sent", result.messageId, ""]);
            } else {
              counts.failed++;
              results.row([result.key.line, result.key.id, "failed", "", result.error]);
              problem(result.key.line, `${result.key.id} not sent: ${result.error}`);
            }
          },
        });

    const seen = new CertificateIdSet();
    const input = createReadStream(file);
    let interrupted = false;
    try {
      for await (const entry of readBulk(input, { format, set: stamp, defaults: { requested_at: requestedAt, ...(reason !== undefined ? { reason } : {}) } })) {
        counts.read++;
        if ("error" in entry) {
          counts.invalid++;
          results.row([entry.line, entry.certificateId ?? "", "invalid", "", entry.error]);
          problem(entry.line, `${entry.error}; not sent`);
        } else {
          const first = seen.firstSeen(entry.certificateId, entry.line);
          if (first !== undefined) {
            counts.duplicates++;
            results.row([entry.line, entry.certificateId, "duplicate", "", `duplicate of line ${first}; skipped`]);
            problem(entry.line, `${entry.certificateId} is a duplicate of line ${first}; skipped`);
          } else {
            counts.valid++;
            if (dryRun) results.row([entry.line, entry.certificateId, "valid", "", ""]);
            else await sender?.push({ key: { line: entry.line, id: entry.certificateId }, body: entry.body });
          }
        }
        progress.update(
          Math.min(0.99, input.bytesRead / Math.max(1, size)),
          dryRun
            ? `${counts.valid} valid, ${counts.invalid} invalid, ${plural(counts.duplicates, "duplicate")}`
            : `${counts.sent} sent, ${counts.failed} failed, ${counts.invalid} invalid, ${plural(counts.duplicates, "duplicate")}, ${rate()}/s`,
        );
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
      await sender?.flush();
      results.close();
      throw error;
    } finally {
      input.destroy();
    }
    await sender?.flush();
    results.close();
    progress.done();

    const elapsedMs = performance.now() - started;
    if (problemsHidden > 0) context.note(`... and ${problemsHidden} more problems: see ${resultsPath}`);
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
        results_file: resultsPath,
      });
    } else {
      context.print(`read ${plural(counts.read, "record")}: ${counts.valid} valid, ${counts.invalid} invalid (not sent), ${plural(counts.duplicates, "duplicate")} (skipped)`);
      if (dryRun) context.print(`dry run: ${counts.valid} would be sent, nothing was sent`);
      else context.print(`sent ${counts.sent}, failed ${counts.failed} in ${formatDuration(elapsedMs)} (${rate()} messages/s)`);
      if (interrupted) context.print("interrupted: the rest of the file was not read");
      context.print(`results: ${resultsPath}`);
    }
    if (interrupted) return EXIT.interrupted;
    return counts.invalid > 0 || counts.failed > 0 ? EXIT.failed : EXIT.ok;
  },
};

function bulkFormat(file: string, given: string | undefined): BulkFormat {
  if (given !== undefined) {
    if (!(BULK_FORMATS as readonly string[]).includes(given)) throw new UsageError(`--format must be one of ${BULK_FORMATS.join(", ")} (got ${JSON.stringify(given)})`, "bulk");
    return given as BulkFormat;
  }
  const format = formatFromPath(file);
  if (!format) throw new UsageError(`cannot tell the format of ${file} from its name: use .txt, .csv or .jsonl, or pass --format`, "bulk");
  return format;
}

function fileSize(file: string): number {
  try {
    const stat = statSync(file);
    if (!stat.isFile()) throw new UsageError(`${file} is not a file`, "bulk");
    return stat.size;
  } catch (error) {
    if (error instanceof UsageError) throw error;
    const code = (error as { code?: string }).code;
    throw new UsageError(`cannot read ${file}: ${code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : String(code ?? error)}`, "bulk");
  }
}

/** `bulk-20261127-101500-ab12`: sortable by time, unique enough to tell two runs of one minute apart. */
export function generateBatchId(now: Date): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  return `bulk-${stamp}-${randomBytes(2).toString("hex")}`;
}

/** The results CSV, written through a 64 KiB buffer so a million rows cost neither memory nor a million syscalls. */
function openResults(path: string): { row(fields: (string | number)[]): void; close(): void } {
  let fd: number;
  try {
    fd = openSync(path, "w");
  } catch (error) {
    throw new UsageError(`cannot write the results file ${path}: ${(error as { code?: string }).code ?? String(error)}`, "bulk");
  }
  let buffer = "";
  let closed = false;
  const flush = () => {
    if (buffer !== "") writeSync(fd, buffer);
    buffer = "";
  };
  return {
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
