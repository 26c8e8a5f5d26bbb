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
export function resumeDecisions(
  queued: Pick<QueuedResult, "alreadyDone" | "queuedBefore">,
  options: { resendQueued: boolean },
) {
  const done = new Set(queued.alreadyDone.map(jobKeyString));
  const held = new Set(options.resendQueued ? [] : queued.queuedBefore.map(jobKeyString));
  return (job: JobRef): ResumeDecision => {
    const key = jobKeyString(job);
    if (done.has(key)) return "already_done";
    return held.has(key) ? "already_queued" : "send";
  };
}

/** Flags that say where the jobs go and how the file reads: without them the resumed run would talk to another queue. */
const CARRIED_FLAGS = ["format", "queue-url", "region", "endpoint-url", "ledger-table"] as const;

/** The command that resumes an interrupted run: same file, same batch id, same reason, same queue and ledger. */
export function resumeCommand(
  file: string,
  batchId: string,
  reason: string | undefined,
  given: Readonly<Record<string, unknown>> = {},
): string {
  const quote = (text: string) => (/^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, "'\\''")}'`);
  const carried = CARRIED_FLAGS.flatMap((name) => {
    const value = given[name];
    return typeof value === "string" ? [`--${name}`, quote(value)] : [];
  });
  const why = reason === undefined ? [] : ["--reason", quote(reason)];
  return ["scm-withdraw bulk", quote(file), "--batch-id", quote(batchId), ...why, ...carried].join(" ");
}
