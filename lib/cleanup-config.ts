/**
 * The cleanup sweep's configuration: one schema, read once, from the environment (the scheduled
 * Lambda), and the same filter rules for the CLI's flags (`scm-withdraw cleanup`).
 *
 * A bad configuration fails at start with one `ConfigError` naming every bad variable (or flag),
 * what was wrong and what was given, like `lib/config.ts`. The sweep is safe by default: without
 * `CLEANUP_MODE` it runs as a dry run and enqueues nothing.
 */
import * as z from "zod/mini";
import {
  ConfigError,
  DEFAULT_IAM_ENDPOINT,
  isAcceptableEndpoint,
  LOG_LEVEL_SCHEMA,
  logLevelInput,
  type ConfigProblem,
  type LogLevel,
} from "./config.ts";
import { CERTIFICATE_ID_PATTERN } from "./message.ts";

/**
 * The statuses in which a certificate has an application under review, i.e. the only ones the
 * sweep may list: withdrawing anything else is refused by SCM (`SCM.0010`) and would only fill the
 * DLQ. Status names from `GET /v3/scm/certificates` (`CHECKING`: under review; `CHECKING_ORG`:
 * awaiting organisation validation; `SUPPLEMENTCHECKING`: supplementary review).
 */
export const REVIEW_STATUSES = ["CHECKING", "CHECKING_ORG", "SUPPLEMENTCHECKING"] as const;
export type ReviewStatus = (typeof REVIEW_STATUSES)[number];

/** `off`: do nothing; `dry-run`: list and report, enqueue nothing; `enqueue`: send one job per match. */
export const CLEANUP_MODES = ["off", "dry-run", "enqueue"] as const;
export type CleanupMode = (typeof CLEANUP_MODES)[number];

/**
 * What the listing's `offset` counts. Huawei documents `offset` 0..100 without saying whether it is
 * a record or a page index (unverified): `auto` finds out with one probe the first time a second
 * page is needed; `records`/`pages` skip the probe once you know.
 */
export const OFFSET_MODES = ["auto", "records", "pages"] as const;
export type OffsetMode = (typeof OFFSET_MODES)[number];

export const DEFAULT_CLEANUP_REASON = "cleanup sweep: application still under review";
export const DEFAULT_MAX_JOBS = 100;
/** A guard against a typo like `CLEANUP_MAX_JOBS=100000`: more than this per run is a bulk job, not a sweep. */
export const MAX_MAX_JOBS = 10_000;
/** `CLEANUP_MIN_AGE` bounds: a minute (tests, demos) to a year. */
const MIN_AGE_RANGE_MS = { min: 60_000, max: 365 * 86_400_000 } as const;
const DURATION_UNITS_MS = { m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
export const MIN_AGE_FORMAT = "a whole number of minutes, hours or days, e.g. 90m, 36h, 7d (1m to 365d)";

/** `7d`, `36h`, `90m` in ms; undefined when it is not one (or out of range). */
export function parseMinAge(text: string): number | undefined {
  const match = /^(\d{1,6})\s*([mhd])$/i.exec(text.trim());
  if (!match) return undefined;
  const ms = Number(match[1]) * DURATION_UNITS_MS[match[2]!.toLowerCase() as keyof typeof DURATION_UNITS_MS];
  return ms >= MIN_AGE_RANGE_MS.min && ms <= MIN_AGE_RANGE_MS.max ? ms : undefined;
}

/** The `content` search text; SCM does not document a limit, names and domains fit in 255. */
const MAX_CONTENT_LENGTH = 255;

/** What the sweep selects. The same shape whether it came from the environment or from CLI flags. */
export interface CleanupFilters {
  /** One listing pass per status, in this order. */
  statuses: readonly ReviewStatus[];
  /** SCM's name/domain search (`content`), or undefined for all. */
  content: string | undefined;
  /** Certificate ids never to enqueue. */
  exclude: ReadonlySet<string>;
  /** At most this many jobs per run; the rest are reported as `over_cap`. */
  maxJobs: number;
  /** Put in every job's `reason` (the audit trail). */
  reason: string;
}

export interface CleanupConfig {
  mode: CleanupMode;
  filters: CleanupFilters;
  offsetMode: OffsetMode;
  scmEndpoint: string;
  tokenSecretId: string;
  /** The withdrawals queue; required in `enqueue` mode only. */
  queueUrl: string | undefined;
  scmTimeoutMs: number;
  /** Calls per listing page, the first one included, for transient failures. */
  maxAttempts: number;
  retryBaseDelayMs: number;
  retryMaxDelayMs: number;
  tokenCacheTtlMs: number;
  iamTokenRefreshMarginMs: number;
  /** Where `{"iam": ...}` secrets are exchanged for tokens when the secret names no endpoint (as for the worker). */
  iamEndpoint: string;
  iamTimeoutMs: number;
  /** Time kept free at the end of an invocation to enqueue and report. */
  deadlineMarginMs: number;
  logLevel: LogLevel;
  /** True when the SDK's SQS endpoint is overridden (a local emulator): queue URLs then must not pick the host. */
  sqsEndpointOverridden: boolean;
  /** The optional ledger table (`LEDGER_TABLE`): enqueued jobs are recorded there as queued. */
  ledgerTable: string | undefined;
  /**
   * `CLEANUP_MIN_AGE`: enqueue only certificates the sweep has seen under review for at least this long
   * (first sightings are kept in the ledger: it needs `LEDGER_TABLE`). Undefined: no age filter.
   */
  minAgeMs: number | undefined;
}

/** The raw text of the filter settings, and the name to blame for each in an error (a variable or a flag). */
export interface RawFilters {
  statuses?: string | undefined;
  content?: string | undefined;
  /** Comma-, space- or newline-separated ids; `#` starts a comment (so an exclude file can say why). */
  exclude?: string | undefined;
  maxJobs?: string | undefined;
  reason?: string | undefined;
}
export type FilterNames = Record<keyof RawFilters, string>;

export const ENV_FILTER_NAMES: FilterNames = {
  statuses: "CLEANUP_STATUSES",
  content: "CLEANUP_CONTENT",
  exclude: "CLEANUP_EXCLUDE",
  maxJobs: "CLEANUP_MAX_JOBS",
  reason: "CLEANUP_REASON",
};

/**
 * Checks the filter settings and returns them, or the problems (every one, each naming its
 * variable or flag). Shared by the environment schema and the CLI.
 */
export function parseCleanupFilters(
  raw: RawFilters,
  names: FilterNames = ENV_FILTER_NAMES,
): { filters: CleanupFilters; problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = [];
  const blank = (value: string | undefined) => value === undefined || value.trim() === "";

  let statuses: ReviewStatus[] = [...REVIEW_STATUSES];
  if (!blank(raw.statuses)) {
    const items = raw
      .statuses!.split(/[\s,]+/)
      .filter(Boolean)
      .map((s) => s.toUpperCase());
    const unknown = items.filter((s) => !(REVIEW_STATUSES as readonly string[]).includes(s));
    if (unknown.length > 0) {
      problems.push({
        variable: names.statuses,
        message: `must list statuses with an application under review (${REVIEW_STATUSES.join(", ")}); ${unknown.join(", ")} cannot be withdrawn`,
        given: raw.statuses!.trim(),
      });
    } else {
      statuses = [...new Set(items)] as ReviewStatus[];
    }
  }

  let content: string | undefined;
  if (!blank(raw.content)) {
    content = raw.content!.trim();
    if (content.length > MAX_CONTENT_LENGTH || /[\u0000-\u001f\u007f]/.test(content)) {
      problems.push({
        variable: names.content,
        message: `must be a name or domain fragment of at most ${MAX_CONTENT_LENGTH} printable characters`,
        given: content,
      });
      content = undefined;
    }
  }

  const exclude = new Set<string>();
  if (!blank(raw.exclude)) {
    const bad: string[] = [];
    for (const line of raw.exclude!.split(/\r?\n/)) {
      for (const item of line
        .replace(/#.*$/, "")
        .split(/[\s,]+/)
        .filter(Boolean)) {
        if (CERTIFICATE_ID_PATTERN.test(item)) exclude.add(item);
        else bad.push(item);
      }
    }
    // An id that does not parse protects nothing: a typo here must stop the run, not be ignored.
    if (bad.length > 0) {
      problems.push({
        variable: names.exclude,
        message: `has ids that are not 16 characters A-Z, a-z, 0-9: ${bad
          .slice(0, 5)
          .map((b) => JSON.stringify(b))
          .join(", ")}${bad.length > 5 ? ` and ${bad.length - 5} more` : ""}`,
      });
    }
  }

  let maxJobs = DEFAULT_MAX_JOBS;
  if (!blank(raw.maxJobs)) {
    const text = raw.maxJobs!.trim();
    const value = Number(text);
    if (!/^\d+$/.test(text) || value < 1 || value > MAX_MAX_JOBS) {
      problems.push({ variable: names.maxJobs, message: `must be an integer from 1 to ${MAX_MAX_JOBS}`, given: text });
    } else {
      maxJobs = value;
    }
  }

  let reason = DEFAULT_CLEANUP_REASON;
  if (!blank(raw.reason)) {
    reason = raw.reason!.trim();
    if (reason.length > 256) {
      problems.push({
        variable: names.reason,
        message: "must be at most 256 characters (the message schema's limit)",
        given: `${reason.slice(0, 40)}…`,
      });
      reason = DEFAULT_CLEANUP_REASON;
    }
  }

  return { filters: { statuses, content, exclude, maxJobs, reason }, problems };
}

const integer = (min: number, max: number, fallback: number) => {
  const error = `must be an integer from ${min} to ${max}`;
  return z._default(
    z.coerce.number({ error }).check(z.int({ error }), z.minimum(min, { error }), z.maximum(max, { error })),
    fallback,
  );
};

const required = z.string({ error: "is required" }).check(z.minLength(1, { error: "is required" }));

const EnvSchema = z.object({
  CLEANUP_MODE: z._default(z.enum(CLEANUP_MODES, { error: `must be one of ${CLEANUP_MODES.join(", ")}` }), "dry-run"),
  CLEANUP_OFFSET_MODE: z._default(z.enum(OFFSET_MODES, { error: `must be one of ${OFFSET_MODES.join(", ")}` }), "auto"),
  SCM_ENDPOINT: required.check(
    z.refine(isAcceptableEndpoint, {
      error: "must be an https:// URL (http:// only for loopback hosts), without credentials, query or fragment",
    }),
  ),
  SCM_TOKEN_SECRET_ID: required,
  WITHDRAWAL_QUEUE_URL: z.optional(
    z.string().check(
      z.refine((v) => /^https?:\/\/[^/]+\/\d+\/[\w-]+(\.fifo)?$/.test(v), {
        error: "must be an SQS queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)",
      }),
    ),
  ),
  SCM_TIMEOUT_MS: integer(100, 900_000, 10_000),
  MAX_ATTEMPTS: integer(1, 10, 3),
  RETRY_BASE_DELAY_MS: integer(1, 60_000, 200),
  RETRY_MAX_DELAY_MS: integer(1, 300_000, 5000),
  TOKEN_CACHE_TTL_MS: integer(0, 86_400_000, 300_000),
  IAM_TOKEN_REFRESH_MARGIN_MS: integer(0, 82_800_000, 3_600_000),
  IAM_ENDPOINT: z._default(
    z.string().check(
      z.refine(isAcceptableEndpoint, {
        error: "must be an https:// URL (http:// only for loopback hosts), without credentials, query or fragment",
      }),
    ),
    DEFAULT_IAM_ENDPOINT,
  ),
  IAM_TIMEOUT_MS: integer(100, 60_000, 5000),
  DEADLINE_MARGIN_MS: integer(0, 300_000, 10_000),
  LOG_LEVEL: LOG_LEVEL_SCHEMA,
  LEDGER_TABLE: z.optional(z.string()),
  CLEANUP_MIN_AGE: z.optional(
    z.string().check(z.refine((v) => parseMinAge(v) !== undefined, { error: `must be ${MIN_AGE_FORMAT}` })),
  ),
});

const VARIABLES = Object.keys(EnvSchema.shape) as (keyof typeof EnvSchema.shape)[];
const FILTER_VARIABLES = Object.values(ENV_FILTER_NAMES);

/** Reads and checks the sweep's configuration; throws one `ConfigError` naming every bad variable. */
export function loadCleanupConfig(env: NodeJS.ProcessEnv = process.env): CleanupConfig {
  const input: Record<string, string> = {};
  // An empty variable counts as unset, so `FOO=` falls back to the default.
  for (const name of [...VARIABLES, ...FILTER_VARIABLES]) {
    const value = env[name]?.trim();
    if (value) input[name] = value;
  }
  const logLevel = logLevelInput(env);
  if (logLevel !== undefined) input.LOG_LEVEL = logLevel;
  const problems: ConfigProblem[] = [];
  const parsed = EnvSchema.safeParse(input);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const variable = String(issue.path[0]);
      const given = input[variable];
      if (!problems.some((p) => p.variable === variable && p.message === issue.message))
        problems.push({ variable, message: issue.message, ...(given === undefined ? {} : { given }) });
    }
  }
  const { filters, problems: filterProblems } = parseCleanupFilters({
    statuses: input.CLEANUP_STATUSES,
    content: input.CLEANUP_CONTENT,
    exclude: input.CLEANUP_EXCLUDE,
    maxJobs: input.CLEANUP_MAX_JOBS,
    reason: input.CLEANUP_REASON,
  });
  problems.push(...filterProblems);
  if (parsed.success) {
    const e = parsed.data;
    if (e.CLEANUP_MODE === "enqueue" && !e.WITHDRAWAL_QUEUE_URL) {
      problems.push({ variable: "WITHDRAWAL_QUEUE_URL", message: "is required when CLEANUP_MODE is enqueue" });
    }
    if (e.RETRY_MAX_DELAY_MS < e.RETRY_BASE_DELAY_MS) {
      problems.push({
        variable: "RETRY_MAX_DELAY_MS",
        message: `must be at least RETRY_BASE_DELAY_MS (${e.RETRY_BASE_DELAY_MS})`,
        given: String(e.RETRY_MAX_DELAY_MS),
      });
    }
    // SCM's listing gives no age: without the ledger's first sightings the filter could only be ignored.
    if (e.CLEANUP_MIN_AGE && !e.LEDGER_TABLE) {
      problems.push({
        variable: "CLEANUP_MIN_AGE",
        message:
          "needs LEDGER_TABLE: SCM's listing gives no age, so the sweep measures it from its first sighting, " +
          "kept in the ledger",
        given: e.CLEANUP_MIN_AGE,
      });
    }
  }
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);

  const e = parsed.data;
  return {
    mode: e.CLEANUP_MODE,
    filters,
    offsetMode: e.CLEANUP_OFFSET_MODE,
    scmEndpoint: e.SCM_ENDPOINT.replace(/\/+$/, ""),
    tokenSecretId: e.SCM_TOKEN_SECRET_ID,
    queueUrl: e.WITHDRAWAL_QUEUE_URL,
    scmTimeoutMs: e.SCM_TIMEOUT_MS,
    maxAttempts: e.MAX_ATTEMPTS,
    retryBaseDelayMs: e.RETRY_BASE_DELAY_MS,
    retryMaxDelayMs: e.RETRY_MAX_DELAY_MS,
    tokenCacheTtlMs: e.TOKEN_CACHE_TTL_MS,
    iamTokenRefreshMarginMs: e.IAM_TOKEN_REFRESH_MARGIN_MS,
    iamEndpoint: e.IAM_ENDPOINT.replace(/\/+$/, ""),
    iamTimeoutMs: e.IAM_TIMEOUT_MS,
    deadlineMarginMs: e.DEADLINE_MARGIN_MS,
    logLevel: e.LOG_LEVEL,
    sqsEndpointOverridden: Boolean(env.AWS_ENDPOINT_URL_SQS || env.AWS_ENDPOINT_URL),
    ledgerTable: e.LEDGER_TABLE || undefined,
    minAgeMs: e.CLEANUP_MIN_AGE === undefined ? undefined : parseMinAge(e.CLEANUP_MIN_AGE),
  };
}
