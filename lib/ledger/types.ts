/**
 * The ledger's vocabulary: job states, what a job is, what each method answers, its options and
 * errors. Types only (and a few constants): every other ledger file and every caller imports from here.
 */
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { Logger } from "../logger.ts";

/** Every state a job can be in. */
export const JOB_STATES = [
  "queued",
  "retrying",
  "requeued",
  "withdrawn",
  "already_withdrawn",
  "dead_lettered",
] as const;
export type JobState = (typeof JOB_STATES)[number];
/** States after which nothing more happens to a job unless an operator redrives it. */
export const FINAL_STATES: readonly JobState[] = ["withdrawn", "already_withdrawn", "dead_lettered"];
/** Final AND successful: sticky (never overwritten) and the duplicate guard's trigger. */
export const SUCCESS_STATES: readonly JobState[] = ["withdrawn", "already_withdrawn"];

/** The table's shape; `serverless.yml` and `createLedgerTable` (local/dynamodb.ts) declare the same. */
export const LEDGER_TABLE_SCHEMA = {
  partitionKey: "pk",
  sortKey: "sk",
  /** Epoch seconds; DynamoDB deletes the item some time after it (typically within a few days). */
  ttlAttribute: "expires_at",
  /**
   * Two global secondary indexes for `scm-withdraw job <id>`: every job of a certificate, and every job
   * of a request_id, across batches, each ONE Query (then a BatchGetItem of the items). Keys only, so a
   * job's updates (claims, outcomes) never write to them: one index write per job, when it is created.
   * Sparse: the batch META items carry neither attribute.
   */
  indexes: {
    byCertificate: { name: "by_certificate", partitionKey: "certificate_id" },
    byRequest: { name: "by_request", partitionKey: "request_id" },
  },
} as const;
export const DEFAULT_TTL_DAYS = 90;

/** What the ledger needs to know to find a job. */
export interface JobRef {
  /** The message's `request_id`, or its SQS messageId when it has none (as the worker does). */
  requestId: string;
  batchId?: string | undefined;
  certificateId?: string | undefined;
  source?: string | undefined;
  /** The audit trail, from the message: who asked (`requested_by`), why (`reason`) and when (`requested_at`). */
  requestedBy?: string | undefined;
  requestReason?: string | undefined;
  requestedAt?: string | undefined;
}

/** What names one job: its batch (if any), its certificate and its request_id (see keys.ts). */
export type JobIdentity = Pick<JobRef, "requestId" | "batchId" | "certificateId">;

/** One job item, as `batchJobs` and `getJob` return it. */
export interface LedgerJob {
  requestId: string;
  batchId: string | undefined;
  certificateId: string | undefined;
  source: string | undefined;
  /** Who asked for the job (the message's `requested_by`), why (its `reason`) and when (`requested_at`). */
  requestedBy: string | undefined;
  requestReason: string | undefined;
  requestedAt: string | undefined;
  state: JobState;
  /** The dead-letter `failure_reason`, or why a `retrying` job was handed back. */
  reason: string | undefined;
  /** SCM calls made for this job, over every delivery. */
  attempts: number;
  /** Times a worker claimed the job (deliveries that reached the SCM step). */
  deliveries: number;
  receiveCount: number | undefined;
  httpStatus: number | undefined;
  errorCode: string | undefined;
  errorMsg: string | undefined;
  messageId: string | undefined;
  queuedAt: string | undefined;
  claimedAt: string | undefined;
  requeuedAt: string | undefined;
  updatedAt: string | undefined;
  finishedAt: string | undefined;
  /** TTL, epoch seconds. */
  expiresAt: number | undefined;
}

export interface BatchStatus {
  batchId: string;
  /** What the producer said the batch holds (distinct request ids); undefined until it says so. */
  expectedTotal: number | undefined;
  /** Job items found. */
  recorded: number;
  counts: Record<JobState, number>;
  deadLetteredByReason: Record<string, number>;
  /** Jobs in a final state (withdrawn, already_withdrawn, dead_lettered). */
  final: number;
  /** Jobs still expected to change (queued, retrying, requeued). */
  pending: number;
  /** Every expected job is recorded and final. Never true while the expected total is unknown. */
  done: boolean;
  /** The newest `updated_at` of any item. */
  lastUpdatedAt: string | undefined;
}

/**
 * A record's final outcome as the ledger records it. The worker's `RecordOutcome` fits this shape; the
 * ledger declares its own so it does not depend on the worker (which depends on the ledger's types).
 */
export interface LedgerOutcome {
  messageId: string;
  requestId: string;
  certificateId: string | undefined;
  /** The parsed message (undefined for an invalid one). */
  request:
    | {
        batch_id?: string | undefined;
        source?: string | undefined;
        requested_by?: string | undefined;
        reason?: string | undefined;
        requested_at?: string | undefined;
      }
    | undefined;
  receiveCount: number;
  state: "withdrawn" | "already_withdrawn" | "dead_lettered" | "retrying";
  /** The failure reason of a dead_lettered or retrying record. */
  reason?: string;
  attempts: number;
  last: { httpStatus: number | undefined; errorCode: string | undefined; errorMsg: string | undefined };
}

export type ClaimResult = "proceed" | "already_withdrawn_in_ledger";
/** `unchanged`: the write's condition said there was nothing to do (a duplicate, or a sticky success). */
export type WriteResult = "written" | "unchanged" | "failed" | "skipped";
export type LedgerOperation = "claim" | "outcome" | "queued" | "batch" | "requeued" | "not_sent" | "find_jobs";

export interface QueuedResult {
  /** New job items written. */
  written: number;
  /** Jobs that were already recorded as queued (a repeated line, or a re-run before the worker got to them). */
  alreadyQueued: number;
  /** The jobs found recorded as queued before this call (a resumed bulk run need not send them again). */
  queuedBefore: JobRef[];
  /** Jobs that existed in a non-success state (retrying, requeued, dead_lettered) and were set back to queued. */
  reset: number;
  /** Jobs already withdrawn / already_withdrawn: a producer may skip sending them (match with `jobKeyString`). */
  alreadyDone: JobRef[];
  /** Request ids the ledger could not record (the job may still be sent; the ledger just will not know it). */
  failed: string[];
  /** The batch's META item (expected total) was written; false if not asked for or failed. */
  batchRecorded: boolean;
}

export interface BulkWriteResult {
  written: number;
  unchanged: number;
  failed: string[];
}

/** A batch's expected total: known at once, or added to by each producer run. */
export type BatchTotal = { expectedTotal: number } | { addToTotal: number };

export interface LedgerStats {
  /** Writes DynamoDB accepted (a BatchWriteItem counts its items). */
  writes: number;
  /** Conditional writes that found nothing to do. */
  unchanged: number;
  /** Operations that failed (error or time limit); each was logged as `ledger_write_failed`. */
  failures: number;
  /** Operations not attempted because the ledger was considered down (breaker open). */
  skipped: number;
  failuresByOperation: Record<LedgerOperation, number>;
}

export interface LedgerOptions {
  client: DynamoDBClient;
  tableName: string;
  logger?: Logger;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  /** Days a job item is kept after its last write (DynamoDB TTL). */
  ttlDays?: number;
  /** Time limit of one call on the worker's path (`claim`, `recordOutcome`), SDK retries included. */
  workerTimeoutMs?: number;
  /** Time limit of one DynamoDB request for producers and the CLI. */
  requestTimeoutMs?: number;
  /** Requests in flight at once for bulk writes. */
  concurrency?: number;
  /** Times a BatchWriteItem/BatchGetItem resends its unprocessed entries. */
  maxBatchRetries?: number;
  /** Failures in a row after which the ledger is skipped for `breakerCooldownMs`. */
  breakerThreshold?: number;
  breakerCooldownMs?: number;
  /** Called once per failed or skipped operation (e.g. a metrics counter). */
  onFailure?: (operation: LedgerOperation, kind: "failed" | "skipped") => void;
}

export interface Ledger {
  /**
   * Producers: records jobs as `queued` BEFORE sending them (so no worker outcome can be overwritten),
   * and the batch's expected total when given. Jobs already recorded are not overwritten: a success
   * is reported in `alreadyDone`, a failed or retrying job is set back to `queued`. Never throws.
   */
  recordQueued(
    jobs: readonly JobRef[],
    options?: { batchId?: string; expectedTotal?: number; source?: string },
  ): Promise<QueuedResult>;
  /**
   * Sets a batch's expected total (distinct jobs), e.g. at the end of a streamed file; or adds to it
   * (`addToTotal`: each `enqueue --batch-id` adds the jobs it sent). Never throws.
   */
  recordBatch(batchId: string, options: BatchTotal & { source?: string }): Promise<WriteResult>;
  /** Producers: forgets jobs recorded as queued whose send failed (only if no worker ever claimed them). Never throws. */
  recordNotSent(jobs: readonly JobRef[]): Promise<BulkWriteResult>;
  /**
   * Worker, before the SCM call: the duplicate guard. A conditional write that fails when the job is
   * already withdrawn / already_withdrawn; otherwise it records the delivery. Never throws; on any
   * failure the answer is `proceed`.
   */
  claim(job: JobRef): Promise<ClaimResult>;
  /** Worker, once per record with its final outcome (the worker's `onOutcome`). Never throws. */
  recordOutcome(outcome: LedgerOutcome): Promise<WriteResult>;
  /** `recordOutcome` shaped as the worker's `onOutcome` hook. */
  onOutcome: (outcome: LedgerOutcome) => Promise<void>;
  /** `dlq redrive`: marks jobs `requeued` BEFORE sending them back (a success stays a success). Never throws. */
  recordRequeued(jobs: readonly JobRef[]): Promise<BulkWriteResult>;
  /** Counts by state, the expected total and whether the batch is done: one Query. Throws `LedgerError`. */
  batchStatus(batchId: string, options?: { consistent?: boolean }): Promise<BatchStatus>;
  /** Every job of a batch, page by page (one Query, paginated). Throws `LedgerError`. */
  batchJobs(batchId: string, options?: { pageSize?: number; consistent?: boolean }): AsyncGenerator<LedgerJob>;
  /** Every job of a certificate or a request_id, across batches (one Query per index). Throws `LedgerError`. */
  findJobs(id: string): Promise<LedgerJob[]>;
  /** One job by its identity. Throws `LedgerError`. */
  getJob(job: JobIdentity, options?: { consistent?: boolean }): Promise<LedgerJob | undefined>;
  stats(): LedgerStats;
}

/** A read failed (the CLI reports it); writes never throw. */
export class LedgerError extends Error {
  readonly operation: string;
  readonly tableName: string;
  constructor(operation: string, tableName: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "LedgerError";
    this.operation = operation;
    this.tableName = tableName;
  }
}

/** A DynamoDB call did not answer within its time limit. */
export class LedgerTimeoutError extends Error {
  readonly timeoutMs: number;
  constructor(timeoutMs: number) {
    super(`no answer from DynamoDB within ${timeoutMs} ms`);
    this.name = "LedgerTimeoutError";
    this.timeoutMs = timeoutMs;
  }
}

/** DynamoDB's limits: 25 writes per BatchWriteItem, 100 keys per BatchGetItem. */
export const MAX_BATCH_WRITE = 25;
export const MAX_BATCH_GET = 100;
/** Error text kept per job: enough to read in a report, small enough to keep an item near 300 bytes. */
export const MAX_ERROR_MSG_LENGTH = 256;
