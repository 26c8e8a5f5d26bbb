/**
 * Following a batch in the ledger (lib/ledger.ts), shared by `batch status`, `batch report` and
 * `bulk --wait`: the status table, a watch loop with a progress bar and a stall guard, duration
 * flags, and ledger read errors as one line an operator can act on.
 */
// Types only: lib/ledger.ts loads the DynamoDB SDK, which the CLI imports only when a command uses the ledger.
import { CliError, UsageError } from "../lib/errors.ts";
import type { BatchStatus, JobState, Ledger } from "../lib/ledger.ts";
// The states only: lib/ledger/types.ts imports nothing at run time, so this loads no SDK.
import { FINAL_STATES, JOB_STATES } from "../lib/ledger/types.ts";
import type { ParsedValues } from "./args.ts";
import type { CommandContext, LedgerTarget } from "./context.ts";
import { createProgress, formatDuration, formatTable, plural } from "./output.ts";

/** How often a watch reads the batch's status (one Query each). */
export const DEFAULT_WATCH_INTERVAL_MS = 2000;
/**
 * A watch gives up when nothing in the batch changed for this long. A message that SQS's redrive
 * policy moves to the DLQ (a crash or timeout on every delivery) never gets an outcome: its job stays
 * `retrying` forever. Deployed, a job left for retry may wait up to the longest step of
 * RETRY_VISIBILITY_SCHEDULE (15 min by default) before its next receive, so only twice that without
 * any change means something is stuck, not slow.
 */
export const DEFAULT_STALL_TIMEOUT_MS = 30 * 60_000;

/** Flags of every command that follows a batch. */
export const WATCH_OPTIONS = {
  interval: {
    type: "string",
    valueName: "DURATION",
    description: "how often to read the batch's status (default 2s; e.g. 500ms, 5s)",
  },
  "stall-timeout": {
    type: "string",
    valueName: "DURATION",
    description: "give up (exit 1) when nothing in the batch changed for this long (default 30m)",
  },
} as const;

/** `500ms`, `2s`, `2`, `1.5s`, `10m`, `1h`: a bare number is seconds. */
export function durationFlag(
  values: ParsedValues,
  name: string,
  bounds: { minMs: number; maxMs: number },
  command: string,
): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const match = typeof raw === "string" ? /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(raw.trim()) : null;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(match?.[2] ?? "s") as "ms" | "s" | "m" | "h"];
  const ms = match ? Math.round(Number(match[1]) * unit) : Number.NaN;
  if (!Number.isFinite(ms) || ms < bounds.minMs || ms > bounds.maxMs) {
    throw new UsageError(
      `--${name} must be a duration from ${formatDuration(bounds.minMs)} to ${formatDuration(bounds.maxMs)}, like 500ms, 2s or 10m (got ${JSON.stringify(String(raw))})`,
      command,
    );
  }
  return ms;
}

/** A batch id as the ledger keys it (the message schema allows 1 to 128 characters). */
export function batchIdArgument(positionals: readonly string[], command: string): string {
  if (positionals.length !== 1)
    throw new UsageError(
      positionals.length === 0
        ? `${command} needs a batch id`
        : `${command} takes one batch id (got ${positionals.length})`,
      command,
    );
  const batchId = positionals[0]!;
  if (batchId.length > 128 || /[\u0000-\u001f\u007f]/.test(batchId))
    throw new UsageError(
      `a batch id is 1 to 128 printable characters (got ${JSON.stringify(batchId.slice(0, 40))})`,
      command,
    );
  return batchId;
}

/** Reads a batch's status; a batch the ledger has never heard of is an error naming the table. */
export async function readStatus(
  context: CommandContext,
  ledger: Ledger,
  batchId: string,
  options: { consistent?: boolean } = {},
): Promise<BatchStatus> {
  const status = await ledgerRead(context, () => ledger.batchStatus(batchId, options));
  if (status.recorded === 0 && status.expectedTotal === undefined) {
    throw new CliError(
      `no batch ${JSON.stringify(batchId)} in the ledger (table ${context.ledgerTarget?.tableName}): check the id (bulk prints it first) and --ledger-table`,
    );
  }
  return status;
}

/** Runs one ledger read; a failure becomes a {@link CliError} saying what to check. */
export async function ledgerRead<T>(context: CommandContext, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (error) {
    throw new CliError(explainLedgerError(error, context.ledgerTarget));
  }
}

/** One line for a failed ledger read. */
export function explainLedgerError(thrown: unknown, target: LedgerTarget | undefined): string {
  // A LedgerError wraps the SDK's error (compared by name: the class lives in the lazily loaded ledger module).
  const cause =
    thrown instanceof Error && thrown.name === "LedgerError" && thrown.cause !== undefined ? thrown.cause : thrown;
  const error = cause as { name?: string; code?: string; message?: string; errors?: { code?: string }[] };
  const code = error.code ?? error.errors?.[0]?.code;
  const table = target?.tableName ?? "(none)";
  const where = target?.endpoint ?? "DynamoDB";
  if (
    code === "ECONNREFUSED" ||
    code === "ECONNRESET" ||
    code === "ENOTFOUND" ||
    code === "ETIMEDOUT" ||
    error.name === "TimeoutError" ||
    error.name === "LedgerTimeoutError"
  ) {
    return target?.local
      ? `no ledger at ${where}: is the local pipeline running (\`npm start\`)?`
      : `cannot reach ${where} for the ledger table ${table} (${code ?? error.name}): check the network and --region`;
  }
  if (error.name === "ResourceNotFoundException")
    return `no ledger table ${table} at ${where} (check --ledger-table / LEDGER_TABLE and --region)`;
  if (error.name === "CredentialsProviderError")
    return "no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY";
  if (error.name === "AccessDeniedException")
    return `access denied on the ledger table ${table} (AccessDeniedException): ${error.message ?? ""}`.trim();
  return thrown instanceof Error ? thrown.message : String(thrown);
}

export type WatchEnd = "done" | "stalled" | "interrupted";

/**
 * Reads the batch's status every `intervalMs` until every expected job is final (`done`), nothing
 * changed for `stallTimeoutMs` (`stalled`), or Ctrl-C (`interrupted`). A progress bar (a plain
 * `progress:` line when stderr is not a terminal) shows how far it is; nothing with `--json`.
 */
export async function watchBatch(
  context: CommandContext,
  ledger: Ledger,
  batchId: string,
  options: { intervalMs: number; stallTimeoutMs: number; now?: () => number },
): Promise<{ status: BatchStatus; end: WatchEnd }> {
  const now = options.now ?? Date.now;
  const stderr = context.io.stderr;
  const progress = createProgress(stderr, {
    enabled: !context.json,
    intervalMs: stderr.isTTY ? 0 : Math.max(options.intervalMs, 5000),
  });
  let lastChange = now();
  let signature = "";
  try {
    for (;;) {
      const status = await readStatus(context, ledger, batchId);
      const current = `${status.lastUpdatedAt}|${JOB_STATES.map((s) => status.counts[s]).join(",")}|${status.expectedTotal}`;
      if (current !== signature) {
        signature = current;
        lastChange = now();
      }
      progress.update(fractionDone(status), progressText(status));
      if (status.done) return { status, end: "done" };
      if (now() - lastChange >= options.stallTimeoutMs) return { status, end: "stalled" };
      if (context.signal?.aborted) return { status, end: "interrupted" };
      await pause(options.intervalMs, context.signal);
      if (context.signal?.aborted) return { status: await readStatus(context, ledger, batchId), end: "interrupted" };
    }
  } finally {
    progress.done();
  }
}

function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

function fractionDone(status: BatchStatus): number {
  const total = Math.max(status.expectedTotal ?? status.recorded, status.recorded, 1);
  return status.final / total;
}

function progressText(status: BatchStatus): string {
  const { counts } = status;
  const total = status.expectedTotal ?? status.recorded;
  return [
    `${status.final}/${total}${status.expectedTotal === undefined ? "?" : ""} final`,
    `${counts.withdrawn} withdrawn`,
    `${counts.already_withdrawn} already withdrawn`,
    `${counts.dead_lettered} dead-lettered`,
    `${status.pending} pending`,
  ].join(", ");
}

/** The one-line verdict: `done, 7 of 7 jobs final` / `in progress, ...`. */
export function statusHeadline(status: BatchStatus): string {
  if (status.expectedTotal === undefined) {
    return `${status.final} of ${plural(status.recorded, "recorded job")} final; expected total unknown (the producer has not recorded it yet), so not done`;
  }
  if (status.done) return `done, ${status.final} of ${plural(status.expectedTotal, "job")} final`;
  const missing = status.expectedTotal - status.recorded;
  return `in progress, ${status.final} of ${plural(status.expectedTotal, "job")} final, ${status.pending} pending${missing > 0 ? `, ${missing} not recorded` : ""}`;
}

/** The status table: one row per state, dead letters broken down by reason. */
export function formatStatus(status: BatchStatus): string[] {
  const rows: { label: string; jobs: number; final: string }[] = [];
  for (const state of JOB_STATES) {
    rows.push({ label: state, jobs: status.counts[state], final: FINAL_STATES.includes(state) ? "yes" : "no" });
    if (state === "dead_lettered") {
      for (const [reason, count] of Object.entries(status.deadLetteredByReason).sort(
        (a, b) => b[1] - a[1] || a[0].localeCompare(b[0]),
      )) {
        rows.push({ label: `  ${reason}`, jobs: count, final: "" });
      }
    }
  }
  return [
    `batch ${status.batchId}: ${statusHeadline(status)}`,
    ...formatTable(rows, [
      { header: "state", value: (r) => r.label },
      { header: "jobs", value: (r) => r.jobs, align: "right" },
      { header: "final", value: (r) => r.final },
    ]),
    `expected ${status.expectedTotal ?? "unknown"}, recorded ${status.recorded}${status.lastUpdatedAt ? `, last change ${status.lastUpdatedAt}` : ""}`,
  ];
}

/** The batch status as printed by `--json`. */
export function statusJson(status: BatchStatus, tableName: string | undefined): Record<string, unknown> {
  return {
    batch_id: status.batchId,
    table: tableName,
    done: status.done,
    expected_total: status.expectedTotal ?? null,
    recorded: status.recorded,
    final: status.final,
    pending: status.pending,
    counts: status.counts,
    dead_lettered_by_reason: status.deadLetteredByReason,
    last_updated_at: status.lastUpdatedAt ?? null,
  };
}

/** What to tell the operator after a watch ended, one line. */
export function watchVerdict(batchId: string, status: BatchStatus, end: WatchEnd, stallTimeoutMs: number): string {
  const dead = status.counts.dead_lettered;
  switch (end) {
    case "done":
      return dead === 0
        ? `batch ${batchId} done: every job withdrawn or already withdrawn`
        : `batch ${batchId} done with ${plural(dead, "dead-lettered job")}: see \`scm-withdraw batch report ${batchId} --out report.csv\` and \`scm-withdraw dlq list\``;
    case "stalled":
      return `batch ${batchId} stalled: nothing changed for ${formatDuration(stallTimeoutMs)}, ${plural(status.pending, "job")} still pending (${pendingBreakdown(status)}); a job the queue's redrive policy moved to the DLQ stays "retrying": check \`scm-withdraw dlq list\``;
    case "interrupted":
      return `stopped following batch ${batchId} (the jobs go on): ${statusHeadline(status)}`;
  }
}

function pendingBreakdown(status: BatchStatus): string {
  const pending: JobState[] = ["queued", "retrying", "requeued"];
  return pending.map((s) => `${status.counts[s]} ${s}`).join(", ");
}
