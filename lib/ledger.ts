/**
 * The withdrawal ledger (optional; `LEDGER_TABLE`): one DynamoDB table recording each job's fate, so a
 * bulk batch or a cleanup run can be followed to the end, and a job already withdrawn is acknowledged
 * without a second SCM call.
 *
 * Data model, one table, keys `pk` (HASH) + `sk` (RANGE), TTL attribute `expires_at`:
 *
 * | item | pk | sk | attributes |
 * | --- | --- | --- | --- |
 * | job in a batch | `BATCH#<batch_id>` | `JOB#<certificate_id>#<request_id>` | state, certificate_id, source, attempts, http_status, error_code, ... |
 * | job without a batch_id | `REQ#<request_id>` | `JOB#<certificate_id>#<request_id>` | the same |
 * | batch | `BATCH#<batch_id>` | `META` | expected_total, source, created_at |
 *
 * A batch's items share one partition, so its progress (the META item + every job's state) is ONE
 * `Query` on `pk`, and its job list is the same query with `begins_with(sk, "JOB#")`, paginated. No scan,
 * no index. A job is found by `(batch_id, certificate_id, request_id)`, which every message carries:
 * that triple is the job's identity and the key of the duplicate guard. The certificate is in it
 * because operators reuse a request_id (a ticket number) for several certificates: keyed by
 * request_id alone, the second certificate's job was taken as already done and never withdrawn.
 *
 * Counts are DERIVED from the job items (the query above, with a projection), never kept in counters.
 * A job has exactly one `state` attribute, so a redelivered outcome, a crash between two writes or a
 * ledger outage can never double count or drift: the job items are the only truth. The alternative,
 * an `ADD` counter on the META item inside a `TransactWriteItems` with the job's conditional change,
 * costs 2 write units per item touched (4 per transition instead of 1), turns the META item into one hot
 * item that every concurrent transaction conflicts on (`TransactionConflict`), and dynalite has no
 * transactions to test it with. Reading a batch's status costs 0.5 read units per 4 KB of job items
 * read (eventually consistent; a job item is 500-650 bytes): about 350 read units for 5,000 jobs.
 *
 * Writes per job in the normal path (an item is under 1 KB with ids of ordinary length, so each write
 * is 1 write unit; a conditional write whose condition fails is billed the same):
 * 1 `queued` (in a BatchWriteItem of 25) + 1 `claim` (conditional update before the SCM call) + 1
 * outcome = 3; plus 2 per extra delivery (claim + outcome again) and 1 META write per batch. Recording
 * `queued` first reads the batch's existing items (BatchGetItem, 0.5 read unit per job) so that a re-run
 * never resets a finished job.
 *
 * The ledger never decides a job's fate: every method the worker calls resolves (never throws) within
 * a short time limit, logs `ledger_write_failed` and counts the failure (`stats()`, `onFailure`). After
 * `breakerThreshold` failures in a row it stops calling DynamoDB for `breakerCooldownMs`, so an outage
 * costs a Lambda invocation almost nothing. The one thing it does decide, `claim` answering
 * `already_withdrawn_in_ledger`, comes only from a successful conditional write; on any failure the
 * answer is `proceed` (and SCM's own already-withdrawn check keeps a repeated call harmless).
 *
 * Only the low-level `@aws-sdk/client-dynamodb` is used (lib-dynamodb is not a dependency), with the few
 * marshalling helpers below. The Lambda bundle imports this file: nothing here pulls in `zod` (only
 * `zod/mini`, through lib/message.ts).
 */
import type {
  AttributeValue,
  BatchGetItemCommandOutput,
  BatchWriteItemCommandOutput,
  DynamoDBClient,
  GetItemCommandOutput,
  KeysAndAttributes,
  QueryCommandOutput,
  WriteRequest,
} from "@aws-sdk/client-dynamodb";
import { describeError } from "./errors.ts";
import { silentLogger, type Logger } from "./logger.ts";
import { parseWithdrawalBody, type WithdrawalRequest } from "./message.ts";
import { sleep as defaultSleep } from "./retry.ts";
import type { RecordOutcome } from "./worker.ts";

/**
 * The DynamoDB commands, imported on first use. A static import would be hoisted to the top of the
 * Lambda bundle (esbuild keeps external imports at module level) and load the DynamoDB SDK at every
 * cold start, ledger or not: about 20 ms measured by `npm run bench`.
 */
let sdk: Promise<typeof import("@aws-sdk/client-dynamodb")> | undefined;
const ddb = () => (sdk ??= import("@aws-sdk/client-dynamodb"));

/** Every state a job can be in. */
export const JOB_STATES = ["queued", "retrying", "requeued", "withdrawn", "already_withdrawn", "dead_lettered"] as const;
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
} as const;
export const DEFAULT_TTL_DAYS = 90;

/** What the ledger needs to know to find a job. */
export interface JobRef {
  /** The message's `request_id`, or its SQS messageId when it has none (as the worker does). */
  requestId: string;
  batchId?: string | undefined;
  certificateId?: string | undefined;
  source?: string | undefined;
}

/** One job item, as `batchJobs` and `getJob` return it. */
export interface LedgerJob {
  requestId: string;
  batchId: string | undefined;
  certificateId: string | undefined;
  source: string | undefined;
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

export type ClaimResult = "proceed" | "already_withdrawn_in_ledger";
/** `unchanged`: the write's condition said there was nothing to do (a duplicate, or a sticky success). */
export type WriteResult = "written" | "unchanged" | "failed" | "skipped";
export type LedgerOperation = "claim" | "outcome" | "queued" | "batch" | "requeued" | "not_sent";

export interface QueuedResult {
  /** New job items written. */
  written: number;
  /** Jobs that were already recorded as queued (a repeated line, or a re-run before the worker got to them). */
  alreadyQueued: number;
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
  recordQueued(jobs: readonly JobRef[], options?: { batchId?: string; expectedTotal?: number; source?: string }): Promise<QueuedResult>;
  /** Sets a batch's expected total (distinct request ids), e.g. at the end of a streamed file. Never throws. */
  recordBatch(batchId: string, options: { expectedTotal: number; source?: string }): Promise<WriteResult>;
  /** Producers: forgets jobs recorded as queued whose send failed (only if no worker ever claimed them). Never throws. */
  recordNotSent(jobs: readonly JobRef[]): Promise<BulkWriteResult>;
  /**
   * Worker, before the SCM call: the duplicate guard. A conditional write that fails when the job is
   * already withdrawn / already_withdrawn; otherwise it records the delivery. Never throws; on any
   * failure the answer is `proceed`.
   */
  claim(job: JobRef): Promise<ClaimResult>;
  /** Worker, once per record with its final outcome (the worker's `onOutcome`). Never throws. */
  recordOutcome(outcome: RecordOutcome): Promise<WriteResult>;
  /** `recordOutcome` shaped as the worker's `onOutcome` hook. */
  onOutcome: (outcome: RecordOutcome) => Promise<void>;
  /** `dlq redrive`: marks jobs `requeued` BEFORE sending them back (a success stays a success). Never throws. */
  recordRequeued(jobs: readonly JobRef[]): Promise<BulkWriteResult>;
  /** Counts by state, the expected total and whether the batch is done: one Query. Throws `LedgerError`. */
  batchStatus(batchId: string, options?: { consistent?: boolean }): Promise<BatchStatus>;
  /** Every job of a batch, page by page (one Query, paginated). Throws `LedgerError`. */
  batchJobs(batchId: string, options?: { pageSize?: number; consistent?: boolean }): AsyncGenerator<LedgerJob>;
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

/** One SDK call, given the signal that aborts it at the time limit. */
type Call<T> = (abortSignal: AbortSignal) => Promise<T>;

const META_SK = "META";
const JOB_SK_PREFIX = "JOB#";

/** What names one job: its batch (if any), its certificate and its request_id. */
export type JobIdentity = Pick<JobRef, "requestId" | "batchId" | "certificateId">;

/**
 * The key of a job: its batch's partition (or its request_id's when it has no batch), and a sort key
 * naming the certificate AND the request_id. The certificate is part of the identity: a request_id is
 * the producer's handle (often a ticket number, reused for several certificates), so a job is never
 * taken as done because another certificate's job with the same request_id was.
 */
export function jobKey(job: JobIdentity): { pk: string; sk: string } {
  return { pk: job.batchId ? batchPk(job.batchId) : `REQ#${job.requestId}`, sk: `${JOB_SK_PREFIX}${job.certificateId ?? ""}#${job.requestId}` };
}

/** One string per job key, for maps and sets (producers match `alreadyDone` against their jobs with it). */
export function jobKeyString(job: JobIdentity): string {
  const key = jobKey(job);
  return `${key.pk}\n${key.sk}`;
}

const batchPk = (batchId: string) => `BATCH#${batchId}`;

/** The worker's view of a job: its request id defaults to the SQS messageId, as the worker's own does. */
export function jobRefFromRequest(request: WithdrawalRequest, messageId: string): JobRef {
  return { requestId: request.request_id ?? messageId, batchId: request.batch_id, certificateId: request.certificate_id, source: request.source };
}

/**
 * A job from a queue body (producers, `dlq redrive`). `fallbackRequestId` is what the worker used when
 * the body has no `request_id`: the original messageId (a DLQ message's `source_message_id` attribute).
 */
export function jobRefFromBody(body: string, fallbackRequestId: string): JobRef {
  const parsed = parseWithdrawalBody(body);
  if (!parsed.ok) return { requestId: fallbackRequestId, certificateId: parsed.certificateId };
  return jobRefFromRequest(parsed.request, fallbackRequestId);
}

export function createLedger(options: LedgerOptions): Ledger {
  const { client, tableName } = options;
  const logger = options.logger ?? silentLogger;
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => defaultSleep(ms));
  const random = options.random ?? Math.random;
  const ttlSeconds = Math.round((options.ttlDays ?? DEFAULT_TTL_DAYS) * 86_400);
  const workerTimeoutMs = options.workerTimeoutMs ?? 1000;
  const requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
  const concurrency = Math.max(1, options.concurrency ?? 4);
  const maxBatchRetries = options.maxBatchRetries ?? 8;
  const breakerThreshold = options.breakerThreshold ?? 5;
  const breakerCooldownMs = options.breakerCooldownMs ?? 30_000;

  const stats: LedgerStats = {
    writes: 0,
    unchanged: 0,
    failures: 0,
    skipped: 0,
    failuresByOperation: { claim: 0, outcome: 0, queued: 0, batch: 0, requeued: 0, not_sent: 0 },
  };
  let failuresInARow = 0;
  let openUntil = 0;

  // ---------------------------------------------------------------------------------------------
  // Calls: time-limited, with a breaker so an outage fails fast instead of eating the deadline.

  /** Runs one SDK call; rejects with `LedgerTimeoutError` after `timeoutMs` (the request is aborted). */
  async function send<T>(call: Call<T>, timeoutMs: number): Promise<T> {
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new LedgerTimeoutError(timeoutMs);
        controller.abort(error);
        reject(error);
      }, timeoutMs);
    });
    try {
      return await Promise.race([call(controller.signal), limit]);
    } finally {
      clearTimeout(timer);
    }
  }

  const breakerOpen = () => failuresInARow >= breakerThreshold && now() < openUntil;

  function succeeded() {
    if (failuresInARow >= breakerThreshold) logger.info("ledger_recovered", { table: tableName });
    failuresInARow = 0;
  }

  function failed(operation: LedgerOperation, error: unknown, fields: Record<string, unknown>) {
    stats.failures += 1;
    stats.failuresByOperation[operation] += 1;
    failuresInARow += 1;
    logger.warn("ledger_write_failed", { operation, table: tableName, ...fields, error: describeError(error) });
    if (failuresInARow >= breakerThreshold) {
      // (Re)open: while open, calls are skipped; the first call after the cooldown probes again.
      if (now() >= openUntil) logger.error("ledger_unavailable", { table: tableName, failuresInARow, skipForMs: breakerCooldownMs });
      openUntil = now() + breakerCooldownMs;
    }
    options.onFailure?.(operation, "failed");
  }

  function skipped(operation: LedgerOperation) {
    stats.skipped += 1;
    options.onFailure?.(operation, "skipped");
  }

  /**
   * Runs one conditional write. `unchanged` when its condition failed; `failed`/`skipped` never throw.
   */
  async function conditionalWrite(operation: LedgerOperation, call: Call<unknown>, timeoutMs: number, fields: Record<string, unknown>): Promise<WriteResult> {
    if (breakerOpen()) {
      skipped(operation);
      return "skipped";
    }
    try {
      await send(call, timeoutMs);
      succeeded();
      stats.writes += 1;
      return "written";
    } catch (error) {
      if (isConditionFailure(error)) {
        succeeded();
        stats.unchanged += 1;
        return "unchanged";
      }
      failed(operation, error, fields);
      return "failed";
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Item builders.

  const isoNow = () => new Date(now()).toISOString();
  const expiresAt = () => Math.floor(now() / 1000) + ttlSeconds;

  /** The attributes every write of a job sets when it knows them, without overwriting what is there. */
  function identity(update: UpdateBuilder, job: JobRef) {
    update.set("request_id", S(job.requestId));
    update.setIfMissing("certificate_id", optionalS(job.certificateId));
    update.setIfMissing("source", optionalS(job.source));
    update.setIfMissing("batch_id", optionalS(job.batchId));
    update.set("updated_at", S(isoNow()));
    update.set("expires_at", N(expiresAt()));
  }

  function newJobItem(job: JobRef): Record<string, AttributeValue> {
    const key = jobKey(job);
    const at = isoNow();
    const item: Record<string, AttributeValue> = {
      pk: S(key.pk),
      sk: S(key.sk),
      request_id: S(job.requestId),
      state: S("queued"),
      attempts: N(0),
      queued_at: S(at),
      updated_at: S(at),
      expires_at: N(expiresAt()),
    };
    if (job.certificateId) item.certificate_id = S(job.certificateId);
    if (job.source) item.source = S(job.source);
    if (job.batchId) item.batch_id = S(job.batchId);
    return item;
  }

  /** Condition: the job is not a sticky success. Missing items and missing states pass. */
  function notSucceeded(update: UpdateBuilder): string {
    const state = update.name("state");
    return `(attribute_not_exists(${state}) OR NOT (${state} IN (${update.value(S("withdrawn"))}, ${update.value(S("already_withdrawn"))})))`;
  }

  // ---------------------------------------------------------------------------------------------
  // Worker path.

  async function claim(job: JobRef): Promise<ClaimResult> {
    const update = new UpdateBuilder();
    identity(update, job);
    update.setIfMissing("state", S("queued"));
    update.setIfMissing("queued_at", S(isoNow()));
    update.setIfMissing("attempts", N(0));
    update.set("claimed_at", S(isoNow()));
    update.add("deliveries", N(1));
    const command = new (await ddb()).UpdateItemCommand({ TableName: tableName, Key: keyOf(job), ...update.build(notSucceeded(update)) });
    const result = await conditionalWrite("claim", (abortSignal) => client.send(command, { abortSignal }), workerTimeoutMs, { requestId: job.requestId, batchId: job.batchId, certificateId: job.certificateId });
    return result === "unchanged" ? "already_withdrawn_in_ledger" : "proceed";
  }

  async function recordOutcome(outcome: RecordOutcome): Promise<WriteResult> {
    const job: JobRef = {
      requestId: outcome.requestId,
      batchId: outcome.request?.batch_id,
      certificateId: outcome.certificateId,
      source: outcome.request?.source,
    };
    const final = FINAL_STATES.includes(outcome.state);
    const delivery = `${outcome.messageId}#${outcome.receiveCount}`;
    const update = new UpdateBuilder();
    identity(update, job);
    update.set("state", S(outcome.state));
    update.setOrRemove("reason", outcome.state === "dead_lettered" || outcome.state === "retrying" ? optionalS(outcome.reason) : undefined);
    update.setOrRemove("http_status", outcome.last.httpStatus === undefined ? undefined : N(outcome.last.httpStatus));
    update.setOrRemove("error_code", optionalS(outcome.last.errorCode));
    update.setOrRemove("error_msg", optionalS(outcome.last.errorMsg?.slice(0, MAX_ERROR_MSG_LENGTH)));
    update.setOrRemove("finished_at", final ? S(isoNow()) : undefined);
    update.setIfMissing("queued_at", S(isoNow()));
    update.set("message_id", S(outcome.messageId));
    update.set("receive_count", N(outcome.receiveCount));
    update.set("last_delivery", S(delivery));
    update.add("attempts", N(outcome.attempts));
    // The same delivery reporting the same state again is a duplicate: nothing may change (attempts
    // would be added twice). A success is never overwritten, whatever a later delivery says.
    const duplicate = `NOT (${update.name("last_delivery")} = ${update.value(S(delivery))} AND ${update.name("state")} = ${update.value(S(outcome.state))})`;
    const command = new (await ddb()).UpdateItemCommand({ TableName: tableName, Key: keyOf(job), ...update.build(`${notSucceeded(update)} AND ${duplicate}`) });
    return conditionalWrite("outcome", (abortSignal) => client.send(command, { abortSignal }), workerTimeoutMs, { requestId: job.requestId, batchId: job.batchId, messageId: outcome.messageId, state: outcome.state });
  }

  // ---------------------------------------------------------------------------------------------
  // Producers.

  async function recordBatch(batchId: string, { expectedTotal, source }: { expectedTotal: number; source?: string }): Promise<WriteResult> {
    const update = new UpdateBuilder();
    update.set("batch_id", S(batchId));
    update.set("expected_total", N(expectedTotal));
    update.setIfMissing("source", optionalS(source));
    update.setIfMissing("created_at", S(isoNow()));
    update.set("updated_at", S(isoNow()));
    update.set("expires_at", N(expiresAt()));
    const command = new (await ddb()).UpdateItemCommand({ TableName: tableName, Key: { pk: S(batchPk(batchId)), sk: S(META_SK) }, ...update.build() });
    return conditionalWrite("batch", (abortSignal) => client.send(command, { abortSignal }), requestTimeoutMs, { batchId, expectedTotal });
  }

  async function recordQueued(jobs: readonly JobRef[], opts: { batchId?: string; expectedTotal?: number; source?: string } = {}): Promise<QueuedResult> {
    const result: QueuedResult = { written: 0, alreadyQueued: 0, reset: 0, alreadyDone: [], failed: [], batchRecorded: false };
    if (opts.batchId && opts.expectedTotal !== undefined) {
      result.batchRecorded = (await recordBatch(opts.batchId, { expectedTotal: opts.expectedTotal, ...(opts.source ? { source: opts.source } : {}) })) === "written";
    }

    // One item per key: BatchWriteItem refuses two writes to the same key in one call.
    const unique = new Map<string, JobRef>();
    for (const job of jobs) {
      const ref: JobRef = { ...job, batchId: job.batchId ?? opts.batchId, source: job.source ?? opts.source };
      if (unique.has(jobKeyString(ref))) result.alreadyQueued += 1;
      else unique.set(jobKeyString(ref), ref);
    }
    const all = [...unique.values()];

    // What is already there, so a re-run never resets a job a worker has finished.
    const states = new Map<string, JobState | "unknown">();
    await forEachConcurrently(chunk(all, MAX_BATCH_GET), concurrency, async (group) => {
      const found = await batchGetStates(group);
      if (found === undefined) for (const job of group) states.set(jobKeyString(job), "unknown");
      else for (const [key, state] of found) states.set(key, state);
    });

    const fresh: JobRef[] = [];
    const toReset: JobRef[] = [];
    for (const job of all) {
      const state = states.get(jobKeyString(job));
      if (state === "unknown") result.failed.push(job.requestId);
      else if (state === undefined) fresh.push(job);
      else if (state === "queued") result.alreadyQueued += 1;
      else if (SUCCESS_STATES.includes(state)) result.alreadyDone.push(job);
      else toReset.push(job);
    }

    await forEachConcurrently(chunk(fresh, MAX_BATCH_WRITE), concurrency, async (group) => {
      const failedIds = await batchWrite(group.map((job) => ({ PutRequest: { Item: newJobItem(job) } })));
      result.written += group.length - failedIds.length;
      result.failed.push(...failedIds);
    });

    await forEachConcurrently(toReset, concurrency, async (job) => {
      const update = new UpdateBuilder();
      identity(update, job);
      update.set("state", S("queued"));
      update.set("queued_at", S(isoNow()));
      update.setOrRemove("finished_at", undefined);
      const command = new (await ddb()).UpdateItemCommand({ TableName: tableName, Key: keyOf(job), ...update.build(notSucceeded(update)) });
      const written = await conditionalWrite("queued", (abortSignal) => client.send(command, { abortSignal }), requestTimeoutMs, { requestId: job.requestId, batchId: job.batchId });
      if (written === "written") result.reset += 1;
      else if (written === "unchanged") result.alreadyDone.push(job);
      else result.failed.push(job.requestId);
    });
    return result;
  }

  /** Current states of up to 100 jobs, by `keyString`; undefined when the read failed. */
  async function batchGetStates(group: readonly JobRef[]): Promise<Map<string, JobState> | undefined> {
    const found = new Map<string, JobState>();
    let pending: KeysAndAttributes | undefined = {
      Keys: group.map(keyOf),
      ProjectionExpression: "#pk, #sk, #st",
      ExpressionAttributeNames: { "#pk": "pk", "#sk": "sk", "#st": "state" },
    };
    for (let attempt = 0; pending?.Keys?.length; attempt++) {
      if (breakerOpen()) {
        skipped("queued");
        return undefined;
      }
      let output: BatchGetItemCommandOutput;
      try {
        const command = new (await ddb()).BatchGetItemCommand({ RequestItems: { [tableName]: pending } });
        output = await send((abortSignal) => client.send(command, { abortSignal }), requestTimeoutMs);
        succeeded();
      } catch (error) {
        failed("queued", error, { jobs: group.length, step: "read_existing" });
        return undefined;
      }
      for (const raw of output.Responses?.[tableName] ?? []) {
        found.set(`${raw.pk?.S}\n${raw.sk?.S}`, asState(raw.state?.S));
      }
      pending = output.UnprocessedKeys?.[tableName];
      if (pending?.Keys?.length) {
        if (attempt >= maxBatchRetries) {
          failed("queued", new Error(`${pending.Keys.length} keys still unprocessed after ${attempt + 1} reads`), { step: "read_existing" });
          return undefined;
        }
        await sleep(batchBackoff(attempt));
      }
    }
    return found;
  }

  /** Writes up to 25 requests, resending unprocessed ones with backoff; returns the request ids that failed. */
  async function batchWrite(requests: WriteRequest[]): Promise<string[]> {
    let pending = requests;
    for (let attempt = 0; ; attempt++) {
      if (breakerOpen()) {
        skipped("queued");
        return pending.map(requestIdOf);
      }
      let output: BatchWriteItemCommandOutput;
      try {
        const command = new (await ddb()).BatchWriteItemCommand({ RequestItems: { [tableName]: pending } });
        output = await send((abortSignal) => client.send(command, { abortSignal }), requestTimeoutMs);
        succeeded();
      } catch (error) {
        failed("queued", error, { jobs: pending.length, step: "write" });
        return pending.map(requestIdOf);
      }
      const unprocessed = output.UnprocessedItems?.[tableName] ?? [];
      stats.writes += pending.length - unprocessed.length;
      if (unprocessed.length === 0) return [];
      if (attempt >= maxBatchRetries) {
        failed("queued", new Error(`${unprocessed.length} items still unprocessed after ${attempt + 1} writes`), { step: "write" });
        return unprocessed.map(requestIdOf);
      }
      // Unprocessed items mean throttling: back off before resending only those (AWS guidance).
      await sleep(batchBackoff(attempt));
      pending = unprocessed;
    }
  }

  /** Full jitter, 50 ms doubling to 2 s. */
  const batchBackoff = (attempt: number) => Math.floor(random() * Math.min(2000, 50 * 2 ** attempt));

  async function recordNotSent(jobs: readonly JobRef[]): Promise<BulkWriteResult> {
    const result: BulkWriteResult = { written: 0, unchanged: 0, failed: [] };
    await forEachConcurrently(jobs, concurrency, async (job) => {
      const update = new UpdateBuilder();
      const condition = `${update.name("state")} = ${update.value(S("queued"))} AND attribute_not_exists(${update.name("deliveries")})`;
      const command = new (await ddb()).DeleteItemCommand({ TableName: tableName, Key: keyOf(job), ...update.build(condition) });
      tally(result, job, await conditionalWrite("not_sent", (abortSignal) => client.send(command, { abortSignal }), requestTimeoutMs, { requestId: job.requestId, batchId: job.batchId }));
    });
    return result;
  }

  async function recordRequeued(jobs: readonly JobRef[]): Promise<BulkWriteResult> {
    const result: BulkWriteResult = { written: 0, unchanged: 0, failed: [] };
    await forEachConcurrently(jobs, concurrency, async (job) => {
      const update = new UpdateBuilder();
      identity(update, job);
      update.set("state", S("requeued"));
      update.set("requeued_at", S(isoNow()));
      update.setIfMissing("queued_at", S(isoNow()));
      update.setIfMissing("attempts", N(0));
      update.setOrRemove("finished_at", undefined);
      const command = new (await ddb()).UpdateItemCommand({ TableName: tableName, Key: keyOf(job), ...update.build(notSucceeded(update)) });
      tally(result, job, await conditionalWrite("requeued", (abortSignal) => client.send(command, { abortSignal }), requestTimeoutMs, { requestId: job.requestId, batchId: job.batchId }));
    });
    return result;
  }

  // ---------------------------------------------------------------------------------------------
  // Reads (the CLI): they throw a LedgerError, because the caller must say the status is unknown.

  async function read<T>(operation: string, call: Call<T>): Promise<T> {
    try {
      return await send(call, requestTimeoutMs);
    } catch (error) {
      throw new LedgerError(operation, tableName, `ledger ${operation} on table ${tableName} failed: ${describeError(error)}`, { cause: error });
    }
  }

  async function* queryPartition(operation: string, pk: string, input: { jobsOnly: boolean; projection?: string[]; pageSize?: number; consistent?: boolean }) {
    const names: Record<string, string> = { "#pk": "pk" };
    const values: Record<string, AttributeValue> = { ":pk": S(pk) };
    let condition = "#pk = :pk";
    if (input.jobsOnly) {
      names["#sk"] = "sk";
      values[":job"] = S(JOB_SK_PREFIX);
      condition += " AND begins_with(#sk, :job)";
    }
    let projection: string | undefined;
    if (input.projection) {
      for (const attribute of input.projection) names[`#${attribute}`] = attribute;
      projection = input.projection.map((attribute) => `#${attribute}`).join(", ");
    }
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const command = new (await ddb()).QueryCommand({
        TableName: tableName,
        KeyConditionExpression: condition,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
        ...(projection ? { ProjectionExpression: projection } : {}),
        ...(input.pageSize ? { Limit: input.pageSize } : {}),
        ...(input.consistent ? { ConsistentRead: true } : {}),
        ...(startKey ? { ExclusiveStartKey: startKey } : {}),
      });
      const page: QueryCommandOutput = await read(operation, (abortSignal) => client.send(command, { abortSignal }));
      for (const item of page.Items ?? []) yield unmarshal(item);
      startKey = page.LastEvaluatedKey;
    } while (startKey);
  }

  async function batchStatus(batchId: string, opts: { consistent?: boolean } = {}): Promise<BatchStatus> {
    const counts = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
    const deadLetteredByReason: Record<string, number> = {};
    let expectedTotal: number | undefined;
    let recorded = 0;
    let lastUpdatedAt: string | undefined;
    const items = queryPartition("batch_status", batchPk(batchId), {
      jobsOnly: false,
      projection: ["sk", "state", "reason", "expected_total", "updated_at"],
      consistent: opts.consistent ?? false,
    });
    for await (const item of items) {
      if (typeof item.updated_at === "string" && (lastUpdatedAt === undefined || item.updated_at > lastUpdatedAt)) lastUpdatedAt = item.updated_at;
      if (item.sk === META_SK) {
        expectedTotal = typeof item.expected_total === "number" ? item.expected_total : undefined;
        continue;
      }
      const state = asState(item.state);
      recorded += 1;
      counts[state] += 1;
      if (state === "dead_lettered") {
        const reason = typeof item.reason === "string" ? item.reason : "unknown";
        deadLetteredByReason[reason] = (deadLetteredByReason[reason] ?? 0) + 1;
      }
    }
    const final = FINAL_STATES.reduce((sum, s) => sum + counts[s], 0);
    const pending = recorded - final;
    return {
      batchId,
      expectedTotal,
      recorded,
      counts,
      deadLetteredByReason,
      final,
      pending,
      done: expectedTotal !== undefined && pending === 0 && final >= expectedTotal,
      lastUpdatedAt,
    };
  }

  async function* batchJobs(batchId: string, opts: { pageSize?: number; consistent?: boolean } = {}): AsyncGenerator<LedgerJob> {
    for await (const item of queryPartition("batch_jobs", batchPk(batchId), { jobsOnly: true, ...opts })) yield toJob(item);
  }

  async function getJob(job: JobIdentity, opts: { consistent?: boolean } = {}): Promise<LedgerJob | undefined> {
    const command = new (await ddb()).GetItemCommand({ TableName: tableName, Key: keyOf(job), ConsistentRead: opts.consistent ?? false });
    const output: GetItemCommandOutput = await read("get_job", (abortSignal) => client.send(command, { abortSignal }));
    return output.Item ? toJob(unmarshal(output.Item)) : undefined;
  }

  return {
    recordQueued,
    recordBatch,
    recordNotSent,
    claim,
    recordOutcome,
    onOutcome: async (outcome) => {
      await recordOutcome(outcome);
    },
    recordRequeued,
    batchStatus,
    batchJobs,
    getJob,
    stats: () => ({ ...stats, failuresByOperation: { ...stats.failuresByOperation } }),
  };
}

// -----------------------------------------------------------------------------------------------
// Helpers.

function keyOf(job: JobIdentity): Record<string, AttributeValue> {
  const key = jobKey(job);
  return { pk: S(key.pk), sk: S(key.sk) };
}


function tally(result: BulkWriteResult, job: JobRef, outcome: WriteResult) {
  if (outcome === "written") result.written += 1;
  else if (outcome === "unchanged") result.unchanged += 1;
  else result.failed.push(job.requestId);
}

function requestIdOf(request: WriteRequest): string {
  return request.PutRequest?.Item?.request_id?.S ?? "unknown";
}

function isConditionFailure(error: unknown): boolean {
  return error instanceof Error && error.name === "ConditionalCheckFailedException";
}

function asState(value: unknown): JobState {
  return typeof value === "string" && (JOB_STATES as readonly string[]).includes(value) ? (value as JobState) : "queued";
}

function toJob(item: Record<string, unknown>): LedgerJob {
  const str = (name: string) => (typeof item[name] === "string" ? (item[name] as string) : undefined);
  const num = (name: string) => (typeof item[name] === "number" ? (item[name] as number) : undefined);
  const sk = str("sk") ?? "";
  return {
    requestId: str("request_id") ?? sk.slice(JOB_SK_PREFIX.length + (str("certificate_id")?.length ?? 0) + 1),
    batchId: str("batch_id"),
    certificateId: str("certificate_id"),
    source: str("source"),
    state: asState(item.state),
    reason: str("reason"),
    attempts: num("attempts") ?? 0,
    deliveries: num("deliveries") ?? 0,
    receiveCount: num("receive_count"),
    httpStatus: num("http_status"),
    errorCode: str("error_code"),
    errorMsg: str("error_msg"),
    messageId: str("message_id"),
    queuedAt: str("queued_at"),
    claimedAt: str("claimed_at"),
    requeuedAt: str("requeued_at"),
    updatedAt: str("updated_at"),
    finishedAt: str("finished_at"),
    expiresAt: num("expires_at"),
  };
}

function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Runs `task` over `items`, at most `limit` at once; `task` must not throw. */
async function forEachConcurrently<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await task(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

// -----------------------------------------------------------------------------------------------
// Marshalling: the few attribute types the ledger uses (lib-dynamodb / util-dynamodb are not installed).

const S = (value: string): AttributeValue => ({ S: value });
const N = (value: number): AttributeValue => ({ N: String(value) });
/** Empty strings are treated as absent (they say nothing, and key attributes refuse them). */
const optionalS = (value: string | undefined): AttributeValue | undefined => (value ? S(value) : undefined);

/** Plain values from a DynamoDB item: S → string, N → number, BOOL, NULL → null, M and L recursively. */
export function unmarshal(item: Record<string, AttributeValue>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(item).map(([name, value]) => [name, unmarshalValue(value)]));
}

function unmarshalValue(value: AttributeValue): unknown {
  if (value.S !== undefined) return value.S;
  if (value.N !== undefined) return Number(value.N);
  if (value.BOOL !== undefined) return value.BOOL;
  if (value.NULL !== undefined) return null;
  if (value.M !== undefined) return unmarshal(value.M);
  if (value.L !== undefined) return value.L.map(unmarshalValue);
  if (value.SS !== undefined) return [...value.SS];
  if (value.NS !== undefined) return value.NS.map(Number);
  return undefined;
}

/**
 * Builds an update expression with placeholders for every name and value (so reserved words such as
 * `state`, `source` and `reason` need no care).
 */
class UpdateBuilder {
  private readonly sets: string[] = [];
  private readonly removes: string[] = [];
  private readonly adds: string[] = [];
  private readonly names: Record<string, string> = {};
  private readonly values: Record<string, AttributeValue> = {};
  private valueCount = 0;

  name(attribute: string): string {
    const placeholder = `#${attribute}`;
    this.names[placeholder] = attribute;
    return placeholder;
  }

  value(value: AttributeValue): string {
    const placeholder = `:v${this.valueCount++}`;
    this.values[placeholder] = value;
    return placeholder;
  }

  set(attribute: string, value: AttributeValue): void {
    this.sets.push(`${this.name(attribute)} = ${this.value(value)}`);
  }

  /** Sets the attribute only if the item has none (first writer wins); nothing when `value` is undefined. */
  setIfMissing(attribute: string, value: AttributeValue | undefined): void {
    if (value === undefined) return;
    const name = this.name(attribute);
    this.sets.push(`${name} = if_not_exists(${name}, ${this.value(value)})`);
  }

  /** Sets the attribute, or removes it when `value` is undefined (a stale error must not survive). */
  setOrRemove(attribute: string, value: AttributeValue | undefined): void {
    if (value === undefined) this.removes.push(this.name(attribute));
    else this.set(attribute, value);
  }

  add(attribute: string, value: AttributeValue): void {
    this.adds.push(`${this.name(attribute)} ${this.value(value)}`);
  }

  build(condition?: string): {
    UpdateExpression?: string;
    ConditionExpression?: string;
    ExpressionAttributeNames?: Record<string, string>;
    ExpressionAttributeValues?: Record<string, AttributeValue>;
  } {
    const clauses = [
      this.sets.length ? `SET ${this.sets.join(", ")}` : "",
      this.removes.length ? `REMOVE ${this.removes.join(", ")}` : "",
      this.adds.length ? `ADD ${this.adds.join(", ")}` : "",
    ].filter(Boolean);
    return {
      ...(clauses.length ? { UpdateExpression: clauses.join(" ") } : {}),
      ...(condition ? { ConditionExpression: condition } : {}),
      ...(Object.keys(this.names).length ? { ExpressionAttributeNames: this.names } : {}),
      ...(Object.keys(this.values).length ? { ExpressionAttributeValues: this.values } : {}),
    };
  }
}
