/**
 * The sweep's first phase: list every requested status with `GET /v3/scm/certificates` (one pass per
 * status: the API takes one `status` per call), page by page, oldest update first. The worker's rules
 * for each call (401 → fresh token once; transient → backoff; permanent → fail the run), and the
 * listing's documented limits (`limit` 10/20/50, `offset` 0..100, whatever `offset` counts).
 */
import * as z from "zod/mini";
import { classifyAnswer } from "./classify.ts";
import type { CleanupFilters } from "./cleanup-config.ts";
import {
  MAX_OFFSET,
  PAGE_SIZES,
  type CleanupDependencies,
  type CleanupRunOptions,
  type ListedCertificate,
  type StatusPass,
} from "./cleanup-types.ts";
import { CleanupError, describeError, TokenUnavailableError } from "./errors.ts";
import type { Logger } from "./logger.ts";
import { assertNever } from "./outcome.ts";
import {
  callBudget,
  MIN_CALL_BUDGET_MS,
  retryLoop,
  sleep as defaultSleep,
  type AttemptResult,
  type RetryPolicy,
} from "./retry.ts";
import type { ScmResult } from "./scm-client.ts";
import type { ScmAuth } from "./token-provider.ts";

/**
 * Oldest update first: the stalest applications (the ones a sweep is for) come first, so the job
 * cap and the offset cap cut off the freshest ones; and new applications join the end of the list
 * instead of shifting the pages still to be read.
 */
const SORT = { sort_key: "certUpdateTime", sort_dir: "ASC" } as const;

export interface Listing {
  passes: StatusPass[];
  /** Every certificate the passes returned, in listing order (repeats included). */
  listed: ListedCertificate[];
  /** How `offset` was read: detected or configured; `not_needed` when every status fit in one page. */
  offsetMode: "records" | "pages" | "not_needed";
  warnings: string[];
}

/** One listing's state, shared by its pages. */
interface ListingRun {
  deps: CleanupDependencies;
  filters: CleanupFilters;
  pageSize: number;
  /** Each listing call's retries, within the run's deadline. */
  retry: RetryPolicy;
  log: Logger;
  offsetMode: "records" | "pages" | undefined;
  offsetModeUsed: boolean;
  warnings: string[];
}

/** The largest documented page size not above `requested` (default and cap: 50). */
export function pageSizeFor(requested: number | undefined): number {
  return [...PAGE_SIZES].reverse().find((size) => size <= (requested ?? Infinity)) ?? PAGE_SIZES[0];
}

/** Lists every requested status. Throws a {@link CleanupError} when a listing call fails. */
export async function listCertificates(
  deps: CleanupDependencies,
  options: CleanupRunOptions,
  log: Logger,
): Promise<Listing> {
  const run: ListingRun = {
    deps,
    filters: options.filters,
    pageSize: pageSizeFor(options.pageSize),
    retry: {
      maxAttempts: deps.retry.maxAttempts,
      baseDelayMs: deps.retry.baseDelayMs,
      maxDelayMs: deps.retry.maxDelayMs,
      minCallBudgetMs: MIN_CALL_BUDGET_MS,
      deadline: options.deadline ?? Number.POSITIVE_INFINITY,
      now: deps.now ?? Date.now,
      random: deps.random ?? Math.random,
      sleep: deps.sleep ?? ((ms: number) => defaultSleep(ms)),
    },
    log,
    offsetMode: options.offsetMode === "auto" ? undefined : options.offsetMode,
    offsetModeUsed: false,
    warnings: [],
  };
  const passes: StatusPass[] = [];
  const listed: ListedCertificate[] = [];
  for (const status of options.filters.statuses) {
    const { pass, certificates } = await listStatus(run, status);
    passes.push(pass);
    listed.push(...certificates);
  }
  const offsetMode = run.offsetModeUsed && run.offsetMode ? run.offsetMode : "not_needed";
  return { passes, listed, offsetMode, warnings: run.warnings };
}

/**
 * Whether the listing's `offset` counts records or pages, from the first page (`offset=0`) and a
 * probe (`offset=1`, same limit). Counting records, the probe starts with the first page's second
 * record and overlaps it almost entirely; counting pages, it is the next page and overlaps it not
 * at all. A few records of slack allow for the list changing between the two calls. Undefined when
 * it cannot tell (the list changed too much, or too few records to compare).
 */
export function detectOffsetMode(
  first: readonly { id: string }[],
  probe: readonly { id: string }[],
): "records" | "pages" | undefined {
  if (first.length < 2 || probe.length === 0) return undefined;
  const firstIds = new Set(first.map((c) => c.id));
  const overlap = probe.filter((c) => firstIds.has(c.id)).length;
  if (overlap * 2 > probe.length) return "records";
  if (overlap * 4 <= probe.length) return "pages";
  return undefined;
}

/** Every page of one status that the offset cap lets us reach. */
async function listStatus(
  run: ListingRun,
  status: string,
): Promise<{ pass: StatusPass; certificates: ListedCertificate[] }> {
  const { pageSize, log, warnings } = run;
  const first = await listPage(run, status, 0);
  const certificates = [...first.certificates];
  let totalCount = first.totalCount;
  let calls = 1;
  /** Position after the last record seen. */
  let covered = first.certificates.length;
  let offset: number;
  let truncatedBy: StatusPass["truncatedBy"];

  if (first.certificates.length > 0 && covered < totalCount) {
    run.offsetModeUsed = true;
    if (run.offsetMode === undefined) {
      const probe = await listPage(run, status, 1);
      calls += 1;
      run.offsetMode = detectOffsetMode(first.certificates, probe.certificates);
      if (run.offsetMode === undefined) {
        throw new CleanupError(
          "offset_mode_unknown",
          `listing ${status} certificates: cannot tell whether the listing's offset counts records or pages (the list changed while probing); set CLEANUP_OFFSET_MODE (or --offset-mode) to records or pages; nothing was enqueued`,
        );
      }
      log.info("cleanup_offset_mode_detected", { status, offsetMode: run.offsetMode });
      if (run.offsetMode === "pages") {
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
      offset = run.offsetMode === "records" ? covered : 1;
    }

    while (covered < totalCount) {
      if (offset > MAX_OFFSET) {
        truncatedBy = "offset_cap";
        break;
      }
      const page = await listPage(run, status, offset);
      calls += 1;
      totalCount = page.totalCount;
      if (page.certificates.length === 0) {
        if (covered < totalCount) truncatedBy = "ended_early";
        break;
      }
      certificates.push(...page.certificates);
      if (run.offsetMode === "records") {
        covered = offset + page.certificates.length;
        offset = covered;
      } else {
        covered = offset * pageSize + page.certificates.length;
        offset += 1;
      }
    }
  }
  const unreachable = Math.max(0, totalCount - covered);
  const pass: StatusPass = {
    status,
    totalCount,
    listed: certificates.length,
    calls,
    unreachable,
    truncatedBy: unreachable > 0 ? (truncatedBy ?? "ended_early") : undefined,
  };
  log.info("cleanup_status_listed", { ...pass });
  if (pass.truncatedBy === "offset_cap") {
    const warning = `${status}: SCM reports ${totalCount} matching certificates but the listing's offset cap (offset ≤ ${MAX_OFFSET}, counting ${run.offsetMode}) reaches only the first ${covered}; ${unreachable} were not seen. Narrow with the content filter, or run again once these are withdrawn.`;
    warnings.push(warning);
    log.warn("cleanup_offset_cap_reached", {
      status,
      totalCount,
      reachable: covered,
      unreachable,
      offsetMode: run.offsetMode,
    });
  } else if (pass.truncatedBy === "ended_early") {
    const warning = `${status}: SCM reports ${totalCount} matching certificates but the listing ended after ${covered}; ${unreachable} were not seen (the list changed while paging?).`;
    warnings.push(warning);
    log.warn("cleanup_listing_ended_early", { status, totalCount, covered, unreachable });
  }
  return { pass, certificates };
}

/** A listing call that failed for now: SCM's answer (or network failure), kept for the run's error. */
interface ListingFailure {
  result: ScmResult;
  reason: string;
  details: { httpStatus?: number | undefined; errorCode?: string | undefined };
}

type Page = { certificates: ListedCertificate[]; totalCount: number };

/** One page, with the worker's rules: 401 → fresh token once; transient → backoff; permanent → fail the run. */
async function listPage(run: ListingRun, status: string, offset: number): Promise<Page> {
  const { deps, log } = run;
  const query = { limit: run.pageSize, offset, status, content: run.filters.content, ...SORT };
  const where = `listing ${status} certificates (offset ${offset})`;
  let token = await getToken(deps);
  let tokenRefreshed = false;
  const attempt = async (): Promise<AttemptResult<Page, ListingFailure>> => {
    const budget = callBudget(run.retry);
    if (budget === undefined) {
      throw new CleanupError("deadline", `${where}: out of time before the function's deadline; nothing was enqueued`);
    }
    const result = await deps.scm.listCertificates(query, token, { timeoutMs: Math.min(deps.retry.timeoutMs, budget) });
    const details = result.kind === "answer" ? { httpStatus: result.status, errorCode: result.errorCode } : {};
    // The worker's outcome table fits a listing call as well: the error-code table first, 401 → refresh
    // once, throttling/5xx/network → retry, anything else is permanent. A 2xx is checked for a usable
    // listing below (listing_unexpected), so every 2xx without a listed code counts as answered here.
    const decision = classifyAnswer(result, { tokenRefreshed, succeeded: () => true });
    switch (decision.kind) {
      case "withdrawn":
        return { kind: "done", value: parsePage(result, where, details) };
      case "refresh-token":
        tokenRefreshed = true;
        log.warn("cleanup_token_rejected", {
          status,
          offset,
          httpStatus: details.httpStatus,
          errorCode: details.errorCode,
        });
        token = await getToken(deps, token);
        return { kind: "again" };
      case "retry":
        return {
          kind: "retry",
          failure: { result, reason: decision.reason, details },
          retryAfterMs: decision.retryAfterMs,
        };
      case "dead-letter":
      case "check-status": {
        const unauthorized = decision.kind === "dead-letter" && decision.reason === "unauthorized";
        const hint = unauthorized ? " (the token was refreshed once and still refused)" : "";
        throw new CleanupError(
          unauthorized ? "listing_unauthorized" : "listing_rejected",
          `${where}: SCM answered ${describeResult(result)}${hint}; nothing was enqueued`,
          details,
        );
      }
      default:
        return assertNever(decision);
    }
  };
  return retryLoop(run.retry, attempt, {
    exhausted: ({ result, details }, failures) => {
      const message = `${where} failed ${failures} times, last: ${describeResult(result)}; nothing was enqueued`;
      throw new CleanupError("listing_unavailable", message, details);
    },
    outOfTime: ({ result, details }) => {
      const message = `${where}: ${describeResult(result)}, and no time left to retry before the function's deadline`;
      throw new CleanupError("deadline", `${message}; nothing was enqueued`, details);
    },
    beforeWait: ({ reason, details }, delayMs, failures) => {
      const { httpStatus, errorCode } = details;
      const fields = { status, offset, attempt: failures, reason, httpStatus, errorCode, delayMs };
      log.info("cleanup_listing_retrying", fields);
    },
  });
}

/** A 2xx listing answer's certificates, or a `listing_unexpected` failure when its body is not a listing. */
function parsePage(result: ScmResult, where: string, details: ListingFailure["details"]): Page {
  const parsed = ListAnswer.safeParse(result.kind === "answer" ? result.body : undefined);
  if (!parsed.success) {
    const answered = `SCM answered ${describeResult(result)}`;
    const message = `${where}: ${answered} without a usable {certificates, total_count} body`;
    throw new CleanupError("listing_unexpected", message, details);
  }
  const certificates = parsed.data.certificates.map((c) => ({
    id: c.id,
    status: c.status,
    name: typeof c.name === "string" ? c.name : undefined,
    domain: typeof c.domain === "string" ? c.domain : undefined,
  }));
  return { certificates, totalCount: parsed.data.total_count };
}

async function getToken(deps: CleanupDependencies, refreshFrom?: ScmAuth): Promise<ScmAuth> {
  try {
    return refreshFrom === undefined ? await deps.tokens.getToken() : await deps.tokens.refresh(refreshFrom);
  } catch (error) {
    const code = error instanceof TokenUnavailableError ? error.code : "unknown";
    throw new CleanupError(
      "token_unavailable",
      `cannot get the SCM token (${code}): ${describeError(error)}`,
      {},
      { cause: error },
    );
  }
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
