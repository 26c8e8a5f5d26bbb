/**
 * Reads for the CLI (`batch status`, `batch report`, `job`): each is a Query (or a GetItem), never a
 * Scan, and throws a `LedgerError` when the ledger cannot answer (the caller must say it is unknown).
 */
import type { AttributeValue, GetItemCommandOutput, QueryCommandOutput } from "@aws-sdk/client-dynamodb";
import { batchPk, JOB_SK_PREFIX, META_SK } from "./keys.ts";
import { asState, S, toJob, unmarshal } from "./marshal.ts";
import { chunk, ddb, keyOf, type Store } from "./store.ts";
import { CERTIFICATE_ID_PATTERN } from "../message.ts";
import {
  FINAL_STATES,
  JOB_STATES,
  LEDGER_TABLE_SCHEMA,
  LedgerError,
  MAX_BATCH_GET,
  type BatchStatus,
  type JobIdentity,
  type JobState,
  type LedgerJob,
} from "./types.ts";

interface QueryInput {
  /** The partition (or, with `index`, the index's key) to read. */
  key: { name: string; value: string };
  index?: string;
  jobsOnly?: boolean;
  projection?: string[];
  pageSize?: number;
  consistent?: boolean;
}

/** Every item of one key, page by page. */
async function* query(store: Store, operation: string, input: QueryInput): AsyncGenerator<Record<string, unknown>> {
  const names: Record<string, string> = { "#k": input.key.name };
  const values: Record<string, AttributeValue> = { ":k": S(input.key.value) };
  let condition = "#k = :k";
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
      TableName: store.tableName,
      ...(input.index ? { IndexName: input.index } : {}),
      KeyConditionExpression: condition,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
      ...(projection ? { ProjectionExpression: projection } : {}),
      ...(input.pageSize ? { Limit: input.pageSize } : {}),
      ...(input.consistent ? { ConsistentRead: true } : {}),
      ...(startKey ? { ExclusiveStartKey: startKey } : {}),
    });
    const page: QueryCommandOutput = await store.read(operation, (abortSignal) =>
      store.client.send(command, { abortSignal }),
    );
    for (const item of page.Items ?? []) yield unmarshal(item);
    startKey = page.LastEvaluatedKey;
  } while (startKey);
}

export async function batchStatus(
  store: Store,
  batchId: string,
  opts: { consistent?: boolean } = {},
): Promise<BatchStatus> {
  const counts = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
  const deadLetteredByReason: Record<string, number> = {};
  let expectedTotal: number | undefined;
  let recorded = 0;
  let lastUpdatedAt: string | undefined;
  const items = query(store, "batch_status", {
    key: { name: "pk", value: batchPk(batchId) },
    projection: ["sk", "state", "reason", "expected_total", "updated_at"],
    consistent: opts.consistent ?? false,
  });
  for await (const item of items) {
    const updatedAt = item.updated_at;
    if (typeof updatedAt === "string" && (lastUpdatedAt === undefined || updatedAt > lastUpdatedAt))
      lastUpdatedAt = updatedAt;
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
  const done = expectedTotal !== undefined && pending === 0 && final >= expectedTotal;
  return { batchId, expectedTotal, recorded, counts, deadLetteredByReason, final, pending, done, lastUpdatedAt };
}

export async function* batchJobs(
  store: Store,
  batchId: string,
  opts: { pageSize?: number; consistent?: boolean } = {},
): AsyncGenerator<LedgerJob> {
  for await (const item of query(store, "batch_jobs", {
    key: { name: "pk", value: batchPk(batchId) },
    jobsOnly: true,
    ...opts,
  }))
    yield toJob(item);
}

export async function getJob(
  store: Store,
  job: JobIdentity,
  opts: { consistent?: boolean } = {},
): Promise<LedgerJob | undefined> {
  const command = new (await ddb()).GetItemCommand({
    TableName: store.tableName,
    Key: keyOf(job),
    ConsistentRead: opts.consistent ?? false,
  });
  const output: GetItemCommandOutput = await store.read("get_job", (abortSignal) =>
    store.client.send(command, { abortSignal }),
  );
  return output.Item ? toJob(unmarshal(output.Item)) : undefined;
}

/**
 * Every job of a certificate or of a request_id, across batches and manual enqueues, oldest first:
 * one Query per index (an id shaped like a certificate id is looked up as both).
 */
export async function findJobs(store: Store, id: string): Promise<LedgerJob[]> {
  const { byCertificate, byRequest } = LEDGER_TABLE_SCHEMA.indexes;
  const indexes = CERTIFICATE_ID_PATTERN.test(id) ? [byCertificate, byRequest] : [byRequest];
  // The indexes hold keys only (so a job's many updates never write to them): read the items after.
  const keys = new Map<string, { pk: AttributeValue; sk: AttributeValue }>();
  for (const index of indexes) {
    const items = query(store, "find_jobs", { index: index.name, key: { name: index.partitionKey, value: id } });
    // The certificate index also holds the sweep's sightings (lib/sightings.ts): jobs only.
    for await (const item of items)
      if (String(item.sk).startsWith(JOB_SK_PREFIX))
        keys.set(`${String(item.pk)}\n${String(item.sk)}`, { pk: S(String(item.pk)), sk: S(String(item.sk)) });
  }
  const found: LedgerJob[] = [];
  for (const group of chunk([...keys.values()], MAX_BATCH_GET)) {
    const items = await store.batchGet("find_jobs", group, true);
    if (items === undefined)
      throw new LedgerError(
        "find_jobs",
        store.tableName,
        `ledger find_jobs on table ${store.tableName} failed (see the warning above)`,
      );
    for (const item of items.values()) found.push(toJob(unmarshal(item)));
  }
  const when = (job: LedgerJob) => job.queuedAt ?? job.updatedAt ?? "";
  return found.sort((a, b) => when(a).localeCompare(when(b)));
}
