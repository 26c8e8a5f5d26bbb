/**
 * One run of `scm-withdraw bulk`: the file read one record at a time, each job checked, de-duplicated,
 * recorded in the ledger in chunks and sent with back-pressure, a row per record in the results file.
 */
import { createReadStream } from "node:fs";
import {
  CertificateIdSet,
  readBulkChunks,
  type BulkFormat,
  type BulkLine,
  type BulkReadOptions,
} from "../lib/bulk-file.ts";
import { BulkFileError, UsageError } from "../lib/errors.ts";
import type { JobRef, Ledger } from "../lib/ledger.ts";
import { createSender, type Sender, type SendResult } from "../lib/producer.ts";
import type { InputFile, ResultsFile } from "./bulk-files.ts";
import type { CommandContext } from "./context.ts";
import { createProgress, plural, type Progress } from "./output.ts";
import { resumeDecisions } from "./resume.ts";

/** Problem lines printed to stderr before the rest is left to the results file. */
const MAX_PROBLEM_LINES = 20;
/**
 * Jobs recorded in the ledger per round before they are sent (a BatchGetItem per 100 to see what is
 * already there, a BatchWriteItem per 25): large enough to keep DynamoDB calls few, small enough that
 * a job is never sent long after it was recorded.
 */
const LEDGER_CHUNK = 500;

/** What the command line asks for, read and checked before a line of the file is read. */
export interface BulkPlan {
  file: string;
  format: BulkFormat;
  dryRun: boolean;
  concurrency: number;
  batchId: string;
  reason: string | undefined;
  /** No --reason in a real run: each line must give its own (a csv column or a jsonl field). */
  reasonRequired: boolean;
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
  /** --resend-queued: send again the jobs the ledger holds as queued (a run killed outright). */
  resendQueued: boolean;
  /** The flags as given: the resume hint repeats those that choose the queue, the ledger and the format. */
  given: Readonly<Record<string, unknown>>;
}

interface Counts {
  read: number;
  valid: number;
  invalid: number;
  duplicates: number;
  sent: number;
  failed: number;
  /** With the ledger: jobs it already holds as withdrawn, not sent again. */
  already_done?: number;
  /** With the ledger: jobs an earlier run sent that are still queued, not sent again (a resumed run). */
  already_queued?: number;
}
type SendKey = { line: number; id: string; ref?: JobRef };
type ValidLine = Extract<BulkLine, { body: string }>;

/** One run's state: counts, problems shown, the progress bar, the sender and the jobs waiting for the ledger. */
export class BulkRun {
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
    const ledgerCounts = plan.ledger ? { already_done: 0, already_queued: 0 } : {};
    this.counts = { read: 0, valid: 0, invalid: 0, duplicates: 0, sent: 0, failed: 0, ...ledgerCounts };
    this.progress = createProgress(context.io.stderr, { enabled: !context.json });
    this.sender = plan.dryRun
      ? undefined
      : createSender<SendKey>({
          sqs: context.sqs,
          queueUrl: plan.queueUrl,
          concurrency: plan.concurrency,
          onResult: (r) => this.onSent(r),
        });
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

  /** Jobs sent per second, over `ms` (default: so far). */
  rate(ms = performance.now() - this.started): number {
    return Math.round(this.counts.sent / Math.max(0.001, ms / 1000));
  }

  /** Sending lags reading: the bar is the share of the jobs read so far that went out, times the share read. */
  showProgress(): void {
    const { counts } = this;
    const duplicates = plural(counts.duplicates, "duplicate");
    if (this.plan.dryRun) {
      const text = `${counts.valid} valid, ${counts.invalid} invalid, ${duplicates}`;
      this.progress.update(Math.min(0.99, this.readFraction), text);
      return;
    }
    const done = counts.sent + counts.failed + (counts.already_done ?? 0);
    const sent = `${counts.sent} of ${counts.valid} read sent, ${counts.failed} failed`;
    const text = `${sent}, ${counts.invalid} invalid, ${duplicates}, ${this.rate()}/s`;
    this.progress.update(Math.min(0.99, this.readFraction * (done / Math.max(1, counts.valid))), text);
  }

  /**
   * One record of the file: invalid, a duplicate, or a job to send (in a dry run, only counted). A promise
   * only when the record must wait (for room to send, or for the ledger): most records need no await.
   */
  take(entry: BulkLine, seen: CertificateIdSet): Promise<void> | undefined {
    const { counts, results } = this;
    counts.read++;
    if ("error" in entry) {
      counts.invalid++;
      results.row([entry.line, entry.certificateId ?? "", "invalid", "", entry.error]);
      this.problem(entry.line, `${entry.error}; not sent`);
      return undefined;
    }
    if (this.plan.reasonRequired && !hasReason(entry.body)) {
      counts.invalid++;
      results.row([entry.line, entry.certificateId, "invalid", "", NO_REASON]);
      this.problem(entry.line, `${NO_REASON}; not sent`);
      return undefined;
    }
    const first = seen.firstSeen(entry.certificateId, entry.line);
    if (first !== undefined) {
      counts.duplicates++;
      results.row([entry.line, entry.certificateId, "duplicate", "", `duplicate of line ${first}; skipped`]);
      this.problem(entry.line, `${entry.certificateId} is a duplicate of line ${first}; skipped`);
      return undefined;
    }
    counts.valid++;
    return this.send(entry);
  }

  /** Sends what waits for the ledger, then waits for every send in flight. */
  async flush(): Promise<void> {
    await this.sendChunk();
    await this.sender?.flush();
  }

  private send(entry: ValidLine): Promise<void> | undefined {
    const { plan } = this;
    if (plan.dryRun) this.results.row([entry.line, entry.certificateId, "valid", "", ""]);
    else if (plan.ledger) {
      const job = withRequestId(entry.body, plan.batchId, entry.certificateId);
      this.chunk.push({ line: entry.line, id: entry.certificateId, ...job });
      if (this.chunk.length >= LEDGER_CHUNK) return this.sendChunk();
    } else return this.sender?.push({ key: { line: entry.line, id: entry.certificateId }, body: entry.body });
    return undefined;
  }

  /** Records the waiting jobs as queued, then sends those the ledger does not hold (withdrawn, or queued before). */
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
    const decide = resumeDecisions(queued, { resendQueued: this.plan.resendQueued });
    for (const job of jobs) {
      const decision = decide(job.ref);
      if (decision === "already_done") {
        this.counts.already_done = (this.counts.already_done ?? 0) + 1;
        const detail = `request ${job.ref.requestId} is already withdrawn according to the ledger; not sent again`;
        this.results.row([job.line, job.id, "already_done", "", detail]);
      } else if (decision === "already_queued") {
        this.counts.already_queued = (this.counts.already_queued ?? 0) + 1;
        const detail = `request ${job.ref.requestId} was sent by an earlier run and is still queued; not sent again`;
        this.results.row([job.line, job.id, "already_queued", "", detail]);
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
export async function readAndSend(run: BulkRun, inputFile: InputFile): Promise<void> {
  const { context, plan, counts, results } = run;
  // Sized for the file up front (a .txt id line is 17 bytes): growing a million-id set holds the old
  // table and the new one at once, 20 MB more peak memory. Capped, so an odd huge file costs no more.
  const seen = new CertificateIdSet(Math.min(1 << 20, Math.ceil(inputFile.size / 17)));
  const input = createReadStream(plan.file, { fd: inputFile.fd });
  try {
    reading: for await (const entries of readBulkChunks(input, plan.readOptions)) {
      for (const entry of entries) {
        const wait = run.take(entry, seen);
        if (wait) await wait;
        // Every 256 records: the bar redraws at most every 100 ms anyway, and a million texts cost time.
        if ((counts.read & 255) === 0) {
          run.readFraction = input.bytesRead / Math.max(1, inputFile.size);
          run.showProgress();
        }
        if (context.signal?.aborted) {
          run.interrupted = true;
          break reading;
        }
      }
    }
  } catch (error) {
    if (error instanceof BulkFileError) {
      results.close();
      results.discard();
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

/**
 * The job's body with a request_id (the ledger's key; `<batch_id>:<certificate_id>` unless the line gave one)
 * and its ledger reference.
 */
function withRequestId(body: string, batchId: string, certificateId: string): { body: string; ref: JobRef } {
  type Fields = "request_id" | "source" | "requested_by" | "reason" | "requested_at";
  const request = JSON.parse(body) as Partial<Record<Fields, string>>;
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

const NO_REASON = "no reason: pass --reason TEXT or give the line a reason";

/** The line's own reason (a csv column or a jsonl field), for runs without --reason. */
function hasReason(body: string): boolean {
  const { reason } = JSON.parse(body) as { reason?: unknown };
  return typeof reason === "string" && reason.trim() !== "";
}
