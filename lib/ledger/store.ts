/**
 * The ledger's store: one DynamoDB table behind time-limited calls, a breaker (after a few failures
 * in a row the table is skipped for a while, so an outage costs a Lambda invocation almost nothing),
 * the counters behind `stats()`, batched reads and writes with their retries, and the attributes every
 * job item carries. The role files (claims, producers, queries) do their work through it.
 */
import type {
  AttributeValue,
  BatchGetItemCommandOutput,
  BatchWriteItemCommandOutput,
  DynamoDBClient,
  KeysAndAttributes,
  WriteRequest,
} from "@aws-sdk/client-dynamodb";
import { describeError } from "../errors.ts";
import { silentLogger, type Logger } from "../logger.ts";
import { backoffDelay, sleep as defaultSleep } from "../retry.ts";
export { forEachConcurrently } from "../concurrency.ts";
import { jobKey } from "./keys.ts";
import { N, optionalS, S, type UpdateBuilder } from "./marshal.ts";
import {
  DEFAULT_TTL_DAYS,
  LedgerError,
  LedgerTimeoutError,
  type JobIdentity,
  type JobRef,
  type LedgerOperation,
  type LedgerOptions,
  type LedgerStats,
  type WriteResult,
} from "./types.ts";

/**
 * The DynamoDB commands, imported on first use. A static import would be hoisted to the top of the
 * Lambda bundle (esbuild keeps external imports at module level) and load the DynamoDB SDK at every
 * cold start, ledger or not: about 20 ms measured by `npm run bench`.
 */
let sdk: Promise<typeof import("@aws-sdk/client-dynamodb")> | undefined;
export const ddb = () => (sdk ??= import("@aws-sdk/client-dynamodb"));

/** One SDK call, given the signal that aborts it at the time limit. */
export type Call<T> = (abortSignal: AbortSignal) => Promise<T>;

export type Store = ReturnType<typeof createStore>;

export function createStore(options: LedgerOptions) {
  const { client, tableName } = options;
  const logger = options.logger ?? silentLogger;
  const now = options.now ?? Date.now;
  const ttlSeconds = Math.round((options.ttlDays ?? DEFAULT_TTL_DAYS) * 86_400);
  const limits = {
    workerTimeoutMs: options.workerTimeoutMs ?? 1000,
    requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
    concurrency: Math.max(1, options.concurrency ?? 4),
  };
  const { stats, breakerOpen, succeeded, failed, skipped } = createHealth(options, logger, now);

  /** Runs one conditional write. `unchanged` when its condition failed; `failed`/`skipped` never throw. */
  async function conditionalWrite(
    operation: LedgerOperation,
    call: Call<unknown>,
    timeoutMs: number,
    fields: Record<string, unknown>,
  ): Promise<WriteResult> {
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

  /** Runs one UpdateItem on a key as a conditional write. */
  async function update(
    operation: LedgerOperation,
    key: Record<string, AttributeValue>,
    expression: ReturnType<UpdateBuilder["build"]>,
    timeoutMs: number,
    fields: Record<string, unknown>,
  ) {
    const command = new (await ddb()).UpdateItemCommand({ TableName: tableName, Key: key, ...expression });
    return conditionalWrite(operation, (abortSignal) => client.send(command, { abortSignal }), timeoutMs, fields);
  }

  /** A read for the CLI: it throws a LedgerError, because the caller must say the status is unknown. */
  async function read<T>(operation: string, call: Call<T>): Promise<T> {
    try {
      return await send(call, limits.requestTimeoutMs);
    } catch (error) {
      throw new LedgerError(
        operation,
        tableName,
        `ledger ${operation} on table ${tableName} failed: ${describeError(error)}`,
        { cause: error },
      );
    }
  }

  const retries = {
    max: options.maxBatchRetries ?? 8,
    sleep: options.sleep ?? ((ms: number) => defaultSleep(ms)),
    random: options.random ?? Math.random,
  };
  const batched = {
    tableName,
    client,
    retries,
    breakerOpen,
    succeeded,
    failed,
    skipped,
    stats,
    timeoutMs: limits.requestTimeoutMs,
  };
  const isoNow = () => new Date(now()).toISOString();
  const expiresAt = () => Math.floor(now() / 1000) + ttlSeconds;

  return {
    client,
    tableName,
    logger,
    limits,
    stats,
    isoNow,
    expiresAt,
    conditionalWrite,
    update,
    read,
    /** Writes up to 25 requests, resending unprocessed ones with backoff; returns the jobs' request ids that failed. */
    batchWrite: (operation: LedgerOperation, requests: WriteRequest[]) => batchWrite(batched, operation, requests),
    /**
     * Up to 100 jobs' items (only `pk`, `sk` and `state` unless `whole`), by `jobKeyString`; missing
     * items are absent; undefined when the read failed.
     */
    batchGet: (operation: LedgerOperation, group: readonly (JobIdentity | Item)[], whole = false) =>
      batchGet(batched, operation, group, whole),
    /** The attributes every write of a job sets when it knows them, without overwriting what is there. */
    identity(update: UpdateBuilder, job: JobRef) {
      update.set("request_id", S(job.requestId));
      update.setIfMissing("certificate_id", optionalS(job.certificateId));
      update.setIfMissing("source", optionalS(job.source));
      update.setIfMissing("batch_id", optionalS(job.batchId));
      update.setIfMissing("requested_by", optionalS(job.requestedBy));
      update.setIfMissing("request_reason", optionalS(job.requestReason));
      update.setIfMissing("requested_at", optionalS(job.requestedAt));
      update.set("updated_at", S(isoNow()));
      update.set("expires_at", N(expiresAt()));
    },
  };
}

/**
 * The ledger's health: counters behind `stats()`, and the breaker. After `breakerThreshold` failures in
 * a row, calls are skipped for `breakerCooldownMs`; the first call after that probes again.
 */
function createHealth(options: LedgerOptions, logger: Logger, now: () => number) {
  const tableName = options.tableName;
  const breaker = {
    threshold: options.breakerThreshold ?? 5,
    cooldownMs: options.breakerCooldownMs ?? 30_000,
    inARow: 0,
    openUntil: 0,
  };
  const stats: LedgerStats = {
    writes: 0,
    unchanged: 0,
    failures: 0,
    skipped: 0,
    failuresByOperation: { claim: 0, outcome: 0, queued: 0, batch: 0, requeued: 0, not_sent: 0, find_jobs: 0 },
  };

  const breakerOpen = () => breaker.inARow >= breaker.threshold && now() < breaker.openUntil;

  function succeeded() {
    if (breaker.inARow >= breaker.threshold) logger.info("ledger_recovered", { table: tableName });
    breaker.inARow = 0;
  }

  function failed(operation: LedgerOperation, error: unknown, fields: Record<string, unknown>) {
    stats.failures += 1;
    stats.failuresByOperation[operation] += 1;
    breaker.inARow += 1;
    logger.warn("ledger_write_failed", { operation, table: tableName, ...fields, error: describeError(error) });
    if (breaker.inARow >= breaker.threshold) {
      // (Re)open: while open, calls are skipped; the first call after the cooldown probes again.
      if (now() >= breaker.openUntil)
        logger.error("ledger_unavailable", {
          table: tableName,
          failuresInARow: breaker.inARow,
          skipForMs: breaker.cooldownMs,
        });
      breaker.openUntil = now() + breaker.cooldownMs;
    }
    options.onFailure?.(operation, "failed");
  }

  function skipped(operation: LedgerOperation) {
    stats.skipped += 1;
    options.onFailure?.(operation, "skipped");
  }

  return { stats, breakerOpen, succeeded, failed, skipped };
}

interface Batched {
  tableName: string;
  client: DynamoDBClient;
  retries: { max: number; sleep: (ms: number) => Promise<void>; random: () => number };
  breakerOpen(): boolean;
  succeeded(): void;
  failed(operation: LedgerOperation, error: unknown, fields: Record<string, unknown>): void;
  skipped(operation: LedgerOperation): void;
  stats: LedgerStats;
  timeoutMs: number;
}

async function batchWrite(store: Batched, operation: LedgerOperation, requests: WriteRequest[]): Promise<string[]> {
  const { tableName, client } = store;
  let pending = requests;
  for (let attempt = 0; ; attempt++) {
    if (store.breakerOpen()) {
      store.skipped(operation);
      return pending.map(requestIdOf);
    }
    let output: BatchWriteItemCommandOutput;
    try {
      const command = new (await ddb()).BatchWriteItemCommand({ RequestItems: { [tableName]: pending } });
      output = await send((abortSignal) => client.send(command, { abortSignal }), store.timeoutMs);
      store.succeeded();
    } catch (error) {
      store.failed(operation, error, { jobs: pending.length, step: "write" });
      return pending.map(requestIdOf);
    }
    const unprocessed = output.UnprocessedItems?.[tableName] ?? [];
    store.stats.writes += pending.length - unprocessed.length;
    if (unprocessed.length === 0) return [];
    if (attempt >= store.retries.max) {
      store.failed(operation, new Error(`${unprocessed.length} items still unprocessed after ${attempt + 1} writes`), {
        step: "write",
      });
      return unprocessed.map(requestIdOf);
    }
    // Unprocessed items mean throttling: back off before resending only those (AWS guidance).
    await store.retries.sleep(batchBackoff(store, attempt));
    pending = unprocessed;
  }
}

type Item = Record<string, AttributeValue>;

async function batchGet(
  store: Batched,
  operation: LedgerOperation,
  group: readonly (JobIdentity | Item)[],
  whole: boolean,
): Promise<Map<string, Item> | undefined> {
  const { tableName, client } = store;
  const found = new Map<string, Item>();
  const projection = {
    ProjectionExpression: "#pk, #sk, #st",
    ExpressionAttributeNames: { "#pk": "pk", "#sk": "sk", "#st": "state" },
  };
  // A whole item is read to be written back (recordRequeued): consistently, to keep the window short.
  // A job (its key is worked out) or an item's key as read from an index.
  const keys = group.map((job) =>
    "pk" in job && typeof job.pk === "object" ? { pk: job.pk, sk: job.sk! } : keyOf(job as JobIdentity),
  );
  let pending: KeysAndAttributes | undefined = { Keys: keys, ...(whole ? { ConsistentRead: true } : projection) };
  for (let attempt = 0; pending?.Keys?.length; attempt++) {
    if (store.breakerOpen()) {
      store.skipped(operation);
      return undefined;
    }
    let output: BatchGetItemCommandOutput;
    try {
      const command = new (await ddb()).BatchGetItemCommand({ RequestItems: { [tableName]: pending } });
      output = await send((abortSignal) => client.send(command, { abortSignal }), store.timeoutMs);
      store.succeeded();
    } catch (error) {
      store.failed(operation, error, { jobs: group.length, step: "read_existing" });
      return undefined;
    }
    for (const raw of output.Responses?.[tableName] ?? []) found.set(`${raw.pk?.S}\n${raw.sk?.S}`, raw);
    pending = output.UnprocessedKeys?.[tableName];
    if (pending?.Keys?.length) {
      if (attempt >= store.retries.max) {
        store.failed(operation, new Error(`${pending.Keys.length} keys still unprocessed after ${attempt + 1} reads`), {
          step: "read_existing",
        });
        return undefined;
      }
      await store.retries.sleep(batchBackoff(store, attempt));
    }
  }
  return found;
}

/** Full jitter, 50 ms doubling to 2 s. */
const batchBackoff = (store: Batched, attempt: number) => backoffDelay(attempt, BATCH_BACKOFF, store.retries.random);
/** Unprocessed items of a batch call are written again after a jittered wait (DynamoDB's own advice). */
const BATCH_BACKOFF = { baseMs: 50, capMs: 2000 } as const;

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

export function keyOf(job: JobIdentity): Record<string, AttributeValue> {
  const key = jobKey(job);
  return { pk: S(key.pk), sk: S(key.sk) };
}

/** Condition: the job is not a sticky success. Missing items and missing states pass. */
export function notSucceeded(update: UpdateBuilder): string {
  const state = update.name("state");
  return `(attribute_not_exists(${state}) OR NOT (${state} IN (${update.value(S("withdrawn"))}, ${update.value(S("already_withdrawn"))})))`;
}

function requestIdOf(request: WriteRequest): string {
  return request.PutRequest?.Item?.request_id?.S ?? "unknown";
}

function isConditionFailure(error: unknown): boolean {
  return error instanceof Error && error.name === "ConditionalCheckFailedException";
}

export function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
