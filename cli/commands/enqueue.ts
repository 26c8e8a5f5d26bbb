/** `scm-withdraw enqueue <certificate_id...>`: a few jobs, typed by hand. */
import { UsageError } from "../../lib/errors.ts";
import { randomUUID } from "node:crypto";
import { jobKeyString, jobRefFromRequest, type JobRef } from "../../lib/ledger.ts";
import { idOfLine } from "../../lib/bulk-file.ts";
import { parseWithdrawalBody, type WithdrawalRequest } from "../../lib/message.ts";
import { createSender, type SendResult } from "../../lib/producer.ts";
import { stringFlag, type ParsedValues } from "../args.ts";
import { HEADS } from "./heads.ts";
import { EXIT, type Command, type CommandContext } from "../context.ts";
import { formatTable, queueName } from "../output.ts";

export const enqueueCommand: Command = {
  ...HEADS.enqueue,
  description: [
    "Each id is validated with the shared schema (exactly 16 characters A-Z, a-z, 0-9) and sent as one",
    'job with source "manual". Invalid ids are reported one per line and not sent; the valid ones are',
    "still sent. Prints each job's SQS message id. Exit 1 if any id was invalid or failed to send.",
    "",
    "With the ledger (LEDGER_TABLE / --ledger-table, or the local pipeline's), every job gets a request_id",
    "(--request-id, else a random UUID), is recorded as queued before it is sent, and its request_id is",
    "printed; a request_id the ledger already holds as withdrawn is not sent again.",
  ].join("\n"),
  options: {
    reason: {
      type: "string",
      valueName: "TEXT",
      description: "why (at most 256 characters), kept in the job for the audit trail",
    },
    "request-id": {
      type: "string",
      valueName: "ID",
      description: "your correlation id (only with a single certificate id)",
    },
    "batch-id": { type: "string", valueName: "ID", description: "group the jobs under this batch id" },
  },
  async run(context, { values, positionals }) {
    const { invalid, duplicates, jobs } = readJobs(values, positionals);
    for (const { certificate_id, error } of invalid)
      context.note(`invalid certificate id ${JSON.stringify(certificate_id)}: ${error}; not sent`);
    for (const id of duplicates) context.note(`${id} given more than once: sent once`);
    const sent = await sendJobs(context, jobs);
    for (const { certificate_id, request_id } of sent.alreadyDone)
      context.note(
        `${certificate_id}: request ${request_id} is already withdrawn according to the ledger; not sent again`,
      );
    // Results arrive in completion order; print them in the order the ids were given.
    const order = new Map(jobs.map((j, i) => [j.id, i]));
    sent.results.sort((a, b) => order.get(a.key)! - order.get(b.key)!);
    report(context, { invalid, duplicates }, sent);
    return invalid.length > 0 || sent.results.some((r) => !r.ok) ? EXIT.failed : EXIT.ok;
  },
};

interface Job {
  id: string;
  request: WithdrawalRequest;
}

/** The ids as given, checked: the jobs to send (first of each id), the invalid ids and the repeated ones. */
function readJobs(values: ParsedValues, positionals: readonly string[]) {
  if (positionals.length === 0) throw new UsageError("enqueue needs at least one certificate id", "enqueue");
  const requestId = stringFlag(values, "request-id");
  if (requestId !== undefined && positionals.length > 1) {
    throw new UsageError(
      `--request-id applies to one job, but ${positionals.length} certificate ids were given`,
      "enqueue",
    );
  }
  const extra = {
    source: "manual",
    requested_at: new Date().toISOString(),
    ...(stringFlag(values, "reason") !== undefined ? { reason: stringFlag(values, "reason") } : {}),
    ...(requestId !== undefined ? { request_id: requestId } : {}),
    ...(stringFlag(values, "batch-id") !== undefined ? { batch_id: stringFlag(values, "batch-id") } : {}),
  };

  // A bad --reason/--request-id/--batch-id would fail every id the same way: check the flags once.
  const flags = parseWithdrawalBody(JSON.stringify({ certificate_id: "0000000000000000", ...extra }));
  if (!flags.ok) throw new UsageError(flags.problem, "enqueue");

  const invalid: { certificate_id: string; error: string }[] = [];
  const duplicates: string[] = [];
  const jobs: Job[] = [];
  const seen = new Set<string>();
  for (const given of positionals) {
    // The same rule as a line of a bulk .txt file: trimmed, anything after a `#` is a comment.
    const id = idOfLine(given) || given;
    const parsed = parseWithdrawalBody(JSON.stringify({ certificate_id: id, ...extra }));
    if (!parsed.ok) {
      invalid.push({ certificate_id: id, error: parsed.problem });
    } else if (seen.has(id)) {
      duplicates.push(id);
    } else {
      seen.add(id);
      jobs.push({ id, request: parsed.request });
    }
  }
  return { invalid, duplicates, jobs };
}

/** Records the jobs in the ledger (when there is one), then sends those it does not hold as withdrawn. */
async function sendJobs(context: CommandContext, jobs: Job[]) {
  const results: SendResult<string>[] = [];
  const alreadyDone: { certificate_id: string; request_id: string }[] = [];
  let ledgerOn = false;
  const requestIds = new Map<string, string>();
  if (jobs.length > 0) {
    const { queueUrl } = context.target;
    await context.checkQueue(queueUrl);
    const requestedBy = await context.requestedBy();
    for (const job of jobs) job.request = { ...job.request, requested_by: requestedBy };
    const ledger = await context.ledger();
    let recorded = 0;
    let toSend = jobs;
    if (ledger) {
      // The ledger knows a job by its certificate and request_id: give every job a request_id, and record it before sending it.
      ledgerOn = true;
      for (const job of jobs) {
        job.request = { ...job.request, request_id: job.request.request_id ?? randomUUID() };
        requestIds.set(job.id, job.request.request_id!);
      }
      const queued = await ledger.recordQueued(jobs.map(({ request }) => jobRef(request)));
      recorded = queued.written;
      const done = new Set(queued.alreadyDone.map(jobKeyString));
      const isDone = (job: Job) => done.has(jobKeyString(jobRef(job.request)));
      toSend = jobs.filter((job) => !isDone(job));
      for (const job of jobs)
        if (isDone(job)) alreadyDone.push({ certificate_id: job.id, request_id: job.request.request_id! });
    }
    const sender = createSender<string>({ sqs: context.sqs, queueUrl, onResult: (r) => results.push(r) });
    for (const job of toSend) await sender.push({ key: job.id, body: JSON.stringify(job.request) });
    await sender.flush();
    const notSent = new Set(results.filter((r) => !r.ok).map((r) => r.key));
    if (ledger && notSent.size > 0)
      recorded -= (
        await ledger.recordNotSent(jobs.filter((j) => notSent.has(j.id)).map(({ request }) => jobRef(request)))
      ).written;
    // A manual batch grows with each enqueue: add the new jobs to its total, so `batch status` can say "done".
    const batchId = jobs[0]!.request.batch_id;
    if (ledger && batchId !== undefined && recorded > 0)
      await ledger.recordBatch(batchId, { addToTotal: recorded, source: "manual" });
  }
  return { results, alreadyDone, ledgerOn, requestIds };
}

type Rejected = Pick<ReturnType<typeof readJobs>, "invalid" | "duplicates">;

type Sent = Awaited<ReturnType<typeof sendJobs>>;

/** The jobs sent, in the order given (a table, or --json), and one line of totals. */
function report(context: CommandContext, { invalid, duplicates }: Rejected, sentJobs: Sent): void {
  const { results, alreadyDone, ledgerOn, requestIds } = sentJobs;
  const sent = results.filter((r) => r.ok);
  const failed = results.filter((r) => !r.ok);
  if (context.json) {
    context.printJson({
      queue_url: context.target.queueUrl,
      sent: sent.map((r) => ({
        certificate_id: r.key,
        ...(ledgerOn ? { request_id: requestIds.get(r.key) } : {}),
        message_id: r.messageId,
      })),
      failed: failed.map((r) => ({ certificate_id: r.key, error: r.error })),
      invalid,
      duplicates,
      ...(ledgerOn ? { already_done: alreadyDone } : {}),
    });
    return;
  }
  if (results.length > 0) {
    for (const line of formatTable(results, [
      { header: "certificate_id", value: (r) => r.key },
      ...(ledgerOn ? [{ header: "request_id", value: (r: SendResult<string>) => requestIds.get(r.key) ?? "" }] : []),
      { header: "message_id", value: (r) => (r.ok ? r.messageId : `FAILED: ${r.error}`) },
    ]))
      context.print(line);
  }
  const parts = [`sent ${sent.length} to ${queueName(context.target.queueUrl)}`];
  if (failed.length > 0) parts.push(`${failed.length} failed`);
  if (invalid.length > 0) parts.push(`${invalid.length} invalid (not sent)`);
  if (alreadyDone.length > 0) parts.push(`${alreadyDone.length} already withdrawn (not sent)`);
  context.print(parts.join(", "));
}

function jobRef(request: WithdrawalRequest): JobRef {
  return jobRefFromRequest(request, request.request_id!);
}
