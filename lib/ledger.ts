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
 * marshalling helpers of ledger/marshal.ts. The Lambda bundle imports this file: nothing here pulls in
 * `zod` (only `zod/mini`, through lib/message.ts).
 *
 * The code, by role: ledger/types.ts (states, results, options), ledger/keys.ts (where items live),
 * ledger/store.ts (time-limited calls, breaker, batched reads and writes), ledger/claims.ts (the
 * worker), ledger/producers.ts (queued, requeued, not sent, batch totals), ledger/queries.ts (the CLI).
 */
import * as claims from "./ledger/claims.ts";
import * as producers from "./ledger/producers.ts";
import * as queries from "./ledger/queries.ts";
import { createStore } from "./ledger/store.ts";
import type { Ledger, LedgerOptions } from "./ledger/types.ts";

export * from "./ledger/types.ts";
export { jobKey, jobKeyString, jobRefFromBody, jobRefFromRequest } from "./ledger/keys.ts";
export { unmarshal } from "./ledger/marshal.ts";

export function createLedger(options: LedgerOptions): Ledger {
  const store = createStore(options);
  return {
    recordQueued: (jobs, opts) => producers.recordQueued(store, jobs, opts),
    recordBatch: (batchId, opts) => producers.recordBatch(store, batchId, opts),
    recordNotSent: (jobs) => producers.recordNotSent(store, jobs),
    recordRequeued: (jobs) => producers.recordRequeued(store, jobs),
    claim: (job) => claims.claim(store, job),
    recordOutcome: (outcome) => claims.recordOutcome(store, outcome),
    onOutcome: async (outcome) => {
      await claims.recordOutcome(store, outcome);
    },
    batchStatus: (batchId, opts) => queries.batchStatus(store, batchId, opts),
    batchJobs: (batchId, opts) => queries.batchJobs(store, batchId, opts),
    getJob: (job, opts) => queries.getJob(store, job, opts),
    findJobs: (id) => queries.findJobs(store, id),
    stats: () => ({ ...store.stats, failuresByOperation: { ...store.stats.failuresByOperation } }),
  };
}
