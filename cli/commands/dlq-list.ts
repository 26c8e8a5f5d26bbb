/** `scm-withdraw dlq list`: what is in the dead-letter queue and why, leaving every message there. */
import { UsageError } from "../../lib/errors.ts";
import { integerFlag, stringFlag } from "../args.ts";
import { EXIT, type Command, type CommandContext } from "../context.ts";
import { HEADS } from "./heads.ts";
import {
  createDlqScanner,
  describeUnseen,
  dlqDepth,
  DLQ_REASONS,
  parseReasons,
  unseen,
  type DlqMessage,
} from "../dlq.ts";
import { createProgress, displayId, formatTable, plural, queueName } from "../output.ts";

const SAMPLES = 3;

export const dlqListCommand: Command = {
  ...HEADS.dlqList,
  description: [
    "Reads the dead-letter queue and counts its messages by failure_reason and error_code, with up to",
    `${SAMPLES} sample certificate ids each, who requested them (requested_by, with counts; "unknown" for jobs`,
    `from older producers) and up to ${SAMPLES} of their reasons. Every message stays in the queue: the scan hides them while it`,
    "runs and makes them all visible again as soon as it ends, so a following `dlq redrive` sees them.",
    `Reasons: ${DLQ_REASONS.join(", ")} (unlabelled: moved by the queue's redrive policy, without the worker's attributes).`,
  ].join("\n"),
  options: {
    reason: { type: "string", valueName: "R", description: "count only these failure reasons (comma-separated)" },
    max: { type: "string", valueName: "N", description: "stop after N matching messages" },
  },
  async run(context, { values, positionals }) {
    if (positionals.length > 0)
      throw new UsageError(`dlq list takes no arguments (got ${JSON.stringify(positionals[0])})`, "dlq list");
    const reasons = reasonFilter(stringFlag(values, "reason"), "dlq list");
    const max = integerFlag(values, "max", { min: 1, max: 1_000_000 }, "dlq list");
    const dlqUrl = await context.dlqUrl();

    const groups = new Map<string, Group>();
    const scan = await scanDlq(
      context,
      dlqUrl,
      (message) => {
        if (reasons && !reasons.has(message.reason)) return "skip";
        const key = `${message.reason}\u0000${message.errorCode ?? ""}`;
        let group = groups.get(key);
        if (!group) groups.set(key, (group = emptyGroup(message.reason, message.errorCode ?? null)));
        group.count++;
        const who = message.requestedBy ?? "unknown";
        group.requested_by[who] = (group.requested_by[who] ?? 0) + 1;
        const why = message.requestReason;
        if (why !== undefined && group.sample_reasons.length < SAMPLES && !group.sample_reasons.includes(why))
          group.sample_reasons.push(why);
        const id = message.certificateId;
        if (
          id !== undefined &&
          group.sample_certificate_ids.length < SAMPLES &&
          !group.sample_certificate_ids.includes(id)
        )
          group.sample_certificate_ids.push(id);
        return "counted";
      },
      max,
    );

    const sorted = [...groups.values()].sort(
      (a, b) => b.count - a.count || a.failure_reason.localeCompare(b.failure_reason),
    );
    const matching = sorted.reduce((n, g) => n + g.count, 0);
    if (context.json) {
      context.printJson({
        dlq_url: dlqUrl,
        scanned: scan.scanned,
        matching,
        groups: sorted,
        duplicate_copies: scan.copies,
        arrived_during_scan: scan.arrivedLater,
        in_flight_elsewhere: scan.unseen.inFlightElsewhere,
        not_seen: scan.unseen.missed,
        stopped_at_max: scan.stoppedAtMax,
        interrupted: scan.interrupted,
      });
    } else {
      const name = queueName(dlqUrl);
      if (scan.scanned === 0) context.print(`${name} is empty`);
      else {
        context.print(
          `${name}: ${scan.scanned} messages${reasons ? `, ${matching} with reason ${[...reasons].join(" or ")}` : ""} (all left in the queue)`,
        );
        if (sorted.length > 0) {
          for (const line of formatTable(
            [...sorted, { ...emptyGroup("total", null), count: matching }],
            [
              { header: "failure_reason", value: (g) => g.failure_reason },
              { header: "error_code", value: (g) => (g.failure_reason === "total" ? "" : (g.error_code ?? "-")) },
              { header: "count", value: (g) => g.count, align: "right" },
              { header: "sample certificate ids", value: (g) => g.sample_certificate_ids.map(displayId).join(", ") },
              { header: "requested by", value: (g) => formatRequesters(g.requested_by) },
              { header: "sample reasons", value: (g) => g.sample_reasons.map((r) => JSON.stringify(r)).join(", ") },
            ],
          ))
            context.print(line);
        }
      }
      if (scan.copies > 0)
        context.print(
          `${plural(scan.copies, "duplicate copy", "duplicate copies")} of these (same source_message_id): counted once`,
        );
      if (scan.arrivedLater > 0)
        context.print(`${plural(scan.arrivedLater, "message")} arrived while listing: not counted`);
      if (scan.stoppedAtMax) context.print(`stopped after ${max} matching messages (--max); there may be more`);
    }
    const partial = describeUnseen(scan.unseen, queueName(dlqUrl));
    if (partial) context.note(partial);
    if (scan.releaseFailed > 0)
      context.note(`${scan.releaseFailed} messages could not be made visible again at once; they reappear within 60 s`);
    return scan.interrupted ? EXIT.interrupted : EXIT.ok;
  },
};

interface Group {
  failure_reason: string;
  error_code: string | null;
  count: number;
  sample_certificate_ids: string[];
  /** requested_by → messages. */
  requested_by: Record<string, number>;
  sample_reasons: string[];
}

function emptyGroup(reason: string, errorCode: string | null): Group {
  return {
    failure_reason: reason,
    error_code: errorCode,
    count: 0,
    sample_certificate_ids: [],
    requested_by: {},
    sample_reasons: [],
  };
}

/** `alice (3), lambda:sweep (1)`: most first. */
function formatRequesters(counts: Record<string, number>): string {
  const sorted = Object.entries(counts).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  return sorted.map(([who, n]) => `${who} (${n})`).join(", ");
}

export function reasonFilter(value: string | undefined, command: string): Set<string> | undefined {
  if (value === undefined) return undefined;
  const parsed = parseReasons(value);
  if ("bad" in parsed)
    throw new UsageError(
      `--reason ${JSON.stringify(parsed.bad)} is not a failure reason; use one of ${DLQ_REASONS.join(", ")}`,
      command,
    );
  return parsed.reasons;
}

/**
 * Receives every message of the DLQ once (until it is empty, `max` messages were counted, or Ctrl-C),
 * hands each first copy to `visit` (later copies of one dead letter are only counted), then makes them
 * all visible again and works out what it could not see.
 */
export async function scanDlq(
  context: CommandContext,
  dlqUrl: string,
  visit: (message: DlqMessage) => "counted" | "skip",
  max: number | undefined,
) {
  const scanner = createDlqScanner({ sqs: context.sqs, url: dlqUrl, waitSeconds: context.io.dlqWaitSeconds ?? 1 });
  const start = await context.call(dlqUrl, () => dlqDepth(context.sqs, dlqUrl));
  const progress = scanProgress(context);
  let scanned = 0;
  let copies = 0;
  let counted = 0;
  let stoppedAtMax = false;
  let interrupted = false;
  let released = { failed: 0 };
  try {
    scanning: for (;;) {
      const batch = await context.call(dlqUrl, () => scanner.next());
      if (batch === undefined) break;
      for (const message of batch) {
        if (message.copyOf !== undefined) {
          copies++;
          continue;
        }
        scanned++;
        if (visit(message) === "counted") counted++;
        if (max !== undefined && counted >= max) {
          stoppedAtMax = true;
          break scanning;
        }
      }
      progress.update((scanned + copies) / Math.max(1, start.visible), `${scanned} read`);
      if (context.signal?.aborted) {
        interrupted = true;
        break;
      }
    }
  } finally {
    progress.done();
    // Also after an error or Ctrl-C: nothing may stay hidden longer than necessary.
    released = await scanner.release();
  }
  const end = await context.call(dlqUrl, () => dlqDepth(context.sqs, dlqUrl));
  const missed =
    stoppedAtMax || interrupted
      ? { inFlightElsewhere: Math.max(start.inFlight, end.inFlight), missed: 0 }
      : unseen(start, end, scanned + copies);
  return {
    scanned,
    copies,
    stoppedAtMax,
    interrupted,
    arrivedLater: scanner.arrivedLater,
    releaseFailed: released.failed,
    unseen: missed,
  };
}

/** A progress line for a DLQ scan, on a terminal only (a scan of a large DLQ takes a while; a pipe gets the result). */
export function scanProgress(context: CommandContext) {
  return createProgress(context.io.stderr, { enabled: !context.json && context.io.stderr.isTTY === true });
}
