/** `scm-withdraw batch status <batch_id>`: where a bulk batch or cleanup run stands, from the ledger. */
import { EXIT, type Command } from "../context.ts";
import { HEADS } from "./heads.ts";
import {
  batchIdArgument,
  DEFAULT_STALL_TIMEOUT_MS,
  DEFAULT_WATCH_INTERVAL_MS,
  durationFlag,
  formatStatus,
  readStatus,
  statusJson,
  WATCH_OPTIONS,
  watchBatch,
  watchVerdict,
} from "../batch.ts";

const NAME = HEADS.batchStatus.name;

export const batchStatusCommand: Command = {
  ...HEADS.batchStatus,
  description: [
    "Reads the batch from the ledger (LEDGER_TABLE / --ledger-table) in one query: how many jobs are",
    "queued, retrying, requeued, withdrawn, already_withdrawn or dead_lettered (by reason), and whether",
    "the batch is done: every job the producer recorded is in a final state (withdrawn, already_withdrawn,",
    "dead_lettered). bulk prints its batch id first; a cleanup run prints its batch_id at the end.",
    "",
    "--watch shows a progress bar and reads the status again every --interval until the batch is done,",
    "then prints the table. It gives up when nothing in the batch changed for --stall-timeout (a job",
    "the queue's redrive policy moved to the DLQ stays retrying for ever: see dlq list).",
    "",
    "Exit 0 when the status was read (with --watch: when the batch is done); 1 when the ledger cannot",
    "be read, the batch is unknown, or a watch stalled; 130 when a watch was interrupted.",
  ].join("\n"),
  options: {
    watch: { type: "boolean", description: "follow the batch until every job is final" },
    ...WATCH_OPTIONS,
  },
  async run(context, { values, positionals }) {
    const batchId = batchIdArgument(positionals, NAME);
    const watch = values.watch === true;
    const intervalMs =
      durationFlag(values, "interval", { minMs: 100, maxMs: 3_600_000 }, NAME) ?? DEFAULT_WATCH_INTERVAL_MS;
    const stallTimeoutMs =
      durationFlag(values, "stall-timeout", { minMs: 1000, maxMs: 7 * 86_400_000 }, NAME) ?? DEFAULT_STALL_TIMEOUT_MS;
    const ledger = await context.requireLedger();

    let status = await readStatus(context, ledger, batchId);
    let end: "done" | "stalled" | "interrupted" | undefined;
    if (watch && !status.done)
      ({ status, end } = await watchBatch(context, ledger, batchId, { intervalMs, stallTimeoutMs }));

    if (context.json)
      context.printJson({
        ...statusJson(status, context.ledgerTarget?.tableName),
        ...(watch ? { watch: end ?? "done" } : {}),
      });
    else {
      for (const line of formatStatus(status)) context.print(line);
      if (end === "stalled" || end === "interrupted") context.note(watchVerdict(batchId, status, end, stallTimeoutMs));
    }
    if (end === "interrupted") return EXIT.interrupted;
    return end === "stalled" ? EXIT.failed : EXIT.ok;
  },
};
