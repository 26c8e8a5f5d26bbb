/**
 * The cleanup sweep's vocabulary: what a run takes, what it reports, and how it fails. Shared by the
 * run (`cleanup.ts`), its listing (`cleanup-listing.ts`) and its enqueueing (`cleanup-enqueue.ts`).
 */
// Types only: the ledger (and the DynamoDB SDK) is loaded only when LEDGER_TABLE is set.
import type { CleanupFilters, OffsetMode } from "./cleanup-config.ts";
import type { Ledger } from "./ledger.ts";
import type { Logger } from "./logger.ts";
import type { SendResult, Sender } from "./producer.ts";
import type { ScmClient } from "./scm-client.ts";
import type { Sightings } from "./sightings.ts";
import type { TokenProvider } from "./token-provider.ts";

/** The listing's documented `limit` values (10, 20 or 50): 50 means the fewest calls. */
export const PAGE_SIZES = [10, 20, 50] as const;
export const MAX_PAGE_SIZE = 50;
/** The listing's documented `offset` range is 0..100: beyond it nothing can be reached. */
export const MAX_OFFSET = 100;

/** Why a listed certificate got no job. */
export const SKIP_REASONS = [
  "excluded",
  "duplicate",
  "over_cap",
  "status_filtered",
  "invalid_id",
  "too_recent",
  "age_unknown",
] as const;
export type SkipReason = (typeof SKIP_REASONS)[number];

/** One certificate as the listing showed it. */
export interface ListedCertificate {
  id: string;
  status: string;
  name: string | undefined;
  domain: string | undefined;
}

/** One listing pass (one status). */
export interface StatusPass {
  status: string;
  /** `total_count` of the last page: how many certificates SCM says match. */
  totalCount: number;
  /** Certificates returned over all pages (repeats included). */
  listed: number;
  /** Listing calls made, the offset probe included. */
  calls: number;
  /** Matching certificates the listing could not show: past the offset cap, or the list ended early. */
  unreachable: number;
  /** Why the pass stopped before `totalCount`, when it did. */
  truncatedBy: "offset_cap" | "ended_early" | undefined;
}

export interface CleanupJob {
  certificateId: string;
  status: string;
  name: string | undefined;
  domain: string | undefined;
  /** When the sweep first saw it under review (ISO-8601), with the ledger. */
  firstSeenAt?: string;
  /** The SQS message id, once enqueued. */
  messageId?: string;
}

export interface CleanupSkip {
  certificateId: string;
  status: string;
  reason: SkipReason;
}

export interface CleanupFailure {
  certificateId: string;
  error: string;
}

export type CleanupRunMode = "dry-run" | "enqueue";

export interface CleanupReport {
  runId: string;
  mode: CleanupRunMode;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  filters: {
    statuses: readonly string[];
    content: string | undefined;
    exclude: number;
    maxJobs: number;
    reason: string;
  };
  /**
   * Ages: `tracked` when the ledger keeps first sightings (`lib/sightings.ts`); `minAgeMs` is the
   * filter (`CLEANUP_MIN_AGE`), undefined for none. Without the ledger nothing can be age-filtered.
   */
  ages: { tracked: boolean; minAgeMs: number | undefined };
  /** How the listing's `offset` was read: detected or configured; `not_needed` when every status fit in one page. */
  offsetMode: "records" | "pages" | "not_needed";
  passes: StatusPass[];
  /** Jobs that pass every filter, within the cap: what was (or, in a dry run, would be) enqueued. */
  selected: CleanupJob[];
  /** Jobs sent to the queue, with their message ids (empty in a dry run). */
  enqueued: CleanupJob[];
  skipped: CleanupSkip[];
  /** Jobs the queue refused even after retries. */
  failed: CleanupFailure[];
  /** One line per thing an operator must know (the offset cap, a list that ended early). */
  warnings: string[];
  counts: {
    /** Distinct certificates the listing returned. */
    found: number;
    selected: number;
    enqueued: number;
    failed: number;
    skipped: Record<SkipReason, number>;
    /** Sum of `unreachable` over the passes. */
    unreachable: number;
  };
}

export interface CleanupRunOptions {
  /** The run's id, used as every job's `batch_id` (see {@link makeRunId}). */
  runId: string;
  mode: CleanupRunMode;
  filters: CleanupFilters;
  offsetMode: OffsetMode;
  /** Records per listing call, 10..50 (default 50, the API's maximum). */
  pageSize?: number;
  /** Ms since the epoch after which no listing call starts; the run then fails (nothing enqueued). */
  deadline?: number;
  /** Enqueue only certificates first seen under review at least this long ago (needs `sightings`). */
  minAgeMs?: number | undefined;
}

export interface ListingRetry {
  /** Calls per listing page for transient failures, the first one included. */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** One call's time limit. */
  timeoutMs: number;
}

export interface CleanupDependencies {
  scm: Pick<ScmClient, "listCertificates">;
  tokens: TokenProvider;
  /** Makes the sender for one run (`createSender` from `lib/producer.ts`); needed in `enqueue` mode only. */
  createSender?: (onResult: (result: SendResult<string>) => void) => Sender<string>;
  /**
   * The optional ledger (lib/ledger.ts): the run's jobs are recorded as queued before they are sent,
   * under the run id as batch id, and the run's total at the end, so `scm-withdraw batch status <run id>`
   * follows it. Its failures are logged by the ledger and never stop the run.
   */
  ledger?: Pick<Ledger, "recordQueued" | "recordNotSent" | "recordBatch">;
  /** Stamped as `requested_by` on every job (the audit trail): the operator, or the sweep's own function. */
  requestedBy?: string;
  /**
   * Called with the selected jobs after the listing and before anything is enqueued (the CLI asks the
   * operator here); false stops the run with `not_confirmed` and nothing enqueued.
   */
  confirm?: (jobs: readonly CleanupJob[]) => Promise<boolean>;
  /** First sightings of certificates under review (`lib/sightings.ts`, in the ledger's table): their ages. */
  sightings?: Sightings;
  logger: Logger;
  retry: ListingRetry;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}
