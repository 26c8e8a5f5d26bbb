/**
 * The sweep's last phase: one withdrawal job per selected certificate, sent with the shared producer
 * (`lib/producer.ts`). With the ledger, the jobs are recorded as queued before they are sent (so no
 * worker outcome can come before "queued"), under the run id as batch id, and the run's total at the end.
 */
import type { CleanupDependencies, CleanupFailure, CleanupJob } from "./cleanup-types.ts";
import { CleanupError } from "./errors.ts";
import type { CleanupFilters } from "./cleanup-config.ts";
import type { JobRef } from "./ledger.ts";
import { buildWithdrawalBody } from "./message.ts";

export async function enqueueJobs(
  deps: CleanupDependencies,
  runId: string,
  selected: readonly CleanupJob[],
  filters: Pick<CleanupFilters, "reason">,
): Promise<{ enqueued: CleanupJob[]; failed: CleanupFailure[] }> {
  const enqueued: CleanupJob[] = [];
  const failed: CleanupFailure[] = [];
  if (selected.length === 0) return { enqueued, failed };
  if (!deps.createSender)
    throw new CleanupError(
      "enqueue_failed",
      "enqueue mode needs a queue: no sender was configured (WITHDRAWAL_QUEUE_URL / --queue-url)",
    );
  if (deps.confirm && !(await deps.confirm(selected)))
    throw new CleanupError("not_confirmed", "not confirmed: nothing was enqueued");
  const byId = new Map(selected.map((job) => [job.certificateId, job]));
  const sender = deps.createSender((result) => {
    const job = byId.get(result.key)!;
    if (result.ok) enqueued.push({ ...job, messageId: result.messageId });
    else failed.push({ certificateId: result.key, error: result.error });
  });
  const requestedAt = new Date((deps.now ?? Date.now)()).toISOString();
  // One id per run and certificate: a retried invocation of the same scheduled event sends the same ids.
  const requestId = (certificateId: string) => `${runId}-${certificateId}`;
  const audit = { requestedBy: deps.requestedBy, requestReason: filters.reason, requestedAt };
  const ref = (certificateId: string): JobRef => ({
    requestId: requestId(certificateId),
    batchId: runId,
    certificateId,
    source: "cleanup",
    ...audit,
  });
  await deps.ledger?.recordQueued(
    selected.map((job) => ref(job.certificateId)),
    { batchId: runId, source: "cleanup" },
  );
  for (const job of selected) {
    const body = buildWithdrawalBody({
      certificate_id: job.certificateId,
      source: "cleanup",
      batch_id: runId,
      request_id: requestId(job.certificateId),
      reason: filters.reason,
      requested_at: requestedAt,
      ...(deps.requestedBy ? { requested_by: deps.requestedBy } : {}),
    });
    await sender.push({ key: job.certificateId, body });
  }
  await sender.flush();
  if (deps.ledger) {
    if (failed.length > 0) await deps.ledger.recordNotSent(failed.map((f) => ref(f.certificateId)));
    await deps.ledger.recordBatch(runId, { expectedTotal: enqueued.length, source: "cleanup" });
  }
  // Completion order is arbitrary; the report follows the listing order.
  const order = new Map(selected.map((job, index) => [job.certificateId, index]));
  enqueued.sort((a, b) => order.get(a.certificateId)! - order.get(b.certificateId)!);
  return { enqueued, failed };
}
