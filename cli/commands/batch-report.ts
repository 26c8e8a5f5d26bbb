/** `scm-withdraw batch report <batch_id> --out FILE`: one line per job of a batch, from the ledger. */
import { CliError, UsageError } from "../../lib/errors.ts";
import { closeSync, openSync, writeSync } from "node:fs";
import type { LedgerJob } from "../../lib/ledger.ts";
import { stringFlag } from "../args.ts";
import { batchIdArgument, ledgerRead, readStatus, statusHeadline } from "../batch.ts";
import { EXIT, type Command } from "../context.ts";
import { HEADS } from "./heads.ts";
import { csvField, plural } from "../output.ts";

const NAME = HEADS.batchReport.name;

/** The report's columns, in order (CSV header; JSONL keys). */
export const REPORT_COLUMNS = [
  "request_id",
  "certificate_id",
  "state",
  "reason",
  "http_status",
  "error_code",
  "error_msg",
  "attempts",
  "finished_at",
  "requested_by",
  "request_reason",
  "requested_at",
] as const;

export const batchReportCommand: Command = {
  ...HEADS.batchReport,
  description: [
    "Reads every job of the batch from the ledger (one query, page by page) and writes one line per job:",
    `${REPORT_COLUMNS.join(", ")}.`,
    "state is queued, retrying or requeued while a job is pending; withdrawn, already_withdrawn or",
    "dead_lettered once it is final. reason is the DLQ failure_reason (or why a job is being retried);",
    "http_status, error_code and error_msg are SCM's last answer; attempts counts SCM calls over every",
    "delivery. requested_by, request_reason and requested_at are the audit trail: who asked for the job, why",
    "and when (empty for jobs sent by older producers). Jobs come by certificate_id, then request_id.",
    "",
    "--out FILE writes the report there (.csv or .jsonl, by extension or --format); without it, CSV goes",
    "to stdout (with --json: one JSON document {batch_id, done, jobs: [...], by_state}). Exit 0 when the report was written; 1 when the ledger cannot be read or the batch is unknown.",
  ].join("\n"),
  options: {
    out: { type: "string", valueName: "FILE", description: "where to write the report (default: CSV on stdout)" },
    format: { type: "string", valueName: "FORMAT", description: "csv or jsonl, when the file name does not say" },
  },
  async run(context, { values, positionals }) {
    const batchId = batchIdArgument(positionals, NAME);
    const out = stringFlag(values, "out");
    // --json means JSON on stdout: without --out the report itself is one JSON document (rows streamed in it).
    const jsonOnStdout = context.json && (out === undefined || out === "-");
    if (jsonOnStdout && values.format !== undefined)
      throw new UsageError("--json prints the report as JSON on stdout: use --out FILE for --format", NAME);
    const format = jsonOnStdout ? "json" : reportFormat(out, stringFlag(values, "format"));
    const ledger = await context.requireLedger();
    const status = await readStatus(context, ledger, batchId);

    const sink = openSink(out, (chunk) => context.io.stdout.write(chunk));
    const byState = new Map<string, number>();
    let written = 0;
    try {
      if (format === "csv") sink.write(`${REPORT_COLUMNS.join(",")}\n`);
      if (format === "json") sink.write(`{"batch_id":${JSON.stringify(batchId)},"done":${status.done},"jobs":[`);
      await ledgerRead(context, async () => {
        for await (const job of ledger.batchJobs(batchId)) {
          const row = reportRow(job);
          if (format === "csv") sink.write(`${REPORT_COLUMNS.map((c) => csvField(row[c] ?? undefined)).join(",")}\n`);
          else if (format === "json") sink.write(`${written > 0 ? "," : ""}\n${JSON.stringify(row)}`);
          else sink.write(`${JSON.stringify(row)}\n`);
          byState.set(job.state, (byState.get(job.state) ?? 0) + 1);
          written++;
        }
      });
      if (format === "json") sink.write(`\n],"by_state":${JSON.stringify(Object.fromEntries(byState))}}\n`);
    } finally {
      sink.close();
    }

    const counts = [...byState].map(([state, n]) => `${n} ${state}`).join(", ");
    const summary = `batch ${batchId}: ${statusHeadline(status)}`;
    if (context.json) {
      // The report itself is on stdout without --out: the summary then goes to stderr, as text.
      if (out !== undefined)
        context.printJson({
          batch_id: batchId,
          out,
          format,
          jobs: written,
          by_state: Object.fromEntries(byState),
          done: status.done,
        });
      else context.note(`${summary}; ${plural(written, "job")} reported`);
    } else if (out !== undefined) {
      context.print(summary);
      context.print(`wrote ${plural(written, "job")} to ${out}${counts ? ` (${counts})` : ""}`);
    } else {
      context.note(`${summary}; ${plural(written, "job")} reported`);
    }
    return EXIT.ok;
  },
};

type ReportRow = Record<(typeof REPORT_COLUMNS)[number], string | number | null>;

function reportRow(job: LedgerJob): ReportRow {
  return {
    request_id: job.requestId,
    certificate_id: job.certificateId ?? null,
    state: job.state,
    reason: job.reason ?? null,
    http_status: job.httpStatus ?? null,
    error_code: job.errorCode ?? null,
    error_msg: job.errorMsg ?? null,
    attempts: job.attempts,
    finished_at: job.finishedAt ?? null,
    requested_by: job.requestedBy ?? null,
    request_reason: job.requestReason ?? null,
    requested_at: job.requestedAt ?? null,
  };
}

function reportFormat(out: string | undefined, given: string | undefined): "csv" | "jsonl" {
  if (given !== undefined) {
    if (given !== "csv" && given !== "jsonl")
      throw new UsageError(`--format must be csv or jsonl (got ${JSON.stringify(given)})`, NAME);
    return given;
  }
  if (out === undefined || out === "-") return "csv";
  const ext = /\.([A-Za-z0-9]+)$/.exec(out)?.[1]?.toLowerCase();
  if (ext === "csv") return "csv";
  if (ext === "jsonl" || ext === "ndjson") return "jsonl";
  throw new UsageError(
    `cannot tell the report format from ${JSON.stringify(out)}: name it .csv or .jsonl, or pass --format`,
    NAME,
  );
}

/** The report's destination: a file (buffered), or stdout. */
function openSink(
  out: string | undefined,
  stdout: (chunk: string) => void,
): { write(chunk: string): void; close(): void } {
  if (out === undefined || out === "-") return { write: stdout, close() {} };
  let fd: number;
  try {
    fd = openSync(out, "w");
  } catch (error) {
    throw new CliError(`cannot write the report ${out}: ${(error as { code?: string }).code ?? String(error)}`);
  }
  let buffer = "";
  return {
    write(chunk) {
      buffer += chunk;
      if (buffer.length >= 65_536) {
        writeSync(fd, buffer);
        buffer = "";
      }
    },
    close() {
      if (buffer) writeSync(fd, buffer);
      buffer = "";
      closeSync(fd);
    },
  };
}
