/** `scm-withdraw job <certificate_id | request_id>`: one job's story, from the ledger (and the DLQ). */
import type { LedgerJob } from "../../lib/ledger.ts";
import { CliError, UsageError } from "../../lib/errors.ts";
import { ledgerRead } from "../batch.ts";
import { EXIT, type Command, type CommandContext } from "../context.ts";
import { HEADS } from "./heads.ts";
import type { DlqMessage } from "../dlq.ts";
import { formatTable, plural } from "../output.ts";
import { scanDlq } from "./dlq-list.ts";

const NAME = HEADS.job.name;

export const jobCommand: Command = {
  ...HEADS.job,
  description: [
    "Finds every job of the certificate (or with that request_id) in the ledger, in every batch, cleanup",
    "run and manual enqueue, with one query per index (never a scan), oldest first. For each: its batch,",
    "request_id, state (and failure reason), SCM calls made, SCM's last answer, who requested it, why and",
    "when, and whether its message is in the dead-letter queue now (read by scanning the DLQ, which leaves",
    "every message there; --no-dlq skips it).",
    "",
    "Exit 0 when jobs were found; 1 when none was, or the ledger cannot be read.",
  ].join("\n"),
  options: {
    "no-dlq": { type: "boolean", description: "do not scan the dead-letter queue" },
  },
  async run(context, { values, positionals }) {
    if (positionals.length !== 1)
      throw new UsageError(
        positionals.length === 0
          ? "job needs a certificate id or a request_id"
          : `job takes one id (got ${positionals.length})`,
        NAME,
      );
    const id = positionals[0]!.trim();
    if (id === "" || id.length > 128)
      throw new UsageError("the id must be 1 to 128 characters (a certificate id or a request_id)", NAME);
    const ledger = await context.requireLedger();
    const jobs = await ledgerRead(context, () => ledger.findJobs(id));
    if (jobs.length === 0)
      throw new CliError(
        `no job for ${JSON.stringify(id)} in the ledger (table ${context.ledgerTarget?.tableName}): check the id (enqueue and bulk print request ids)`,
      );
    const inDlq = values["no-dlq"] === true ? undefined : await dlqMatches(context, jobs);

    if (context.json) {
      context.printJson({
        id,
        jobs: jobs.map((job) => ({ ...jobJson(job), ...(inDlq ? { in_dlq: inDlq.has(keyOf(job)) } : {}) })),
      });
      return EXIT.ok;
    }
    context.print(`${plural(jobs.length, "job")} for ${id}:`);
    const rows = formatTable(jobs, [
      { header: "batch", value: (j) => j.batchId ?? "-" },
      { header: "request_id", value: (j) => j.requestId },
      { header: "certificate_id", value: (j) => j.certificateId ?? "-" },
      { header: "state", value: (j) => (j.reason ? `${j.state} (${j.reason})` : j.state) },
      { header: "attempts", value: (j) => j.attempts, align: "right" },
      { header: "last SCM answer", value: lastAnswer },
      { header: "requested by", value: (j) => j.requestedBy ?? "unknown" },
      { header: "requested at", value: (j) => j.requestedAt ?? j.queuedAt ?? "-" },
      { header: "in DLQ", value: (j) => (inDlq ? (inDlq.has(keyOf(j)) ? "yes" : "no") : "not checked") },
    ]);
    for (const line of rows) context.print(line);
    // A request_id may name several jobs (one per certificate, per batch): each reason says whose it is.
    for (const job of jobs) {
      if (!job.requestReason) continue;
      const whose = `${job.certificateId}${job.batchId ? `, batch ${job.batchId}` : ""}`;
      context.print(`reason for ${job.requestId} (${whose}): ${job.requestReason}`);
    }
    return EXIT.ok;
  },
};

function lastAnswer(job: LedgerJob): string {
  if (job.httpStatus === undefined && job.errorCode === undefined && job.errorMsg === undefined) return "-";
  const parts = [
    job.httpStatus === undefined ? "" : `HTTP ${job.httpStatus}`,
    job.errorCode ?? "",
    job.errorMsg ? JSON.stringify(job.errorMsg.slice(0, 60)) : "",
  ];
  return parts.filter(Boolean).join(" ");
}

function jobJson(job: LedgerJob) {
  return {
    batch_id: job.batchId ?? null,
    request_id: job.requestId,
    certificate_id: job.certificateId ?? null,
    source: job.source ?? null,
    state: job.state,
    reason: job.reason ?? null,
    attempts: job.attempts,
    deliveries: job.deliveries,
    http_status: job.httpStatus ?? null,
    error_code: job.errorCode ?? null,
    error_msg: job.errorMsg ?? null,
    requested_by: job.requestedBy ?? null,
    request_reason: job.requestReason ?? null,
    requested_at: job.requestedAt ?? null,
    queued_at: job.queuedAt ?? null,
    finished_at: job.finishedAt ?? null,
    updated_at: job.updatedAt ?? null,
  };
}

const keyOf = (job: { certificateId: string | undefined; requestId: string | undefined }) =>
  `${job.certificateId ?? ""}\n${job.requestId ?? ""}`;

/** The jobs whose message is in the DLQ now (by certificate and request_id), from one scan that leaves every message there. */
async function dlqMatches(context: CommandContext, jobs: readonly LedgerJob[]): Promise<Set<string>> {
  const wanted = new Set(jobs.map(keyOf));
  const found = new Set<string>();
  const dlqUrl = await context.dlqUrl();
  await scanDlq(
    context,
    dlqUrl,
    (message: DlqMessage) => {
      const key = keyOf(message);
      if (!wanted.has(key)) return "skip";
      found.add(key);
      return "counted";
    },
    undefined,
  );
  return found;
}
