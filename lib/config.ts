/**
 * Configuration: one schema, read once, from the environment.
 *
 * Nothing else in the project reads `process.env`. A bad configuration fails at start with one
 * `ConfigError` that names every bad variable, what was wrong and what was given.
 */
import * as z from "zod/mini";
import { redact } from "./redact.ts";

export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Lambda's application log levels (the function's LoggingConfig, given as AWS_LAMBDA_LOG_LEVEL), as ours. */
const LAMBDA_LOG_LEVELS: Readonly<Record<string, LogLevel>> = {
  trace: "debug",
  debug: "debug",
  info: "info",
  warn: "warn",
  error: "error",
  fatal: "error",
};

/**
 * The LOG_LEVEL to check: LOG_LEVEL in any case (`DEBUG`, as Powertools and Lambda spell it), else
 * Lambda's own AWS_LAMBDA_LOG_LEVEL (TRACE reads as debug, FATAL as error), else unset (info).
 */
export function logLevelInput(env: NodeJS.ProcessEnv): string | undefined {
  const own = env.LOG_LEVEL?.trim();
  if (own) return own;
  return LAMBDA_LOG_LEVELS[env.AWS_LAMBDA_LOG_LEVEL?.trim().toLowerCase() ?? ""];
}

/** LOG_LEVEL's rule, shared by the worker's and the sweep's schemas (give it `logLevelInput`). */
export const LOG_LEVEL_SCHEMA = z._default(
  z.pipe(
    z.string().check(z.toLowerCase()),
    z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(", ")} (any case)` }),
  ),
  "info",
);

/** How the worker limits its SCM calls (`SCM_RATE_LIMIT`). */
export const SCM_RATE_LIMIT_MODES = ["adaptive", "fixed"] as const;
export type ScmRateLimitMode = (typeof SCM_RATE_LIMIT_MODES)[number];
/** Certificate statuses that mean "no application under review" (an assumption about SCM; see docs/contract.md). */
export const DEFAULT_ALREADY_WITHDRAWN_STATUSES = ["PAID", "CANCELCHECKING"] as const;

export interface Config {
  scmEndpoint: string;
  tokenSecretId: string;
  dlqUrl: string;
  maxAttempts: number;
  retryBaseDelayMs: number;
  retryMaxDelayMs: number;
  scmTimeoutMs: number;
  maxReceiveCount: number;
  batchConcurrency: number;
  tokenCacheTtlMs: number;
  /**
   * SCM calls per second per container: where the adaptive limiter starts, or with `scmRateLimit`
   * `fixed` the fixed limit; undefined = no limit (until the gateway first throttles, when adaptive).
   */
  scmMaxRps: number | undefined;
  /** `adaptive`: find this container's share of SCM's limit (lib/rate-limiter.ts); `fixed`: SCM_MAX_RPS as set. */
  scmRateLimit: ScmRateLimitMode;
  logLevel: LogLevel;
  alreadyWithdrawnStatuses: readonly string[];
  /** IAM tokens are replaced this long before their `expires_at`. */
  iamTokenRefreshMarginMs: number;
  /** Where `{"iam": ...}` credentials are exchanged when the secret names no endpoint (no trailing slash). */
  iamEndpoint: string;
  /** One IAM token request's time limit. */
  iamTimeoutMs: number;
  /** Time kept free at the end of an invocation for dead-letter sends and the response. */
  deadlineMarginMs: number;
  /** Optional DynamoDB ledger table. */
  ledgerTable: string | undefined;
  /** True when the SDK's SQS endpoint is overridden (local emulator): queue URLs then must not pick the host. */
  sqsEndpointOverridden: boolean;
  /**
   * `RETRY_VISIBILITY_SCHEDULE`: the ceiling, in seconds, of the jittered delay before the next delivery
   * of a record left for retry, by receive count (the last entry repeats). Empty: keep the queue's timeout.
   */
  retryVisibilitySchedule: readonly number[];
}

/** SQS's limit on a message's visibility timeout (12 hours). */
export const MAX_VISIBILITY_SECONDS = 43_200;
/** The default backoff across deliveries: 15 s, 1 min, 4 min, 15 min (ceilings; full jitter below them). */
export const DEFAULT_RETRY_VISIBILITY_SCHEDULE = "15s,1m,4m,15m";
const SCHEDULE_RULE = `must be "off" or a comma-separated list of durations up to 12h, e.g. ${DEFAULT_RETRY_VISIBILITY_SCHEDULE}`;

/** `15s,1m,4m,15m` → [15, 60, 240, 900] (seconds; a bare number is seconds); `off` → []; undefined if invalid. */
export function parseVisibilitySchedule(text: string): number[] | undefined {
  if (text.trim().toLowerCase() === "off") return [];
  const unit = { s: 1, m: 60, h: 3600 } as const;
  const seconds = text.split(",").map((part) => {
    const match = /^\s*(\d{1,5})\s*([smh]?)\s*$/.exec(part);
    return match ? Number(match[1]) * unit[(match[2] || "s") as keyof typeof unit] : Number.NaN;
  });
  const inRange = (s: number) => Number.isInteger(s) && s >= 0 && s <= MAX_VISIBILITY_SECONDS;
  const valid = seconds.length <= 20 && seconds.every(inRange);
  return valid ? seconds : undefined;
}

export interface ConfigProblem {
  variable: string;
  message: string;
  given?: string;
}

export class ConfigError extends Error {
  readonly problems: readonly ConfigProblem[];
  constructor(given: readonly ConfigProblem[]) {
    // A value is quoted to say what was wrong, but never a URL's userinfo (`https://user:password@host`).
    const problems = given.map((p) => (p.given === undefined ? p : { ...p, given: redact(p.given) }));
    const lines = problems.map(
      (p) => `${p.variable} ${p.message}${p.given === undefined ? "" : ` (got ${JSON.stringify(p.given)})`}`,
    );
    super(`Invalid configuration: ${lines.join("; ")}`);
    this.name = "ConfigError";
    this.problems = problems;
  }
}

const LOOPBACK_HOSTS = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])$/i;

/** True for an `http(s)://` URL that is HTTPS, or HTTP to a loopback host only (tests, the simulator). */
export function isAcceptableEndpoint(value: string): boolean {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  if (url.username || url.password || url.search || url.hash) return false;
  if (url.protocol === "https:") return true;
  return url.protocol === "http:" && LOOPBACK_HOSTS.test(url.hostname);
}

const integer = (min: number, max: number, fallback: number) =>
  z._default(
    z.coerce
      .number({ error: `must be an integer from ${min} to ${max}` })
      .check(
        z.int({ error: `must be an integer from ${min} to ${max}` }),
        z.minimum(min, { error: `must be an integer from ${min} to ${max}` }),
        z.maximum(max, { error: `must be an integer from ${min} to ${max}` }),
      ),
    fallback,
  );

/** Huawei's global IAM endpoint; regional ones (`https://iam.{region}.myhuaweicloud.com`) work too. */
export const DEFAULT_IAM_ENDPOINT = "https://iam.myhuaweicloud.com";

const ENDPOINT_RULE =
  "must be an https:// URL (http:// only for loopback hosts), without credentials, query or fragment";

const EnvSchema = z.object({
  SCM_ENDPOINT: z
    .string({ error: "is required" })
    .check(z.minLength(1, { error: "is required" }))
    .check(z.refine(isAcceptableEndpoint, { error: ENDPOINT_RULE })),
  SCM_TOKEN_SECRET_ID: z.string({ error: "is required" }).check(z.minLength(1, { error: "is required" })),
  WITHDRAWAL_DLQ_URL: z.string({ error: "is required" }).check(
    z.refine((v) => /^https?:\/\/[^/]+\/\d+\/[\w-]+(\.fifo)?$/.test(v), {
      error: "must be an SQS queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)",
    }),
  ),
  MAX_ATTEMPTS: integer(1, 10, 3),
  RETRY_BASE_DELAY_MS: integer(1, 60_000, 200),
  RETRY_MAX_DELAY_MS: integer(1, 300_000, 5000),
  SCM_TIMEOUT_MS: integer(100, 900_000, 10_000),
  MAX_RECEIVE_COUNT: integer(1, 1000, 5),
  BATCH_CONCURRENCY: integer(1, 100, 10),
  TOKEN_CACHE_TTL_MS: integer(0, 86_400_000, 300_000),
  SCM_RATE_LIMIT: z._default(
    z.enum(SCM_RATE_LIMIT_MODES, { error: `must be one of ${SCM_RATE_LIMIT_MODES.join(", ")}` }),
    "adaptive",
  ),
  SCM_MAX_RPS: z.optional(
    z.coerce
      .number({ error: "must be a positive number of calls per second, or unset for no limit" })
      .check(
        z.positive({ error: "must be a positive number of calls per second, or unset for no limit" }),
        z.maximum(10_000, { error: "must be a positive number of calls per second, or unset for no limit" }),
      ),
  ),
  LOG_LEVEL: LOG_LEVEL_SCHEMA,
  ALREADY_WITHDRAWN_STATUSES: z.optional(
    z.string().check(
      z.regex(/^[A-Z_]+(,[A-Z_]+)*$/, {
        error: "must be a comma-separated list of SCM statuses, e.g. PAID,CANCELCHECKING",
      }),
    ),
  ),
  IAM_TOKEN_REFRESH_MARGIN_MS: integer(0, 82_800_000, 3_600_000),
  IAM_ENDPOINT: z._default(
    z.string().check(z.refine(isAcceptableEndpoint, { error: ENDPOINT_RULE })),
    DEFAULT_IAM_ENDPOINT,
  ),
  IAM_TIMEOUT_MS: integer(100, 60_000, 5000),
  DEADLINE_MARGIN_MS: integer(0, 60_000, 1000),
  LEDGER_TABLE: z.optional(z.string()),
  RETRY_VISIBILITY_SCHEDULE: z._default(
    z.string().check(z.refine((v) => parseVisibilitySchedule(v) !== undefined, { error: SCHEDULE_RULE })),
    DEFAULT_RETRY_VISIBILITY_SCHEDULE,
  ),
});

/** Variables the schema reads; an empty string counts as unset, so `FOO=` falls back to the default. */
const VARIABLES = Object.keys(EnvSchema.shape) as (keyof typeof EnvSchema.shape)[];

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const input: Record<string, string> = {};
  for (const name of VARIABLES) {
    const value = env[name]?.trim();
    if (value) input[name] = value;
  }
  const logLevel = logLevelInput(env);
  if (logLevel !== undefined) input.LOG_LEVEL = logLevel;
  const parsed = EnvSchema.safeParse(input);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const variable = String(issue.path[0]);
      const given = input[variable];
      return { variable, message: issue.message, ...(given === undefined ? {} : { given }) };
    });
    throw new ConfigError(dedupe(problems));
  }
  const e = parsed.data;
  const problems: ConfigProblem[] = [];
  if (e.RETRY_MAX_DELAY_MS < e.RETRY_BASE_DELAY_MS) {
    problems.push({
      variable: "RETRY_MAX_DELAY_MS",
      message: `must be at least RETRY_BASE_DELAY_MS (${e.RETRY_BASE_DELAY_MS})`,
      given: String(e.RETRY_MAX_DELAY_MS),
    });
  }
  if (problems.length > 0) throw new ConfigError(problems);

  return {
    scmEndpoint: e.SCM_ENDPOINT.replace(/\/+$/, ""),
    tokenSecretId: e.SCM_TOKEN_SECRET_ID,
    dlqUrl: e.WITHDRAWAL_DLQ_URL,
    maxAttempts: e.MAX_ATTEMPTS,
    retryBaseDelayMs: e.RETRY_BASE_DELAY_MS,
    retryMaxDelayMs: e.RETRY_MAX_DELAY_MS,
    scmTimeoutMs: e.SCM_TIMEOUT_MS,
    maxReceiveCount: e.MAX_RECEIVE_COUNT,
    batchConcurrency: e.BATCH_CONCURRENCY,
    tokenCacheTtlMs: e.TOKEN_CACHE_TTL_MS,
    scmMaxRps: e.SCM_MAX_RPS,
    scmRateLimit: e.SCM_RATE_LIMIT,
    logLevel: e.LOG_LEVEL,
    alreadyWithdrawnStatuses: e.ALREADY_WITHDRAWN_STATUSES?.split(",") ?? DEFAULT_ALREADY_WITHDRAWN_STATUSES,
    iamTokenRefreshMarginMs: e.IAM_TOKEN_REFRESH_MARGIN_MS,
    iamEndpoint: e.IAM_ENDPOINT.replace(/\/+$/, ""),
    iamTimeoutMs: e.IAM_TIMEOUT_MS,
    deadlineMarginMs: e.DEADLINE_MARGIN_MS,
    ledgerTable: e.LEDGER_TABLE || undefined,
    sqsEndpointOverridden: Boolean(env.AWS_ENDPOINT_URL_SQS || env.AWS_ENDPOINT_URL),
    retryVisibilitySchedule: parseVisibilitySchedule(e.RETRY_VISIBILITY_SCHEDULE) ?? [],
  };
}

function dedupe(problems: ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.variable}\0${p.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
