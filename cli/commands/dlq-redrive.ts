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
import { UsageError } from "../../lib/errors.ts";
import { jobRefFromRequest, type JobRef, type Ledger } from "../../lib/ledger.ts";
import { parseWithdrawalBody } from "../../lib/message.ts";
import { createSender, type SendResult } from "../../lib/producer.ts";
import { integerFlag, stringFlag } from "../args.ts";
import { EXIT, type Command, type CommandContext } from "../context.ts";
import { HEADS } from "./heads.ts";
import {
  createDlqScanner,
  describeUnseen,
  dlqDepth,
  DLQ_REASONS,
  unseen,
  type DlqMessage,
  type DlqScanner,
} from "../dlq.ts";
import { confirm, mustAsk, YES_OPTION } from "../confirm.ts";
import { createMovePipeline } from "../move-pipeline.ts";
import { displayId, formatTable, plural, queueName } from "../output.ts";
import { reasonFilter, scanProgress } from "./dlq-list.ts";

/** Messages per group moved together, and groups moved at once (see cli/move-pipeline.ts). */
const MOVE_GROUP = 100;
const MOVES_IN_FLIGHT = 16;

interface Failure {
  message: DlqMessage;
  /**
   * `send`: not sent, still in the DLQ. `delete`: sent, but still in the DLQ too (a later redrive would send it
   * again). `copy`: a duplicate copy of a job that was sent, which could not be deleted.
   */
  stage: "send" | "delete" | "copy";
  error: string;
  newMessageId?: string;
}

/** Reasons redriven when --reason is not given: all but invalid_message, which would only bounce straight back. */
export const DEFAULT_REDRIVE_REASONS: readonly string[] = DLQ_REASONS.filter((r) => r !== "invalid_message");

interface RedriveOptions {
  dlqUrl: string;
  queueUrl: string;
  selected: ReadonlySet<string>;
  max: number | undefined;
  dryRun: boolean;
  /** Only messages in the DLQ before this time move (the time of the preview the operator confirmed). */
  arrivedBefore?: number;
}

export const dlqRedriveCommand: Command = {
  ...HEADS.dlqRedrive,
  description: [
    "Sends each matching message's original body, byte for byte and without the DLQ attributes, to the",
    "withdrawals queue, and deletes it from the dead-letter queue only after that send succeeded.",
    `Without --reason every reason moves except invalid_message (it would bounce straight back): name it`,
    "to move it. Messages that do not match (and those beyond --max) stay in the DLQ and are visible again",
    "as soon as the run ends. Only messages already in the DLQ when the run starts are moved: a job that",
    "fails again meanwhile is dead-lettered as a new message and waits for the next run (no loop).",
    "Copies of one dead letter (same source_message_id, left by a worker stopped mid-way) are sent once;",
    "the extra copies are deleted. Fix the cause first (e.g. wait out an SCM outage), then redrive.",
    "On a terminal it first shows what will move (counts by reason) and asks; --yes skips the question,",
    "and is needed when there is no terminal.",
    `Reasons: ${DLQ_REASONS.join(", ")}.`,
    "With the ledger (LEDGER_TABLE / --ledger-table, or the local pipeline's), each job is recorded as",
    "requeued before it is sent back (only jobs whose body has a request_id: the worker keys the others",
    "by their new SQS message id), so `batch status` shows it pending again until its new outcome.",
    "Exit 1 if any matching message could not be moved, or if another reader (dlq list, dlq redrive) held",
    "messages this run could therefore not see.",
  ].join("\n"),
  options: {
    reason: {
      type: "string",
      valueName: "R",
      description: "move only these failure reasons (comma-separated; default: all but invalid_message)",
    },
    max: { type: "string", valueName: "N", description: "move at most N messages" },
    "dry-run": { type: "boolean", description: "show what would move; move nothing" },
    ...YES_OPTION,
  },
  async run(context, { values, positionals }) {
    if (positionals.length > 0)
      throw new UsageError(`dlq redrive takes no arguments (got ${JSON.stringify(positionals[0])})`, "dlq redrive");
    const reasons = reasonFilter(stringFlag(values, "reason"), "dlq redrive");
    const max = integerFlag(values, "max", { min: 1, max: 1_000_000 }, "dlq redrive");
    const dryRun = values["dry-run"] === true;
    const ask =
      !dryRun &&
      mustAsk(context, values, "dlq redrive moves messages back to the withdrawals queue (--dry-run shows which)");
    const dlqUrl = await context.dlqUrl();
    const { queueUrl } = context.target;
    if (!dryRun) await context.checkQueue(queueUrl);
    const options: RedriveOptions = {
      dlqUrl,
      queueUrl,
      selected: reasons ?? new Set(DEFAULT_REDRIVE_REASONS),
      max,
      dryRun,
    };

    if (ask) {
      const preview = await redrive(context, { ...options, dryRun: true });
      if (preview.interrupted) return EXIT.interrupted;
      if (preview.wouldMove.length === 0) return report(context, options, preview, reasons);
      const table = formatTable(
        [...countByReason(preview.wouldMove.map((m) => m.reason))],
        [
          { header: "failure_reason", value: ([r]) => r },
          { header: "to move", value: ([, n]) => n, align: "right" },
        ],
      );
      const question = `move ${plural(preview.wouldMove.length, "message")} from ${queueName(dlqUrl)} to ${queueName(queueUrl)}?`;
      if (!(await confirm(context, table, question))) {
        context.note("not confirmed: nothing was moved");
        return context.signal?.aborted ? EXIT.interrupted : EXIT.failed;
      }
      return report(
        context,
        options,
        await redrive(context, { ...options, arrivedBefore: preview.startedAt }),
        reasons,
      );
    }
    return report(context, options, await redrive(context, options), reasons);
  },
};

type RedriveResult = Awaited<ReturnType<typeof redrive>>;

/** One pass over the DLQ: moves (or, in a dry run, only picks) the matching messages; releases the rest. */
async function redrive(context: CommandContext, options: RedriveOptions) {
  const { dlqUrl, queueUrl, selected, max, dryRun } = options;
  const ledger = dryRun ? undefined : await context.ledger();
  const startedAt = Date.now();
  const scanner = createDlqScanner({
    sqs: context.sqs,
    url: dlqUrl,
    waitSeconds: context.io.dlqWaitSeconds ?? 1,
    arrivedBefore: options.arrivedBefore ?? startedAt,
  });
  const start = await context.call(dlqUrl, () => dlqDepth(context.sqs, dlqUrl));
  const progress = scanProgress(context);
  const moved: { message: DlqMessage; messageId: string }[] = [];
  const wouldMove: DlqMessage[] = [];
  const failures: Failure[] = [];
  /** DLQ message ids of the jobs sent in this run (their later copies are deleted, not sent). */
  const sentIds = new Set<string>();
  const copies = { deleted: 0, left: 0 };
  const notMatching = new Map<string, number>();
  let notRecorded = 0;
  let seen = 0;
  let scanned = 0;
  let stoppedAtMax = false;
  let interrupted = false;
  let releaseFailed = 0;
  const pipeline = createMovePipeline<DlqMessage>(
    async (group) => {
      // Recorded first: the worker's new outcome must come after "requeued", never before it.
      if (ledger) notRecorded += await recordRequeued(ledger, group);
      const result = await moveBack(context, scanner, queueUrl, group);
      moved.push(...result.moved);
      failures.push(...result.failures);
      for (const id of result.sentIds) sentIds.add(id);
    },
    { groupSize: MOVE_GROUP, inFlight: MOVES_IN_FLIGHT },
  );
  const matched = () =>
    moved.length + wouldMove.length + failures.filter((f) => f.stage !== "copy").length + pipeline.pending;

  try {
    while (!stoppedAtMax) {
      const batch = await context.call(dlqUrl, () => scanner.next());
      if (batch === undefined) {
        if (pipeline.idle) break;
        // The last look comes after every send: what failed again meanwhile is seen (and left) too.
        await pipeline.drain();
        continue;
      }
      const candidates: DlqMessage[] = [];
      const batchCopies: DlqMessage[] = [];
      for (const message of batch) {
        seen++;
        if (message.copyOf !== undefined) {
          batchCopies.push(message);
          continue;
        }
        scanned++;
        if (!selected.has(message.reason)) notMatching.set(message.reason, (notMatching.get(message.reason) ?? 0) + 1);
        else if (max !== undefined && matched() + candidates.length >= max) stoppedAtMax = true;
        else candidates.push(message);
      }
      if (dryRun) {
        wouldMove.push(...candidates);
        for (const c of candidates) sentIds.add(c.messageId);
      } else if (candidates.length > 0) await pipeline.add(candidates);
      // A copy is judged once its first copy's move has ended (copies are rare: a kill mid-dead-letter).
      if (batchCopies.length > 0 && !dryRun) await pipeline.drain();
      // A copy goes only where its first copy went: if that was sent, the copy is deleted (never sent twice).
      const extra = batchCopies.filter((c) => sentIds.has(c.copyOf!));
      copies.left += batchCopies.length - extra.length;
      if (dryRun) copies.deleted += extra.length;
      else if (extra.length > 0) {
        const { failed } = await scanner.remove(extra);
        copies.deleted += extra.length - failed.length;
        for (const f of failed) failures.push({ message: f.message, stage: "copy", error: f.error });
      }
      progress.update(
        seen / Math.max(1, start.visible),
        `${seen} read, ${dryRun ? `${wouldMove.length} to move` : `${moved.length} moved`}`,
      );
      if (context.signal?.aborted) {
        interrupted = true;
        break;
      }
    }
    await pipeline.drain();
  } finally {
    // Also after an error or Ctrl-C: what is being moved finishes before the rest is made visible again.
    await pipeline.settle();
    progress.done();
    releaseFailed = (await scanner.release()).failed;
  }
  const { notSeen, incomplete } = await coverage(context, dlqUrl, start, seen, { stoppedAtMax, interrupted });
  return {
    startedAt,
    moved,
    wouldMove,
    failures,
    copies,
    notMatching,
    notRecorded,
    scanned,
    stoppedAtMax,
    interrupted,
    releaseFailed,
    arrivedLater: scanner.arrivedLater,
    notSeen,
    incomplete,
  };
}

/** What the pass could not see (held by other readers, or missed), from the DLQ's depth before and after it. */
async function coverage(
  context: CommandContext,
  dlqUrl: string,
  start: Awaited<ReturnType<typeof dlqDepth>>,
  seen: number,
  stopped: { stoppedAtMax: boolean; interrupted: boolean },
) {
  const end = await context.call(dlqUrl, () => dlqDepth(context.sqs, dlqUrl));
  // Stopped early on purpose (--max, Ctrl-C): the rest was not asked for, but messages held elsewhere still count.
  const notSeen =
    stopped.stoppedAtMax || stopped.interrupted
      ? { inFlightElsewhere: Math.max(start.inFlight, end.inFlight), missed: 0 }
      : unseen(start, end, seen);
  const incomplete = !stopped.stoppedAtMax && (notSeen.inFlightElsewhere > 0 || notSeen.missed > 0);
  return { notSeen, incomplete };
}

/** Prints what a pass did (text or --json) and returns the exit code. */
function report(
  context: CommandContext,
  options: RedriveOptions,
  r: RedriveResult,
  reasons: Set<string> | undefined,
): number {
  const { dlqUrl, queueUrl, dryRun, max } = options;
  const dlqName = queueName(dlqUrl);
  for (const f of r.failures) {
    const what = `${displayId(f.message.certificateId)} (DLQ message ${f.message.messageId}, ${f.message.reason})`;
    if (f.stage === "send") context.note(`not moved: ${what}: ${f.error}; it stays in ${dlqName}`);
    else if (f.stage === "delete")
      context.note(
        `sent ${what} as ${f.newMessageId} but could not delete it from ${dlqName}: ${f.error}; a later redrive would send it again`,
      );
    else
      context.note(
        `could not delete the duplicate copy ${what} of a job that was sent: ${f.error}; a later redrive would send it again`,
      );
  }
  if (r.releaseFailed > 0)
    context.note(`${r.releaseFailed} messages could not be made visible again at once; they reappear within 60 s`);
  if (r.notRecorded > 0)
    context.note(
      `the ledger could not record ${plural(r.notRecorded, "job")} as requeued (they were moved all the same)`,
    );
  const partial = describeUnseen(r.notSeen, dlqName);
  if (partial) context.note(partial);

  const byReason = countByReason((dryRun ? r.wouldMove : r.moved.map((m) => m.message)).map((m) => m.reason));
  const notMatching = [...r.notMatching.values()].reduce((a, b) => a + b, 0);
  if (context.json) {
    context.printJson({
      dlq_url: dlqUrl,
      queue_url: queueUrl,
      dry_run: dryRun,
      scanned: r.scanned,
      [dryRun ? "would_move" : "moved"]: dryRun ? r.wouldMove.length : r.moved.length,
      by_reason: Object.fromEntries(byReason),
      ...(dryRun
        ? {
            messages: r.wouldMove.map((m) => ({
              dlq_message_id: m.messageId,
              certificate_id: m.certificateId ?? null,
              failure_reason: m.reason,
            })),
          }
        : {
            messages: r.moved.map((m) => ({
              dlq_message_id: m.message.messageId,
              message_id: m.messageId,
              certificate_id: m.message.certificateId ?? null,
              failure_reason: m.message.reason,
            })),
          }),
      failed: r.failures.map((f) => ({
        dlq_message_id: f.message.messageId,
        certificate_id: f.message.certificateId ?? null,
        failure_reason: f.message.reason,
        stage: f.stage,
        error: f.error,
        ...(f.newMessageId ? { message_id: f.newMessageId } : {}),
      })),
      not_matching: notMatching,
      not_matching_by_reason: Object.fromEntries(r.notMatching),
      duplicate_copies: { [dryRun ? "would_delete" : "deleted"]: r.copies.deleted, left: r.copies.left },
      arrived_during_run: r.arrivedLater,
      in_flight_elsewhere: r.notSeen.inFlightElsewhere,
      not_seen: r.notSeen.missed,
      complete: !r.incomplete,
      stopped_at_max: r.stoppedAtMax,
      interrupted: r.interrupted,
    });
  } else {
    const count = dryRun ? r.wouldMove.length : r.moved.length;
    context.print(
      `${dryRun ? "dry run: would move" : "moved"} ${count} message${count === 1 ? "" : "s"} from ${dlqName} to ${queueName(queueUrl)}${count > 0 ? ":" : ""}`,
    );
    if (count > 0)
      for (const line of formatTable(
        [...byReason],
        [
          { header: "failure_reason", value: ([reason]) => reason },
          { header: dryRun ? "would move" : "moved", value: ([, n]) => n, align: "right" },
        ],
      ))
        context.print(line);
    if (r.copies.deleted > 0)
      context.print(
        `${dryRun ? "would delete" : "deleted"} ${plural(r.copies.deleted, "duplicate copy", "duplicate copies")} of jobs ${dryRun ? "it would send" : "sent"} (same source_message_id)`,
      );
    if (r.failures.length > 0) context.print(`failed: ${r.failures.length} (see above)`);
    if (reasons && notMatching > 0)
      context.print(`left in ${dlqName}: ${notMatching} not matching --reason ${[...reasons].join(",")}`);
    for (const [reason, n] of reasons ? [] : r.notMatching)
      context.print(`left in ${dlqName}: ${n} ${reason} (moved only when named: --reason ${reason})`);
    if (r.arrivedLater > 0)
      context.print(
        `left in ${dlqName}: ${plural(r.arrivedLater, "message")} that arrived during this run (redrive again once the cause is fixed)`,
      );
    if (r.stoppedAtMax) context.print(`stopped at --max ${max}; there may be more`);
    if (r.interrupted) context.print("interrupted: the rest of the DLQ was not read");
  }
  if (r.interrupted) return EXIT.interrupted;
  return r.failures.length > 0 || r.incomplete ? EXIT.failed : EXIT.ok;
}

/** Records jobs as requeued before they are sent back: the worker's new outcome must come after "requeued", never before. */
async function recordRequeued(ledger: Ledger, candidates: DlqMessage[]): Promise<number> {
  const refs = candidates.flatMap(jobRefOf);
  return refs.length > 0 ? (await ledger.recordRequeued(refs)).failed.length : 0;
}

/** Sends the original bodies to the queue, then deletes from the DLQ exactly those whose send succeeded. */
async function moveBack(context: CommandContext, scanner: DlqScanner, queueUrl: string, candidates: DlqMessage[]) {
  const sent: SendResult<DlqMessage>[] = [];
  // createSender splits by size too: DLQ bodies can be large, and a batch call has a byte limit.
  const sender = createSender<DlqMessage>({ sqs: context.sqs, queueUrl, onResult: (r) => sent.push(r) });
  for (const message of candidates) await sender.push({ key: message, body: message.body });
  await sender.flush();
  const failures: Failure[] = [];
  const ok = sent.filter((r): r is Extract<typeof r, { ok: true }> => r.ok);
  for (const r of sent) if (!r.ok) failures.push({ message: r.key, stage: "send", error: r.error });
  const newIds = new Map(ok.map((r) => [r.key.messageId, r.messageId]));
  const { failed } = await scanner.remove(ok.map((r) => r.key));
  const notDeleted = new Set(failed.map((f) => f.message.messageId));
  for (const f of failed)
    failures.push({
      message: f.message,
      stage: "delete",
      error: f.error,
      newMessageId: newIds.get(f.message.messageId)!,
    });
  const moved = ok
    .filter((r) => !notDeleted.has(r.key.messageId))
    .map((r) => ({ message: r.key, messageId: r.messageId }));
  return { moved, failures, sentIds: ok.map((r) => r.key.messageId) };
}

function countByReason(reasons: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of reasons) counts.set(r, (counts.get(r) ?? 0) + 1);
  return new Map([...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
}

/** The ledger's key of a dead-lettered job: only a body with a request_id keeps its key across a redrive. */
function jobRefOf(message: DlqMessage): JobRef[] {
  const parsed = parseWithdrawalBody(message.body);
  if (!parsed.ok || parsed.request.request_id === undefined) return [];
  return [jobRefFromRequest(parsed.request, parsed.request.request_id)];
}
