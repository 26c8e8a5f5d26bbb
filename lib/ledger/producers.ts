/**
 * The producers' side of the ledger (`enqueue`, `bulk`, the cleanup sweep, `dlq redrive`): jobs are
 * recorded as queued (or requeued) BEFORE they are sent, so no worker outcome can be overwritten; a
 * batch's expected total once it is known; jobs whose send failed are forgotten. Never throws.
 */
import type { AttributeValue, WriteRequest } from "@aws-sdk/client-dynamodb";
import { batchPk, jobKey, jobKeyString, META_SK } from "./keys.ts";
import { asState, N, optionalS, S, UpdateBuilder } from "./marshal.ts";
import { chunk, ddb, forEachConcurrently, keyOf, notSucceeded, type Store } from "./store.ts";
import {
  MAX_BATCH_GET,
  MAX_BATCH_WRITE,
  SUCCESS_STATES,
  type BatchTotal,
  type BulkWriteResult,
  type JobRef,
  type JobState,
  type QueuedResult,
  type WriteResult,
} from "./types.ts";

export async function recordBatch(
  store: Store,
  batchId: string,
  total: BatchTotal & { source?: string },
): Promise<WriteResult> {
  const { source } = total;
  const update = new UpdateBuilder();
  update.set("batch_id", S(batchId));
  if ("addToTotal" in total) update.add("expected_total", N(total.addToTotal));
  else update.set("expected_total", N(total.expectedTotal));
  update.setIfMissing("source", optionalS(source));
  update.setIfMissing("created_at", S(store.isoNow()));
  update.set("updated_at", S(store.isoNow()));
  update.set("expires_at", N(store.expiresAt()));
  const key = { pk: S(batchPk(batchId)), sk: S(META_SK) };
  return store.update("batch", key, update.build(), store.limits.requestTimeoutMs, { batchId, ...total });
}

export type QueuedOptions = { batchId?: string; expectedTotal?: number; source?: string };

export async function recordQueued(
  store: Store,
  jobs: readonly JobRef[],
  opts: QueuedOptions = {},
): Promise<QueuedResult> {
  const result: QueuedResult = {
    written: 0,
    alreadyQueued: 0,
    queuedBefore: [],
    reset: 0,
    alreadyDone: [],
    failed: [],
    batchRecorded: false,
  };
  if (opts.batchId && opts.expectedTotal !== undefined) {
    const batch = { expectedTotal: opts.expectedTotal, ...(opts.source ? { source: opts.source } : {}) };
    result.batchRecorded = (await recordBatch(store, opts.batchId, batch)) === "written";
  }
  // One item per key: BatchWriteItem refuses two writes to the same key in one call.
  const unique = new Map<string, JobRef>();
  for (const job of jobs) {
    const ref: JobRef = { ...job, batchId: job.batchId ?? opts.batchId, source: job.source ?? opts.source };
    if (unique.has(jobKeyString(ref))) result.alreadyQueued += 1;
    else unique.set(jobKeyString(ref), ref);
  }
  const all = [...unique.values()];
  const states = await existingStates(store, all);
  const fresh: JobRef[] = [];
  const toReset: JobRef[] = [];
  for (const job of all) {
    const state = states.get(jobKeyString(job));
    if (state === "unknown") result.failed.push(job.requestId);
    else if (state === undefined) fresh.push(job);
    else if (state === "queued") {
      result.alreadyQueued += 1;
      result.queuedBefore.push(job);
    } else if (SUCCESS_STATES.includes(state)) result.alreadyDone.push(job);
    else toReset.push(job);
  }
  await forEachConcurrently(chunk(fresh, MAX_BATCH_WRITE), store.limits.concurrency, async (group) => {
    const failedIds = await store.batchWrite(
      "queued",
      group.map((job) => ({ PutRequest: { Item: newJobItem(store, job) } }) satisfies WriteRequest),
    );
    result.written += group.length - failedIds.length;
    result.failed.push(...failedIds);
  });
  await forEachConcurrently(toReset, store.limits.concurrency, async (job) => {
    const written = await resetToQueued(store, job);
    if (written === "written") result.reset += 1;
    else if (written === "unchanged") result.alreadyDone.push(job);
    else result.failed.push(job.requestId);
  });
  return result;
}

/** What is already there (by `jobKeyString`), so a re-run never resets a job a worker has finished. */
async function existingStates(store: Store, jobs: readonly JobRef[]): Promise<Map<string, JobState | "unknown">> {
  const states = new Map<string, JobState | "unknown">();
  await forEachConcurrently(chunk(jobs, MAX_BATCH_GET), store.limits.concurrency, async (group) => {
    const found = await store.batchGet("queued", group);
    if (found === undefined) for (const job of group) states.set(jobKeyString(job), "unknown");
    else for (const [key, item] of found) states.set(key, asState(item.state?.S));
  });
  return states;
}

/** A job that failed or is being retried, queued again by a re-run (a success is never reset). */
async function resetToQueued(store: Store, job: JobRef): Promise<WriteResult> {
  const update = new UpdateBuilder();
  store.identity(update, job);
  update.set("state", S("queued"));
  update.set("queued_at", S(store.isoNow()));
  update.setOrRemove("finished_at", undefined);
  const fields = { requestId: job.requestId, batchId: job.batchId };
  return store.update("queued", keyOf(job), update.build(notSucceeded(update)), store.limits.requestTimeoutMs, fields);
}

function newJobItem(store: Store, job: JobRef): Record<string, AttributeValue> {
  const key = jobKey(job);
  const at = store.isoNow();
  const item = {
    pk: S(key.pk),
    sk: S(key.sk),
    request_id: S(job.requestId),
    state: S("queued"),
    attempts: N(0),
    queued_at: S(at),
    updated_at: S(at),
    expires_at: N(store.expiresAt()),
    ...(job.certificateId ? { certificate_id: S(job.certificateId) } : {}),
    ...(job.source ? { source: S(job.source) } : {}),
    ...(job.batchId ? { batch_id: S(job.batchId) } : {}),
    ...(job.requestedBy ? { requested_by: S(job.requestedBy) } : {}),
    ...(job.requestReason ? { request_reason: S(job.requestReason) } : {}),
    ...(job.requestedAt ? { requested_at: S(job.requestedAt) } : {}),
  };
  return item;
}

export async function recordNotSent(store: Store, jobs: readonly JobRef[]): Promise<BulkWriteResult> {
  const result: BulkWriteResult = { written: 0, unchanged: 0, failed: [] };
  await forEachConcurrently(jobs, store.limits.concurrency, async (job) => {
    const update = new UpdateBuilder();
    const state = update.name("state");
    const condition = `${state} = ${update.value(S("queued"))} AND attribute_not_exists(${update.name("deliveries")})`;
    const command = new (await ddb()).DeleteItemCommand({
      TableName: store.tableName,
      Key: keyOf(job),
      ...update.build(condition),
    });
    const call = (abortSignal: AbortSignal) => store.client.send(command, { abortSignal });
    const fields = { requestId: job.requestId, batchId: job.batchId };
    tally(result, job, await store.conditionalWrite("not_sent", call, store.limits.requestTimeoutMs, fields));
  });
  return result;
}

/**
 * `dlq redrive`: marks jobs requeued before their messages go back. Batched (one BatchGetItem per 100
 * jobs, one BatchWriteItem per 25) rather than one conditional UpdateItem each, which held a redrive to
 * 1/12 of its rate: each item is read (consistently), a success is left alone, the others are written
 * back as requeued. The price of batching: an outcome a worker records for the same job between the
 * read and the write (only possible for a duplicate message of a dead-lettered job) is overwritten;
 * the redriven message then finds the certificate already withdrawn, so the job still ends final.
 */
export async function recordRequeued(store: Store, jobs: readonly JobRef[]): Promise<BulkWriteResult> {
  const result: BulkWriteResult = { written: 0, unchanged: 0, failed: [] };
  const unique = [...new Map(jobs.map((job) => [jobKeyString(job), job])).values()];
  const puts: { job: JobRef; item: Record<string, AttributeValue> }[] = [];
  await forEachConcurrently(chunk(unique, MAX_BATCH_GET), store.limits.concurrency, async (group) => {
    const found = await store.batchGet("requeued", group, true);
    for (const job of group) {
      const existing = found?.get(jobKeyString(job));
      if (found === undefined) result.failed.push(job.requestId);
      else if (existing && SUCCESS_STATES.includes(asState(existing.state?.S))) result.unchanged += 1;
      else puts.push({ job, item: requeuedItem(store, job, existing) });
    }
  });
  await forEachConcurrently(chunk(puts, MAX_BATCH_WRITE), store.limits.concurrency, async (group) => {
    const failedIds = await store.batchWrite(
      "requeued",
      group.map(({ item }) => ({ PutRequest: { Item: item } })),
    );
    result.written += group.length - failedIds.length;
    result.failed.push(...failedIds);
  });
  return result;
}

/** A job's item as `requeued`: what it had (or a new one), pending again. */
function requeuedItem(
  store: Store,
  job: JobRef,
  existing: Record<string, AttributeValue> | undefined,
): Record<string, AttributeValue> {
  const at = store.isoNow();
  const audit = newJobItem(store, job);
  const kept = { ...(existing ?? audit) };
  delete kept.finished_at;
  // What the job already says wins (first writer, as `identity` does); the state and times are new.
  return {
    ...audit,
    ...kept,
    request_id: S(job.requestId),
    state: S("requeued"),
    requeued_at: S(at),
    updated_at: S(at),
    expires_at: N(store.expiresAt()),
  };
}

function tally(result: BulkWriteResult, job: JobRef, outcome: WriteResult) {
  if (outcome === "written") result.written += 1;
  else if (outcome === "unchanged") result.unchanged += 1;
  else result.failed.push(job.requestId);
}
