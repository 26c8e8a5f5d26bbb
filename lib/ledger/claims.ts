/**
 * The worker's side of the ledger: the duplicate guard (`claim`, before the SCM call) and each
 * record's outcome. Both resolve within the worker's short time limit and never throw; on any
 * failure a claim answers `proceed` (SCM's own already-withdrawn check keeps a repeated call harmless).
 */
import { N, optionalS, S, UpdateBuilder } from "./marshal.ts";
import { keyOf, notSucceeded, type Store } from "./store.ts";
import {
  FINAL_STATES,
  MAX_ERROR_MSG_LENGTH,
  type ClaimResult,
  type JobRef,
  type LedgerOutcome,
  type WriteResult,
} from "./types.ts";

export async function claim(store: Store, job: JobRef): Promise<ClaimResult> {
  const update = new UpdateBuilder();
  store.identity(update, job);
  update.setIfMissing("state", S("queued"));
  update.setIfMissing("queued_at", S(store.isoNow()));
  update.setIfMissing("attempts", N(0));
  update.set("claimed_at", S(store.isoNow()));
  update.add("deliveries", N(1));
  const fields = { requestId: job.requestId, batchId: job.batchId, certificateId: job.certificateId };
  const result = await store.update(
    "claim",
    keyOf(job),
    update.build(notSucceeded(update)),
    store.limits.workerTimeoutMs,
    fields,
  );
  return result === "unchanged" ? "already_withdrawn_in_ledger" : "proceed";
}

export async function recordOutcome(store: Store, outcome: LedgerOutcome): Promise<WriteResult> {
  const job: JobRef = {
    requestId: outcome.requestId,
    batchId: outcome.request?.batch_id,
    certificateId: outcome.certificateId,
    source: outcome.request?.source,
    requestedBy: outcome.request?.requested_by,
    requestReason: outcome.request?.reason,
    requestedAt: outcome.request?.requested_at,
  };
  const final = (FINAL_STATES as readonly string[]).includes(outcome.state);
  const delivery = `${outcome.messageId}#${outcome.receiveCount}`;
  const { last } = outcome;
  const update = new UpdateBuilder();
  store.identity(update, job);
  update.set("state", S(outcome.state));
  const failing = outcome.state === "dead_lettered" || outcome.state === "retrying";
  update.setOrRemove("reason", failing ? optionalS(outcome.reason) : undefined);
  update.setOrRemove("http_status", last.httpStatus === undefined ? undefined : N(last.httpStatus));
  update.setOrRemove("error_code", optionalS(last.errorCode));
  update.setOrRemove("error_msg", optionalS(last.errorMsg?.slice(0, MAX_ERROR_MSG_LENGTH)));
  update.setOrRemove("finished_at", final ? S(store.isoNow()) : undefined);
  update.setIfMissing("queued_at", S(store.isoNow()));
  update.set("message_id", S(outcome.messageId));
  update.set("receive_count", N(outcome.receiveCount));
  update.set("last_delivery", S(delivery));
  update.add("attempts", N(outcome.attempts));
  // The same delivery reporting the same state again is a duplicate: nothing may change (attempts
  // would be added twice). A success is never overwritten, whatever a later delivery says.
  const lastDelivery = `${update.name("last_delivery")} = ${update.value(S(delivery))}`;
  const duplicate = `NOT (${lastDelivery} AND ${update.name("state")} = ${update.value(S(outcome.state))})`;
  const fields = { requestId: job.requestId, batchId: job.batchId, messageId: outcome.messageId, state: outcome.state };
  const expression = update.build(`${notSucceeded(update)} AND ${duplicate}`);
  return store.update("outcome", keyOf(job), expression, store.limits.workerTimeoutMs, fields);
}
