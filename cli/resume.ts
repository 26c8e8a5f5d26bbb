/**
 * Resuming a bulk run: a re-run of the same file with the same --batch-id sends only the jobs the
 * ledger does not already hold as queued (sent by an earlier run, waiting in the queue) or done.
 */
import { jobKeyString, type JobRef, type QueuedResult } from "../lib/ledger.ts";

export type ResumeDecision = "send" | "already_done" | "already_queued";

/**
 * What to do with each job of a chunk the ledger has just recorded. `resendQueued` sends the queued
 * ones again (after a run was killed outright between recording a chunk and sending it: a second
 * message for a job is harmless, the duplicate guard and SCM's own check keep it from a second withdrawal).
 */
export function resumeDecisions(queued: Pick<QueuedResult, "alreadyDone" | "queuedBefore">, options: { resendQueued: boolean }) {
  const done = new Set(queued.alreadyDone.map(jobKeyString));
  const held = new Set(options.resendQueued ? [] : queued.queuedBefore.map(jobKeyString));
  return (job: JobRef): ResumeDecision => {
    const key = jobKeyString(job);
    if (done.has(key)) return "already_done";
    return held.has(key) ? "already_queued" : "send";
  };
}

/** The command that resumes an interrupted run: same file, same batch id, same reason. */
export function resumeCommand(file: string, batchId: string, reason: string | undefined): string {
  const quote = (text: string) => (/^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, "'\\''")}'`);
  return ["scm-withdraw bulk", quote(file), "--batch-id", quote(batchId), ...(reason === undefined ? [] : ["--reason", quote(reason)])].join(" ");
}
