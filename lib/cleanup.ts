/**
 * The cleanup sweep: finds certificate applications still under review and enqueues one withdrawal
 * job for each, so nobody has to list ids by hand. Used by the scheduled Lambda (`handlers/cleanup.ts`)
 * and by `scm-withdraw cleanup`.
 *
 * A run has two phases, on purpose:
 *   1. **List** every requested status with `GET /v3/scm/certificates` (one pass per status: the API
 *      takes one `status` per call), page by page, oldest update first.
 *   2. **Select and enqueue**: filters (status, exclude list, cap), one job per certificate, never the
 *      same certificate twice, sent with the shared producer (`lib/producer.ts`).
 * Listing everything before enqueueing anything means (a) a listing failure leaves no partial run
 * behind: the run fails and enqueues nothing, and the next run starts clean; (b) the worker cannot
 * withdraw this run's own jobs while it is still paging, which would shift the pages under it.
 *
 * Everything that does I/O comes in as a dependency (SCM client, token provider, sender, clock,
 * logger); `createCleanupRuntime` at the bottom wires the real ones.
 */
import { createHash, randomBytes } from "node:crypto";
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { SQSClient } from "@aws-sdk/client-sqs";
import * as z from "zod/mini";
import { classifyAnswer } from "./classify.ts";
import type { CleanupConfig, CleanupFilters, OffsetMode } from "./cleanup-config.ts";
import { describeError, TokenUnavailableError } from "./errors.ts";
import { createIamExchange } from "./iam.ts";
// Types only: the ledger (and the DynamoDB SDK) is loaded only when LEDGER_TABLE is set.
import type { JobRef, Ledger } from "./ledger.ts";
import { createLogger, type Logger } from "./logger.ts";
import { buildWithdrawalBody, CERTIFICATE_ID_PATTERN } from "./message.ts";
import { createSender, type SendResult, type Sender } from "./producer.ts";
import { retryDelay, sleep as defaultSleep } from "./retry.ts";
import { createScmClient, type ScmClient, type ScmResult } from "./scm-client.ts";
import { createTokenProvider, secretsManagerReader, type IamExchange, type ScmAuth, type TokenProvider } from "./token-provider.ts";

/** The listing's documented `limit` range is 10..50: 50 means the fewest calls. */
export const MAX_PAGE_SIZE = 50;
export const MIN_PAGE_SIZE = 10;
/** The listing's documented `offset` range is 0..100: beyond it nothing can be reached. */
export const MAX_OFFSET = 100;
/**
 * Oldest update first: the stalest applications (the ones a sweep is for) come first, so the job
 * cap and the offset cap cut off the freshest ones; and new applications join the end of the list
 * instead of shifting the pages still to be read.
 */
const SORT = { sort_key: "certUpdateTime", sort_dir: "ASC" } as const;
/** Below this, a call cannot finish before the deadline; do not start it. */
const MIN_CALL_BUDGET_MS = 100;
/** How many over-the-cap ids a log line or the CLI shows; the report keeps them all. */
const SAMPLE = 20;

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

/** Why a listed certificate got no job. */
export const SKIP_REASONS = ["excluded", "duplicate", "over_cap", "status_filtered", "invalid_id"] as const;
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
  filters: { statuses: readonly string[]; content: string | undefined; exclude: number; maxJobs: number; reason: string };
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
  /**
   * Called with the selected jobs after the listing and before anything is enqueued (the CLI asks the
   * operator here); false stops the run with `not_confirmed` and nothing enqueued.
   */
  confirm?: (jobs: readonly CleanupJob[]) => Promise<boolean>;
  logger: Logger;
  retry: ListingRetry;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

/** Codes of a failed run. */
export type CleanupFailureCode =
  | "token_unavailable"
  | "listing_unauthorized"
  | "listing_rejected"
  | "listing_unavailable"
  | "listing_unexpected"
  | "offset_mode_unknown"
  | "deadline"
  | "enqueue_failed"
  | "not_confirmed";

/** A run that could not finish. Its message is the one line an operator needs; it never holds the token. */
export class CleanupError extends Error {
  readonly code: CleanupFailureCode;
  readonly httpStatus: number | undefined;
  readonly errorCode: string | undefined;
  constructor(code: CleanupFailureCode, message: string, details: { httpStatus?: number | undefined; errorCode?: string | undefined } = {}, options?: ErrorOptions) {
    super(message, options);
    this.name = "CleanupError";
    this.code = code;
    this.httpStatus = details.httpStatus;
    this.errorCode = details.errorCode;
  }
}

// ---------------------------------------------------------------------------------------------
// Pure parts
// ---------------------------------------------------------------------------------------------

/** `cleanup-20261127T101500Z-ab12`: sortable by time, and unique enough for runs started in the same second. */
export function makeRunId(at: Date, suffix: string = randomBytes(2).toString("hex")): string {
  const stamp = at.toISOString().replace(/\.\d{3}Z$/, "Z").replace(/[-:]/g, "");
  return `cleanup-${stamp}-${suffix}`;
}

/**
 * The run id of a scheduled invocation, derived from the EventBridge event: a retried invocation of
 * the same event gets the same id, so its jobs land in the same batch (and are harmless duplicates).
 */
export function runIdForEvent(event: { id?: unknown; time?: unknown }, fallback: Date): string {
  const time = typeof event.time === "string" && !Number.isNaN(Date.parse(event.time)) ? new Date(event.time) : fallback;
  const suffix = typeof event.id === "string" && event.id !== "" ? createHash("sha256").update(event.id).digest("hex").slice(0, 4) : undefined;
  return makeRunId(time, suffix);
}

/**
 * Whether the listing's `offset` counts records or pages, from the first page (`offset=0`) and a
 * probe (`offset=1`, same limit). Counting records, the probe starts with the first page's second
 * record and overlaps it almost entirely; counting pages, it is the next page and overlaps it not
 * at all. A few records of slack allow for the list changing between the two calls. Undefined when
 * it cannot tell (the list changed too much, or too few records to compare).
 */
export function detectOffsetMode(first: readonly { id: string }[], probe: readonly { id: string }[]): "records" | "pages" | undefined {
  if (first.length < 2 || probe.length === 0) return undefined;
  const firstIds = new Set(first.map((c) => c.id));
  const overlap = probe.filter((c) => firstIds.has(c.id)).length;
  if (overlap * 2 > probe.length) return "records";
  if (overlap * 4 <= probe.length) return "pages";
  return undefined;
}

/**
 * Applies the filters to what the listing returned, in listing order: a certificate whose status is
 * not requested is `status_filtered`; one already seen in this run (on another page or under another
 * status) is a `duplicate`; then `excluded`; then `over_cap` once `maxJobs` are selected.
 */
export function selectJobs(listed: readonly ListedCertificate[], filters: Pick<CleanupFilters, "statuses" | "exclude" | "maxJobs">) {
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
      if (filters.exclude.has(c.id)) skip("excluded");
      else if (selected.length >= filters.maxJobs) skip("over_cap");
      else selected.push({ certificateId: c.id, status: c.status, name: c.name, domain: c.domain });
    }
  }
  return { selected, skipped, found: found.size };
}

/** The listing's answer. Unknown fields are ignored; a certificate without an id or status makes it unusable. */
const ListAnswer = z.object({
  certificates: z.array(z.looseObject({ id: z.string(), status: z.string() })),
  total_count: z.number().check(z.int(), z.nonnegative()),
});

function describeResult(result: ScmResult): string {
  if (result.kind === "network") return `${result.failure} (${result.message})`;
  const parts = [`HTTP ${result.status}`];
  if (result.errorCode) parts.push(result.errorCode);
  if (result.errorMsg) parts.push(result.errorMsg.slice(0, 200));
  return parts.join(" ");
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

/** Runs one sweep. Throws a {@link CleanupError} (and enqueues nothing) when the listing fails. */
export async function runCleanup(deps: CleanupDependencies, options: CleanupRunOptions): Promise<CleanupReport> {
  const now = deps.now ?? Date.now;
  const sleep = deps.sleep ?? ((ms: number) => defaultSleep(ms));
  const random = deps.random ?? Math.random;
  const { filters, runId } = options;
  const pageSize = Math.max(MIN_PAGE_SIZE, Math.min(MAX_PAGE_SIZE, options.pageSize ?? MAX_PAGE_SIZE));
  const deadline = options.deadline ?? Number.POSITIVE_INFINITY;
  const log = deps.logger.child({ runId });
  const started = now();
  let offsetMode: "records" | "pages" | undefined = options.offsetMode === "auto" ? undefined : options.offsetMode;
  let offsetModeUsed = false;
  const warnings: string[] = [];

  log.info("cleanup_started", { mode: options.mode, statuses: filters.statuses, content: filters.content, exclude: filters.exclude.size, maxJobs: filters.maxJobs, offsetMode: options.offsetMode });

  const getToken = async (refreshFrom?: ScmAuth): Promise<ScmAuth> => {
    try {
      return refreshFrom === undefined ? await deps.tokens.getToken() : await deps.tokens.refresh(refreshFrom);
    } catch (error) {
      const code = error instanceof TokenUnavailableError ? error.code : "unknown";
      throw new CleanupError("token_unavailable", `cannot get the SCM token (${code}): ${describeError(error)}`, {}, { cause: error });
    }
  };

  /** One page, with the worker's rules: 401 → fresh token once; transient → backoff; permanent → fail the run. */
  const listPage = async (status: string, offset: number): Promise<{ certificates: ListedCertificate[]; totalCount: number }> => {
    const query = { limit: pageSize, offset, status, content: filters.content, ...SORT };
    const where = `listing ${status} certificates (offset ${offset})`;
    let token = await getToken();
    let tokenRefreshed = false;
    let transientFailures = 0;
    for (;;) {
      const budget = deadline - now();
      if (budget < MIN_CALL_BUDGET_MS) throw new CleanupError("deadline", `${where}: out of time before the function's deadline; nothing was enqueued`);
      const result = await deps.scm.listCertificates(query, token, { timeoutMs: Math.min(deps.retry.timeoutMs, budget) });
      const details = result.kind === "answer" ? { httpStatus: result.status, errorCode: result.errorCode } : {};
      // The worker's outcome table fits a listing call as well: the error-code table first, 401 → refresh
      // once, throttling/5xx/network → retry, anything else is permanent. A 2xx is checked for a usable
      // listing below (listing_unexpected), so every 2xx without a listed code counts as answered here.
      const decision = classifyAnswer(result, { tokenRefreshed, succeeded: () => true });
      switch (decision.kind) {
        case "withdrawn": {
          const parsed = ListAnswer.safeParse(result.kind === "answer" ? result.body : undefined);
          if (!parsed.success) throw new CleanupError("listing_unexpected", `${where}: SCM answered ${describeResult(result)} without a usable {certificates, total_count} body`, details);
          const certificates = parsed.data.certificates.map((c) => ({
            id: c.id,
            status: c.status,
            name: typeof c.name === "string" ? c.name : undefined,
            domain: typeof c.domain === "string" ? c.domain : undefined,
          }));
          return { certificates, totalCount: parsed.data.total_count };
        }
        case "refresh-token":
          tokenRefreshed = true;
          log.warn("cleanup_token_rejected", { status, offset, httpStatus: details.httpStatus, errorCode: details.errorCode });
          token = await getToken(token);
          continue;
        case "retry": {
          transientFailures += 1;
          if (transientFailures >= deps.retry.maxAttempts) {
            throw new CleanupError("listing_unavailable", `${where} failed ${transientFailures} times, last: ${describeResult(result)}; nothing was enqueued`, details);
          }
          const delayMs = retryDelay(transientFailures - 1, decision.retryAfterMs, { baseMs: deps.retry.baseDelayMs, capMs: deps.retry.maxDelayMs }, random);
          if (now() + delayMs + MIN_CALL_BUDGET_MS > deadline) {
            throw new CleanupError("deadline", `${where}: ${describeResult(result)}, and no time left to retry before the function's deadline; nothing was enqueued`, details);
          }
          log.info("cleanup_listing_retrying", { status, offset, attempt: transientFailures, reason: decision.reason, httpStatus: details.httpStatus, errorCode: details.errorCode, delayMs });
          await sleep(delayMs);
          continue;
        }
        case "dead-letter":
        case "check-status": {
          const unauthorized = decision.kind === "dead-letter" && decision.reason === "unauthorized";
          const hint = unauthorized ? " (the token was refreshed once and still refused)" : "";
          throw new CleanupError(unauthorized ? "listing_unauthorized" : "listing_rejected", `${where}: SCM answered ${describeResult(result)}${hint}; nothing was enqueued`, details);
        }
        default:
          return assertNever(decision);
      }
    }
  };

  /** Every page of one status that the offset cap lets us reach. */
  const listStatus = async (status: string): Promise<{ pass: StatusPass; certificates: ListedCertificate[] }> => {
    const first = await listPage(status, 0);
    const certificates = [...first.certificates];
    let totalCount = first.totalCount;
    let calls = 1;
    /** Position after the last record seen. */
    let covered = first.certificates.length;
    let offset: number;
    let truncatedBy: StatusPass["truncatedBy"];

    if (first.certificates.length > 0 && covered < totalCount) {
      offsetModeUsed = true;
      if (offsetMode === undefined) {
        const probe = await listPage(status, 1);
        calls += 1;
        offsetMode = detectOffsetMode(first.certificates, probe.certificates);
        if (offsetMode === undefined) {
          throw new CleanupError(
            "offset_mode_unknown",
            `listing ${status} certificates: cannot tell whether the listing's offset counts records or pages (the list changed while probing); set CLEANUP_OFFSET_MODE (or --offset-mode) to records or pages; nothing was enqueued`,
          );
        }
        log.info("cleanup_offset_mode_detected", { status, offsetMode });
        if (offsetMode === "pages") {
          // The probe was the second page: keep it.
          certificates.push(...probe.certificates);
          totalCount = probe.totalCount;
          covered = pageSize + probe.certificates.length;
          offset = 2;
        } else {
          // The probe re-read the first page shifted by one record: drop it and go on after the first page.
          offset = covered;
        }
      } else {
        offset = offsetMode === "records" ? covered : 1;
      }

      while (covered < totalCount) {
        if (offset > MAX_OFFSET) {
          truncatedBy = "offset_cap";
          break;
        }
        const page = await listPage(status, offset);
        calls += 1;
        totalCount = page.totalCount;
        if (page.certificates.length === 0) {
          if (covered < totalCount) truncatedBy = "ended_early";
          break;
        }
        certificates.push(...page.certificates);
        if (offsetMode === "records") {
          covered = offset + page.certificates.length;
          offset = covered;
        } else {
          covered = offset * pageSize + page.certificates.length;
          offset += 1;
        }
      }
    }
    const unreachable = Math.max(0, totalCount - covered);
    const pass: StatusPass = { status, totalCount, listed: certificates.length, calls, unreachable, truncatedBy: unreachable > 0 ? (truncatedBy ?? "ended_early") : undefined };
    log.info("cleanup_status_listed", { ...pass });
    if (pass.truncatedBy === "offset_cap") {
      const warning = `${status}: SCM reports ${totalCount} matching certificates but the listing's offset cap (offset ≤ ${MAX_OFFSET}, counting ${offsetMode}) reaches only the first ${covered}; ${unreachable} were not seen. Narrow with the content filter, or run again once these are withdrawn.`;
      warnings.push(warning);
      log.warn("cleanup_offset_cap_reached", { status, totalCount, reachable: covered, unreachable, offsetMode });
    } else if (pass.truncatedBy === "ended_early") {
      const warning = `${status}: SCM reports ${totalCount} matching certificates but the listing ended after ${covered}; ${unreachable} were not seen (the list changed while paging?).`;
      warnings.push(warning);
      log.warn("cleanup_listing_ended_early", { status, totalCount, covered, unreachable });
    }
    return { pass, certificates };
  };

  // Phase 1: list everything. A failure here throws before anything is enqueued.
  const passes: StatusPass[] = [];
  const listed: ListedCertificate[] = [];
  for (const status of filters.statuses) {
    const { pass, certificates } = await listStatus(status);
    passes.push(pass);
    listed.push(...certificates);
  }

  // Phase 2: select, then enqueue.
  const { selected, skipped, found } = selectJobs(listed, filters);
  const enqueued: CleanupJob[] = [];
  const failed: CleanupFailure[] = [];
  if (options.mode === "enqueue" && selected.length > 0) {
    if (!deps.createSender) throw new CleanupError("enqueue_failed", "enqueue mode needs a queue: no sender was configured (WITHDRAWAL_QUEUE_URL / --queue-url)");
    if (deps.confirm && !(await deps.confirm(selected))) throw new CleanupError("not_confirmed", "not confirmed: nothing was enqueued");
    const byId = new Map(selected.map((job) => [job.certificateId, job]));
    const sender = deps.createSender((result) => {
      const job = byId.get(result.key)!;
      if (result.ok) enqueued.push({ ...job, messageId: result.messageId });
      else failed.push({ certificateId: result.key, error: result.error });
    });
    const requestedAt = new Date(now()).toISOString();
    // One id per run and certificate: a retried invocation of the same scheduled event sends the same ids.
    const requestId = (certificateId: string) => `${runId}-${certificateId}`;
    const ref = (certificateId: string): JobRef => ({ requestId: requestId(certificateId), batchId: runId, certificateId, source: "cleanup" });
    // Recorded before they are sent, so no worker outcome can come before "queued".
    await deps.ledger?.recordQueued(selected.map((job) => ref(job.certificateId)), { batchId: runId, source: "cleanup" });
    for (const job of selected) {
      const body = buildWithdrawalBody({
        certificate_id: job.certificateId,
        source: "cleanup",
        batch_id: runId,
        request_id: requestId(job.certificateId),
        reason: filters.reason,
        requested_at: requestedAt,
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
  }

  const finished = now();
  const skippedCounts = Object.fromEntries(SKIP_REASONS.map((r) => [r, 0])) as Record<SkipReason, number>;
  for (const s of skipped) skippedCounts[s.reason] += 1;
  const report: CleanupReport = {
    runId,
    mode: options.mode,
    startedAt: new Date(started).toISOString(),
    finishedAt: new Date(finished).toISOString(),
    durationMs: finished - started,
    filters: { statuses: filters.statuses, content: filters.content, exclude: filters.exclude.size, maxJobs: filters.maxJobs, reason: filters.reason },
    offsetMode: offsetModeUsed && offsetMode ? offsetMode : "not_needed",
    passes,
    selected,
    enqueued,
    skipped,
    failed,
    warnings,
    counts: {
      found,
      selected: selected.length,
      enqueued: enqueued.length,
      failed: failed.length,
      skipped: skippedCounts,
      unreachable: passes.reduce((sum, p) => sum + p.unreachable, 0),
    },
  };
  logReport(log, report);
  return report;
}

/** One line per job and per skip (over-the-cap ones summarised), then the totals. */
function logReport(log: Logger, report: CleanupReport): void {
  const planned = report.mode === "enqueue" ? report.enqueued : report.selected;
  for (const job of planned) log.info(report.mode === "enqueue" ? "cleanup_job_enqueued" : "cleanup_job_planned", { ...job });
  for (const failure of report.failed) log.error("cleanup_job_failed", { ...failure });
  const overCap = report.skipped.filter((s) => s.reason === "over_cap");
  for (const skip of report.skipped) if (skip.reason !== "over_cap") log.info("cleanup_job_skipped", { ...skip });
  if (overCap.length > 0) {
    log.warn("cleanup_over_cap", { maxJobs: report.filters.maxJobs, count: overCap.length, sample: overCap.slice(0, SAMPLE).map((s) => s.certificateId) });
  }
  log.info("cleanup_finished", { mode: report.mode, offsetMode: report.offsetMode, ...report.counts, warnings: report.warnings.length, durationMs: report.durationMs });
}

function assertNever(value: never): never {
  throw new Error(`unhandled case: ${JSON.stringify(value)}`);
}

// ---------------------------------------------------------------------------------------------
// Real dependencies
// ---------------------------------------------------------------------------------------------

/** SDK calls must not outlive the Lambda: the SDK's default has no request timeout at all. */
const AWS_REQUEST_HANDLER = { connectionTimeout: 3000, requestTimeout: 5000 } as const;

export interface CleanupRuntimeOverrides {
  sqs?: SQSClient;
  secretsManager?: SecretsManagerClient;
  scm?: ScmClient;
  /** Replaces the Secrets Manager token provider (the CLI's `--token-file`). */
  tokens?: TokenProvider;
  /** For secrets holding IAM credentials (`{"iam": {...}}`); default: the real exchange with `IAM_ENDPOINT`. */
  exchangeIam?: IamExchange;
  logger?: Logger;
  /** Replaces the ledger built from `config.ledgerTable` (tests). */
  ledger?: CleanupDependencies["ledger"];
}

export interface CleanupRuntime {
  config: CleanupConfig;
  logger: Logger;
  /** One sweep with the configured filters and mode; `mode: "off"` is the caller's business. */
  run(options: { runId: string; deadline?: number; mode?: CleanupRunMode }): Promise<CleanupReport>;
  close(): void;
}

/** Builds the sweep's real dependencies once (per container, or per CLI run) from its configuration. */
export function createCleanupRuntime(config: CleanupConfig, overrides: CleanupRuntimeOverrides = {}): CleanupRuntime {
  const logger = overrides.logger ?? createLogger({ level: config.logLevel });
  const scm = overrides.scm ?? createScmClient({ endpoint: config.scmEndpoint, timeoutMs: config.scmTimeoutMs, maxSockets: 2 });
  let secretsManager: SecretsManagerClient | undefined;
  let iam: ReturnType<typeof createIamExchange> | undefined;
  const tokens =
    overrides.tokens ??
    createTokenProvider({
      readSecret: secretsManagerReader((secretsManager = overrides.secretsManager ?? new SecretsManagerClient({ requestHandler: AWS_REQUEST_HANDLER })), config.tokenSecretId),
      ttlMs: config.tokenCacheTtlMs,
      iamRefreshMarginMs: config.iamTokenRefreshMarginMs,
      // Used only when the secret holds {"iam": ...}, as in the worker; it opens no connection until then.
      exchangeIam: overrides.exchangeIam ?? (iam = createIamExchange({ endpoint: config.iamEndpoint, timeoutMs: config.iamTimeoutMs, secretId: config.tokenSecretId })).exchange,
    });
  const queueUrl = config.queueUrl;
  // With an endpoint override (a local emulator), the SDK must not send to the queue URL's host.
  const sqs = queueUrl ? (overrides.sqs ?? new SQSClient({ useQueueUrlAsEndpoint: !config.sqsEndpointOverridden, requestHandler: AWS_REQUEST_HANDLER })) : undefined;
  const deps: CleanupDependencies = {
    scm,
    tokens,
    logger,
    retry: { maxAttempts: config.maxAttempts, baseDelayMs: config.retryBaseDelayMs, maxDelayMs: config.retryMaxDelayMs, timeoutMs: config.scmTimeoutMs },
    ...(sqs && queueUrl ? { createSender: (onResult: (result: SendResult<string>) => void) => createSender<string>({ sqs, queueUrl, onResult }) } : {}),
  };
  const ledger = overrides.ledger ? undefined : config.ledgerTable ? lazyLedger(config.ledgerTable, logger) : undefined;
  const ledgerDeps = overrides.ledger ?? ledger;
  if (ledgerDeps) deps.ledger = ledgerDeps;
  return {
    config,
    logger,
    run: ({ runId, deadline, mode }) =>
      runCleanup(deps, {
        runId,
        mode: mode ?? (config.mode === "enqueue" ? "enqueue" : "dry-run"),
        filters: config.filters,
        offsetMode: config.offsetMode,
        ...(deadline === undefined ? {} : { deadline }),
      }),
    close: () => {
      if (!overrides.scm) scm.close();
      if (sqs && !overrides.sqs) sqs.destroy();
      if (secretsManager && !overrides.secretsManager) secretsManager.destroy();
      iam?.close();
      ledger?.close();
    },
  };
}

/** The ledger, loaded (with the DynamoDB SDK) on the first run that enqueues something. */
function lazyLedger(tableName: string, logger: Logger) {
  let created: { destroy(): void } | undefined;
  let loading: Promise<Ledger> | undefined;
  const load = () =>
    (loading ??= Promise.all([import("@aws-sdk/client-dynamodb"), import("./ledger.ts")]).then(([{ DynamoDBClient }, { createLedger }]) => {
      const client = new DynamoDBClient({ requestHandler: AWS_REQUEST_HANDLER });
      created = client;
      return createLedger({ client, tableName, logger });
    }));
  return {
    recordQueued: async (...args: Parameters<Ledger["recordQueued"]>) => (await load()).recordQueued(...args),
    recordNotSent: async (...args: Parameters<Ledger["recordNotSent"]>) => (await load()).recordNotSent(...args),
    recordBatch: async (...args: Parameters<Ledger["recordBatch"]>) => (await load()).recordBatch(...args),
    close: () => created?.destroy(),
  };
}
