/**
 * `scm-withdraw dlq redrive`: moves dead-lettered jobs back to the withdrawals queue, selectively.
 *
 * SQS's own redrive (`StartMessageMoveTask`) moves everything and keeps the DLQ's attributes; an
 * operator usually wants one reason at a time (e.g. `retries_exhausted` after an SCM outage, not
 * `invalid_message`). So this is a receive → send → delete loop: the ORIGINAL body is sent first,
 * byte for byte and without the DLQ attributes, and a message is deleted from the DLQ only after
 * its send succeeded. A message whose send fails stays in the DLQ, visible again when the run ends.
 * Only messages that were in the DLQ when the run started are moved (see `cli/dlq.ts`), so a job
 * that fails again while the run goes on is not redriven in a loop.
 */
import type { JobRef } from "../../lib/ledger.ts";
import { parseWithdrawalBody } from "../../lib/message.ts";
import { createSender, type SendResult } from "../../lib/producer.ts";
import { integerFlag, stringFlag, UsageError } from "../args.ts";
import { EXIT, type Command } from "../context.ts";
import { HEADS } from "./index.ts";
import { createDlqScanner, DLQ_REASONS, type DlqMessage } from "../dlq.ts";
import { displayId, formatTable, plural, queueName } from "../output.ts";
import { reasonFilter } from "./dlq-list.ts";

interface Failure {
  message: DlqMessage;
  /** `send`: not sent, still in the DLQ. `delete`: sent, but still in the DLQ too (a later redrive would send it again). */
  stage: "send" | "delete";
  error: string;
  newMessageId?: string;
}

export const dlqRedriveCommand: Command = {
  ...HEADS.dlqRedrive,
  description: [
    "Sends each matching message's original body, byte for byte and without the DLQ attributes, to the",
    "withdrawals queue, and deletes it from the dead-letter queue only after that send succeeded.",
    "Messages that do not match --reason (and those beyond --max) stay in the DLQ and are visible again",
    "as soon as the run ends. Only messages already in the DLQ when the run starts are moved: a job that",
    "fails again meanwhile is dead-lettered as a new message and waits for the next run (no loop).",
    "Fix the cause first (e.g. wait out an SCM outage), then redrive.",
    `Reasons: ${DLQ_REASONS.join(", ")}.`,
    "With the ledger (LEDGER_TABLE / --ledger-table, or the local pipeline's), each job is recorded as",
    "requeued before it is sent back (only jobs whose body has a request_id: the worker keys the others",
    "by their new SQS message id), so `batch status` shows it pending again until its new outcome.",
    "Exit 1 if any matching message could not be moved.",
  ].join("\n"),
  options: {
    reason: { type: "string", valueName: "R", description: "move only these failure reasons (comma-separated; default: all)" },
    max: { type: "string", valueName: "N", description: "move at most N messages" },
    "dry-run": { type: "boolean", description: "show what would move; move nothing" },
  },
  async run(context, { values, positionals }) {
    if (positionals.length > 0) throw new UsageError(`dlq redrive takes no arguments (got ${JSON.stringify(positionals[0])})`, "dlq redrive");
    const reasons = reasonFilter(stringFlag(values, "reason"), "dlq redrive");
    const max = integerFlag(values, "max", { min: 1, max: 1_000_000 }, "dlq redrive");
    const dryRun = values["dry-run"] === true;
    const dlqUrl = await context.dlqUrl();
    const { queueUrl } = context.target;
    if (!dryRun) await context.checkQueue(queueUrl);

    const ledger = dryRun ? undefined : await context.ledger();
    let notRecorded = 0;
    const scanner = createDlqScanner({ sqs: context.sqs, url: dlqUrl, waitSeconds: context.io.dlqWaitSeconds ?? 1 });
    const moved: { message: DlqMessage; messageId: string }[] = [];
    const wouldMove: DlqMessage[] = [];
    const failures: Failure[] = [];
    let scanned = 0;
    let notMatching = 0;
    let stoppedAtMax = false;
    let interrupted = false;
    let releaseFailed = 0;
    const matched = () => moved.length + wouldMove.length + failures.length;

    try {
      while (!stoppedAtMax) {
        const batch = await context.call(dlqUrl, () => scanner.next());
        if (batch === undefined) break;
        const candidates: DlqMessage[] = [];
        for (const message of batch) {
          scanned++;
          if (reasons && !reasons.has(message.reason)) notMatching++;
          else if (max !== undefined && matched() + candidates.length >= max) stoppedAtMax = true;
          else candidates.push(message);
        }
        if (dryRun) wouldMove.push(...candidates);
        else if (candidates.length > 0) {
          // Recorded first: the worker's new outcome must come after "requeued", never before it.
          if (ledger) {
            const refs = candidates.flatMap(jobRefOf);
            if (refs.length > 0) notRecorded += (await ledger.recordRequeued(refs)).failed.length;
          }
          const sent: SendResult<DlqMessage>[] = [];
          // createSender splits by size too: DLQ bodies can be large, and a batch call has a byte limit.
          const sender = createSender<DlqMessage>({ sqs: context.sqs, queueUrl, onResult: (r) => sent.push(r) });
          for (const message of candidates) await sender.push({ key: message, body: message.body });
          await sender.flush();
          const ok = sent.filter((r): r is Extract<typeof r, { ok: true }> => r.ok);
          for (const r of sent) if (!r.ok) failures.push({ message: r.key, stage: "send", error: r.error });
          const newIds = new Map(ok.map((r) => [r.key.messageId, r.messageId]));
          const { failed } = await scanner.remove(ok.map((r) => r.key));
          const notDeleted = new Set(failed.map((f) => f.message.messageId));
          for (const f of failed) failures.push({ message: f.message, stage: "delete", error: f.error, newMessageId: newIds.get(f.message.messageId)! });
          for (const r of ok) if (!notDeleted.has(r.key.messageId)) moved.push({ message: r.key, messageId: r.messageId });
        }
        if (context.signal?.aborted) {
          interrupted = true;
          break;
        }
      }
    } finally {
      releaseFailed = (await scanner.release()).failed;
    }

    const dlqName = queueName(dlqUrl);
    for (const f of failures) {
      const what = `${displayId(f.message.certificateId)} (DLQ message ${f.message.messageId}, ${f.message.reason})`;
      if (f.stage === "send") context.note(`not moved: ${what}: ${f.error}; it stays in ${dlqName}`);
      else context.note(`sent ${what} as ${f.newMessageId} but could not delete it from ${dlqName}: ${f.error}; a later redrive would send it again`);
    }
    if (releaseFailed > 0) context.note(`${releaseFailed} messages could not be made visible again at once; they reappear within 60 s`);
    if (notRecorded > 0) context.note(`the ledger could not record ${plural(notRecorded, "job")} as requeued (they were moved all the same)`);

    const byReason = countByReason((dryRun ? wouldMove : moved.map((m) => m.message)).map((m) => m.reason));
    if (context.json) {
      context.printJson({
        dlq_url: dlqUrl,
        queue_url: queueUrl,
        dry_run: dryRun,
        scanned,
        [dryRun ? "would_move" : "moved"]: dryRun ? wouldMove.length : moved.length,
        by_reason: Object.fromEntries(byReason),
        ...(dryRun
          ? { messages: wouldMove.map((m) => ({ dlq_message_id: m.messageId, certificate_id: m.certificateId ?? null, failure_reason: m.reason })) }
          : { messages: moved.map((m) => ({ dlq_message_id: m.message.messageId, message_id: m.messageId, certificate_id: m.message.certificateId ?? null, failure_reason: m.message.reason })) }),
        failed: failures.map((f) => ({ dlq_message_id: f.message.messageId, certificate_id: f.message.certificateId ?? null, failure_reason: f.message.reason, stage: f.stage, error: f.error, ...(f.newMessageId ? { message_id: f.newMessageId } : {}) })),
        not_matching: notMatching,
        arrived_during_run: scanner.arrivedLater,
        stopped_at_max: stoppedAtMax,
        interrupted,
      });
    } else {
      const count = dryRun ? wouldMove.length : moved.length;
      context.print(`${dryRun ? "dry run: would move" : "moved"} ${count} message${count === 1 ? "" : "s"} from ${dlqName} to ${queueName(queueUrl)}${count > 0 ? ":" : ""}`);
      if (count > 0) for (const line of formatTable([...byReason], [{ header: "failure_reason", value: ([r]) => r }, { header: dryRun ? "would move" : "moved", value: ([, n]) => n, align: "right" }])) context.print(line);
      if (failures.length > 0) context.print(`failed: ${failures.length} (see above)`);
      if (notMatching > 0) context.print(`left in ${dlqName}: ${notMatching} not matching --reason ${[...reasons!].join(",")}`);
      if (scanner.arrivedLater > 0) context.print(`left in ${dlqName}: ${plural(scanner.arrivedLater, "message")} that arrived during this run (redrive again once the cause is fixed)`);
      if (stoppedAtMax) context.print(`stopped at --max ${max}; there may be more`);
      if (interrupted) context.print("interrupted: the rest of the DLQ was not read");
    }
    if (interrupted) return EXIT.interrupted;
    return failures.length > 0 ? EXIT.failed : EXIT.ok;
  },
};

function countByReason(reasons: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of reasons) counts.set(r, (counts.get(r) ?? 0) + 1);
  return new Map([...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
}

/** The ledger's key of a dead-lettered job: only a body with a request_id keeps its key across a redrive. */
function jobRefOf(message: DlqMessage): JobRef[] {
  const parsed = parseWithdrawalBody(message.body);
  if (!parsed.ok || parsed.request.request_id === undefined) return [];
  const { request } = parsed;
  return [{ requestId: request.request_id!, batchId: request.batch_id, certificateId: request.certificate_id, source: request.source }];
}
