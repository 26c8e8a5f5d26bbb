/**
 * The cleanup sweep: finds certificate applications still under review and enqueues one withdrawal
 * job for each, so nobody has to list ids by hand. Used by the scheduled Lambda (`handlers/cleanup.ts`,
 * through `cleanup-runtime.ts`) and by `scm-withdraw cleanup`.
 *
 * A run has three steps, on purpose:
 *   1. **List** every requested status (`cleanup-listing.ts`).
 *   2. **Age**: with the ledger, remember when each listed certificate was first seen under review
 *      (`sightings.ts`); SCM's listing gives no age, so this is the only way to tell a stale
 *      application from a fresh one (`CLEANUP_MIN_AGE`). Without the ledger the sweep says it cannot.
 *   3. **Select and enqueue**: filters (status, exclude list, age, cap), one job per certificate, never
 *      the same certificate twice (`cleanup-enqueue.ts`).
 * Listing everything before enqueueing anything means (a) a listing failure leaves no partial run
 * behind: the run fails and enqueues nothing, and the next run starts clean; (b) the worker cannot
 * withdraw this run's own jobs while it is still paging, which would shift the pages under it.
 *
 * Everything that does I/O comes in as a dependency (SCM client, token provider, sender, sightings,
 * clock, logger); `cleanup-runtime.ts` wires the real ones.
 */
import { createHash, randomBytes } from "node:crypto";
import type { CleanupFilters } from "./cleanup-config.ts";
import { enqueueJobs } from "./cleanup-enqueue.ts";
import { listCertificates } from "./cleanup-listing.ts";
import {
  SKIP_REASONS,
  type CleanupDependencies,
  type CleanupFailure,
  type CleanupJob,
  type CleanupReport,
  type CleanupRunOptions,
  type CleanupSkip,
  type ListedCertificate,
  type SkipReason,
} from "./cleanup-types.ts";
import { CleanupError } from "./errors.ts";
import { CERTIFICATE_ID_PATTERN } from "./message.ts";
import type { Logger } from "./logger.ts";

/** How many over-the-cap ids a log line or the CLI shows; the report keeps them all. */
const SAMPLE = 20;

/** When each certificate was first seen under review, and the minimum age to enqueue it. */
export interface AgeFilter {
  firstSeen: ReadonlyMap<string, number>;
  minAgeMs: number | undefined;
  now: number;
}

// ---------------------------------------------------------------------------------------------
// Pure parts
// ---------------------------------------------------------------------------------------------

/** `cleanup-20261127T101500Z-ab12`: sortable by time, and unique enough for runs started in the same second. */
export function makeRunId(at: Date, suffix: string = randomBytes(2).toString("hex")): string {
  const stamp = at
    .toISOString()
    .replace(/\.\d{3}Z$/, "Z")
    .replace(/[-:]/g, "");
  return `cleanup-${stamp}-${suffix}`;
}

/**
 * The run id of a scheduled invocation, derived from the EventBridge event: a retried invocation of
 * the same event gets the same id, so its jobs land in the same batch (and are harmless duplicates).
 */
export function runIdForEvent(event: { id?: unknown; time?: unknown }, fallback: Date): string {
  const time =
    typeof event.time === "string" && !Number.isNaN(Date.parse(event.time)) ? new Date(event.time) : fallback;
  const suffix =
    typeof event.id === "string" && event.id !== ""
      ? createHash("sha256").update(event.id).digest("hex").slice(0, 4)
      : undefined;
  return makeRunId(time, suffix);
}

/**
 * Applies the filters to what the listing returned, in listing order: a certificate whose status is
 * not requested is `status_filtered`; one already seen in this run (on another page or under another
 * status) is a `duplicate`; then `excluded`; then, with an age filter, `age_unknown` (no sighting
 * recorded) or `too_recent`; then `over_cap` once `maxJobs` are selected.
 */
export function selectJobs(
  listed: readonly ListedCertificate[],
  filters: Pick<CleanupFilters, "statuses" | "exclude" | "maxJobs">,
  age?: AgeFilter,
) {
  const selected: CleanupJob[] = [];
  const skipped: CleanupSkip[] = [];
  const seen = new Set<string>();
  const found = new Set<string>();
  const statuses = new Set<string>(filters.statuses);
  for (const c of listed) {
    found.add(c.id);
    const skip = (reason: SkipReason) => skipped.push({ certificateId: c.id, status: c.status, reason });
    if (!CERTIFICATE_ID_PATTERN.test(c.id)) skip("invalid_id");
    else if (!statuses.has(c.status)) skip("status_filtered");
    else if (seen.has(c.id)) skip("duplicate");
    else {
      seen.add(c.id);
      const firstSeen = age?.firstSeen.get(c.id);
      if (filters.exclude.has(c.id)) skip("excluded");
      else if (age?.minAgeMs !== undefined && firstSeen === undefined) skip("age_unknown");
      else if (age?.minAgeMs !== undefined && age.now - firstSeen! < age.minAgeMs) skip("too_recent");
      else if (selected.length >= filters.maxJobs) skip("over_cap");
      else {
        const job: CleanupJob = { certificateId: c.id, status: c.status, name: c.name, domain: c.domain };
        if (firstSeen !== undefined) job.firstSeenAt = new Date(firstSeen).toISOString();
        selected.push(job);
      }
    }
  }
  return { selected, skipped, found: found.size };
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

/** Runs one sweep. Throws a {@link CleanupError} (and enqueues nothing) when the listing fails. */
export async function runCleanup(deps: CleanupDependencies, options: CleanupRunOptions): Promise<CleanupReport> {
  const now = deps.now ?? Date.now;
  const { filters, runId } = options;
  const log = deps.logger.child({ runId });
  const started = now();
  const minAgeMs = options.minAgeMs;
  log.info("cleanup_started", {
    mode: options.mode,
    statuses: filters.statuses,
    content: filters.content,
    exclude: filters.exclude.size,
    maxJobs: filters.maxJobs,
    offsetMode: options.offsetMode,
    minAgeMs,
  });

  // Step 1: list everything. A failure here throws before anything is enqueued.
  const listing = await listCertificates(deps, options, log);
  // Step 2: ages.
  const age = await recordAges(deps, options, listing.listed, log);
  // Step 3: select, then enqueue.
  const { selected, skipped, found } = selectJobs(listing.listed, filters, age);
  let sent: { enqueued: CleanupJob[]; failed: CleanupFailure[] } = { enqueued: [], failed: [] };
  if (options.mode === "enqueue") sent = await enqueueJobs(deps, runId, selected, filters);
  // Enqueued: once withdrawn it leaves review, and an application made again must not look old at once.
  if (sent.enqueued.length > 0) await deps.sightings?.forget(sent.enqueued.map((job) => job.certificateId));

  const finished = now();
  const report: CleanupReport = {
    runId,
    mode: options.mode,
    startedAt: new Date(started).toISOString(),
    finishedAt: new Date(finished).toISOString(),
    durationMs: finished - started,
    filters: {
      statuses: filters.statuses,
      content: filters.content,
      exclude: filters.exclude.size,
      maxJobs: filters.maxJobs,
      reason: filters.reason,
    },
    ages: { tracked: deps.sightings !== undefined, minAgeMs },
    offsetMode: listing.offsetMode,
    passes: listing.passes,
    selected,
    enqueued: sent.enqueued,
    skipped,
    failed: sent.failed,
    warnings: listing.warnings,
    counts: {
      found,
      selected: selected.length,
      enqueued: sent.enqueued.length,
      failed: sent.failed.length,
      skipped: countSkips(skipped),
      unreachable: listing.passes.reduce((sum, p) => sum + p.unreachable, 0),
    },
  };
  logReport(log, report);
  return report;
}

/**
 * Records the sightings of the certificates under review that were listed (in a dry run too: it is
 * what lets a later run tell their age). Without sightings, says that ages are unknown; with an age
 * filter but no sightings, refuses to run: it would have to enqueue every certificate, however fresh.
 */
async function recordAges(
  deps: CleanupDependencies,
  options: CleanupRunOptions,
  listed: readonly ListedCertificate[],
  log: Logger,
): Promise<AgeFilter | undefined> {
  if (!deps.sightings) {
    if (options.minAgeMs !== undefined) {
      throw new CleanupError(
        "age_unknown",
        "CLEANUP_MIN_AGE needs the ledger (LEDGER_TABLE): SCM's listing gives no age, " +
          "so the sweep measures it from its first sighting; nothing was enqueued",
      );
    }
    log.info("cleanup_ages_unknown", {
      message:
        "no ledger: the sweep cannot tell how long a certificate has been under review, " +
        "so it cannot age-filter; every listed one is eligible",
    });
    return undefined;
  }
  const statuses = new Set<string>(options.filters.statuses);
  const seen = new Map<string, string>();
  for (const c of listed)
    if (statuses.has(c.status) && CERTIFICATE_ID_PATTERN.test(c.id) && !seen.has(c.id)) seen.set(c.id, c.status);
  const firstSeen = await deps.sightings.record([...seen].map(([id, status]) => ({ id, status })));
  return { firstSeen, minAgeMs: options.minAgeMs, now: (deps.now ?? Date.now)() };
}

function countSkips(skipped: readonly CleanupSkip[]): Record<SkipReason, number> {
  const counts = Object.fromEntries(SKIP_REASONS.map((r) => [r, 0])) as Record<SkipReason, number>;
  for (const s of skipped) counts[s.reason] += 1;
  return counts;
}

/** One line per job and per skip (over-the-cap ones summarised), then the totals. */
function logReport(log: Logger, report: CleanupReport): void {
  const planned = report.mode === "enqueue" ? report.enqueued : report.selected;
  for (const job of planned)
    log.info(report.mode === "enqueue" ? "cleanup_job_enqueued" : "cleanup_job_planned", { ...job });
  for (const failure of report.failed) log.error("cleanup_job_failed", { ...failure });
  const overCap = report.skipped.filter((s) => s.reason === "over_cap");
  for (const skip of report.skipped) if (skip.reason !== "over_cap") log.info("cleanup_job_skipped", { ...skip });
  if (overCap.length > 0) {
    log.warn("cleanup_over_cap", {
      maxJobs: report.filters.maxJobs,
      count: overCap.length,
      sample: overCap.slice(0, SAMPLE).map((s) => s.certificateId),
    });
  }
  log.info("cleanup_finished", {
    mode: report.mode,
    offsetMode: report.offsetMode,
    ...report.counts,
    warnings: report.warnings.length,
    durationMs: report.durationMs,
  });
}
