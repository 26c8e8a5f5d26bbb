/**
 * `scm-withdraw cleanup`: the scheduled sweep's logic (`lib/cleanup.ts`), run by hand. Lists the
 * applications under review, applies the same filters, and enqueues one job each (or, with
 * `--dry-run`, only says what it would enqueue).
 */
import { readFileSync } from "node:fs";
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import {
  MIN_AGE_FORMAT,
  parseCleanupFilters,
  parseMinAge,
  OFFSET_MODES,
  REVIEW_STATUSES,
  type OffsetMode,
} from "../../lib/cleanup-config.ts";
import { makeRunId, runCleanup } from "../../lib/cleanup.ts";
import { MAX_OFFSET, type CleanupDependencies, type CleanupJob, type CleanupReport } from "../../lib/cleanup-types.ts";
import { DEFAULT_IAM_ENDPOINT, isAcceptableEndpoint } from "../../lib/config.ts";
import { CleanupError, CliError, describeError, UsageError } from "../../lib/errors.ts";
import { createIamExchange } from "../../lib/iam.ts";
import { LOCAL } from "../local-defaults.ts";
import { silentLogger } from "../../lib/logger.ts";
import { createSender } from "../../lib/producer.ts";
import { createScmClient } from "../../lib/scm-client.ts";
import {
  createTokenProvider,
  parseSecret,
  secretsManagerReader,
  type IamExchange,
  type SecretReader,
} from "../../lib/token-provider.ts";
import { stringFlag, type ParsedValues } from "../args.ts";
import { confirm, mustAsk, YES_OPTION } from "../confirm.ts";
import { EXIT, type Command, type CommandContext } from "../context.ts";
import { HEADS } from "./heads.ts";
import { formatDuration, formatTable, queueName } from "../output.ts";

const NAME = HEADS.cleanup.name;
/** Over-the-cap ids shown in the text output; `--json` has them all. */
const SAMPLE = 10;
const LOCAL_SCM_ENDPOINT = `http://${LOCAL.host}:${LOCAL.scmPort}`;

export const cleanupCommand: Command = {
  ...HEADS.cleanup,
  description: [
    "Lists certificates with GET /v3/scm/certificates, one pass per status, oldest update first, and",
    `enqueues one job per match (source "cleanup", the run's id as batch_id). Default statuses:`,
    `${REVIEW_STATUSES.join(", ")} (the states with an application under review).`,
    "A certificate is never enqueued twice in a run. The report says what was found, what was enqueued,",
    "and what was skipped and why (excluded, duplicate, over_cap, status_filtered, invalid_id).",
    "",
    `SCM's listing cannot page past offset ${MAX_OFFSET}: when more certificates match than that reaches, the run`,
    "says how many were not seen (narrow with --content, or run again once these are withdrawn).",
    "Everything is listed before anything is enqueued: if the listing fails, nothing is enqueued.",
    "",
    "SCM's listing gives no age. With the ledger, each run (--dry-run too) remembers when it first saw",
    "each certificate under review, and --min-age enqueues only those seen at least that long ago;",
    "without the ledger the sweep cannot tell a stale application from a fresh one (--min-age refuses).",
    "",
    'The credential: --token-file (the raw token, {"token": ...}, {"iam": {...}} or {"aksk": {...}} to sign every',
    "call with an access key pair), else the Secrets Manager",
    "secret $SCM_TOKEN_SECRET_ID, else (for the local simulator only) the local pipeline's demo token.",
    "",
    "On a terminal it shows how many jobs it selected (by status) after the listing and asks before",
    "enqueueing; --yes skips the question and is needed when there is no terminal (--dry-run never asks).",
    "",
    "Exit 0 when the run finished and every selected job was enqueued; 1 when the listing or a send failed.",
  ].join("\n"),
  options: {
    status: {
      type: "string",
      valueName: "LIST",
      description: `comma-separated statuses to sweep (default: ${REVIEW_STATUSES.join(",")})`,
    },
    content: {
      type: "string",
      valueName: "TEXT",
      description: "only certificates whose name or domain matches (SCM's own search)",
    },
    exclude: { type: "string", valueName: "IDS", description: "comma-separated certificate ids never to enqueue" },
    "exclude-file": {
      type: "string",
      valueName: "PATH",
      description: "file of certificate ids never to enqueue (one or more per line, # comments)",
    },
    max: {
      type: "string",
      valueName: "N",
      description: "enqueue at most N jobs; the rest are reported as over_cap (default 100)",
    },
    "min-age": {
      type: "string",
      valueName: "AGE",
      description: `only certificates first seen under review at least AGE ago: ${MIN_AGE_FORMAT}; needs the ledger`,
    },
    reason: { type: "string", valueName: "TEXT", description: "reason put in every job (at most 256 characters)" },
    "dry-run": { type: "boolean", description: "list and report what would be enqueued; enqueue nothing" },
    "scm-endpoint": {
      type: "string",
      valueName: "URL",
      description: `SCM endpoint (default: $SCM_ENDPOINT, else the local simulator ${LOCAL_SCM_ENDPOINT})`,
    },
    "token-file": {
      type: "string",
      valueName: "PATH",
      description: 'file holding the SCM token (or {"iam": {...}} or {"aksk": {...}} credentials)',
    },
    "offset-mode": {
      type: "string",
      valueName: "MODE",
      description: "whether the listing's offset counts records or pages: auto (probe once, default), records, pages",
    },
    ...YES_OPTION,
  },
  async run(context, { values, positionals }) {
    if (positionals.length > 0)
      throw new UsageError(
        `cleanup takes no arguments (got ${JSON.stringify(positionals[0])}); use --status, --content or --exclude`,
        NAME,
      );
    const dryRun = values["dry-run"] === true;
    const filters = readFilters(values);
    const ask =
      !dryRun &&
      mustAsk(context, values, "cleanup enqueues a withdrawal for every application it finds (--dry-run shows which)");
    const offsetMode = readOffsetMode(stringFlag(values, "offset-mode"));
    const minAgeText = stringFlag(values, "min-age");
    const minAgeMs = minAgeText === undefined ? undefined : parseMinAge(minAgeText);
    if (minAgeText !== undefined && minAgeMs === undefined)
      throw new UsageError(`--min-age must be ${MIN_AGE_FORMAT} (got ${JSON.stringify(minAgeText)})`, NAME);
    const scmEndpoint = (
      stringFlag(values, "scm-endpoint") ??
      nonEmpty(context.env.SCM_ENDPOINT) ??
      LOCAL_SCM_ENDPOINT
    ).replace(/\/+$/, "");
    if (!isAcceptableEndpoint(scmEndpoint)) {
      throw new UsageError(
        `--scm-endpoint must be an https:// URL (http:// only for loopback hosts), without credentials, query or fragment (got ${JSON.stringify(scmEndpoint)})`,
        NAME,
      );
    }
    const source = tokenSource(context, stringFlag(values, "token-file"), scmEndpoint);
    const tokens = createTokenProvider({
      readSecret: source.readSecret,
      ...(source.exchangeIam ? { exchangeIam: source.exchangeIam } : {}),
      ttlMs: 60_000,
    });
    const { queueUrl } = context.target;
    const scm = createScmClient({ endpoint: scmEndpoint, timeoutMs: 10_000, maxSockets: 2 });
    const deps: CleanupDependencies = {
      scm,
      tokens,
      logger: silentLogger,
      retry: { maxAttempts: 4, baseDelayMs: 500, maxDelayMs: 5000, timeoutMs: 10_000 },
      ...(dryRun ? {} : { createSender: (onResult) => createSender<string>({ sqs: context.sqs, queueUrl, onResult }) }),
      ...(ask ? { confirm: (jobs) => confirmJobs(context, jobs, filters.reason, queueUrl) } : {}),
    };
    let report: CleanupReport;
    try {
      // A wrong queue fails in one line before any listing, not after it.
      if (!dryRun) await context.checkQueue(queueUrl);
      // With the ledger, the run's jobs are recorded as queued under the run id (`batch status <run id>`).
      const ledger = dryRun ? undefined : await context.ledger();
      if (ledger) deps.ledger = ledger;
      if (!dryRun) deps.requestedBy = await context.requestedBy();
      // First sightings, in a dry run too: they are what lets a later run tell an application's age.
      const sightings = await context.sightings();
      if (sightings) deps.sightings = sightings;
      const mode = dryRun ? "dry-run" : "enqueue";
      report = await runCleanup(deps, { runId: makeRunId(new Date()), mode, filters, offsetMode, minAgeMs });
    } catch (error) {
      if (error instanceof CleanupError && error.code === "not_confirmed") {
        context.note(error.message);
        return context.signal?.aborted ? EXIT.interrupted : EXIT.failed;
      }
      if (
        error instanceof CleanupError &&
        error.code === "listing_unavailable" &&
        scmEndpoint === LOCAL_SCM_ENDPOINT &&
        /ECONNREFUSED/.test(error.message)
      ) {
        throw new CliError(
          `no SCM simulator at ${LOCAL_SCM_ENDPOINT}: start the local pipeline with \`npm start\`, or pass --scm-endpoint; nothing was enqueued`,
        );
      }
      if (error instanceof CleanupError) throw new CliError(error.message);
      throw error;
    } finally {
      scm.close();
      source.close();
    }

    if (context.json) context.printJson(report);
    else {
      printReport(context, report, queueUrl);
      if (deps.ledger && report.counts.enqueued > 0)
        context.print(`follow with \`scm-withdraw batch status ${report.runId} --watch\``);
    }
    // Last, so they are the last thing on the terminal (and on stderr, so --json stays parseable).
    for (const warning of report.warnings) context.note(`warning: ${warning}`);
    return report.failed.length > 0 ? EXIT.failed : EXIT.ok;
  },
};

/** Shows the selected jobs' count by status (and the reason) and asks the operator. */
function confirmJobs(
  context: CommandContext,
  jobs: readonly CleanupJob[],
  reason: string | undefined,
  queueUrl: string,
): Promise<boolean> {
  const byStatus = new Map<string, number>();
  for (const job of jobs) byStatus.set(job.status, (byStatus.get(job.status) ?? 0) + 1);
  const table = formatTable(
    [...byStatus],
    [
      { header: "status", value: ([status]) => status },
      { header: "to enqueue", value: ([, n]) => n, align: "right" },
    ],
  );
  const why = reason === undefined ? "no reason" : `reason ${JSON.stringify(reason)}`;
  return confirm(
    context,
    table,
    `enqueue ${jobs.length} withdrawal${jobs.length === 1 ? "" : "s"} (${why}) to ${queueName(queueUrl)}?`,
  );
}

function readFilters(values: ParsedValues) {
  const excludeFile = stringFlag(values, "exclude-file");
  let fileText = "";
  if (excludeFile !== undefined) {
    try {
      fileText = readFileSync(excludeFile, "utf8");
    } catch (error) {
      throw new UsageError(
        `--exclude-file: cannot read ${excludeFile} (${(error as NodeJS.ErrnoException).code ?? describeError(error)})`,
        NAME,
      );
    }
  }
  const exclude = [stringFlag(values, "exclude"), fileText].filter(Boolean).join("\n");
  const { filters, problems } = parseCleanupFilters(
    {
      statuses: stringFlag(values, "status"),
      content: stringFlag(values, "content"),
      exclude,
      maxJobs: stringFlag(values, "max"),
      reason: stringFlag(values, "reason"),
    },
    {
      statuses: "--status",
      content: "--content",
      exclude: excludeFile === undefined ? "--exclude" : "--exclude/--exclude-file",
      maxJobs: "--max",
      reason: "--reason",
    },
  );
  const [first] = problems;
  if (first)
    throw new UsageError(
      `${first.variable} ${first.message}${first.given === undefined ? "" : ` (got ${JSON.stringify(first.given)})`}`,
      NAME,
    );
  return filters;
}

function readOffsetMode(value: string | undefined): OffsetMode {
  if (value === undefined) return "auto";
  if ((OFFSET_MODES as readonly string[]).includes(value)) return value as OffsetMode;
  throw new UsageError(`--offset-mode must be one of ${OFFSET_MODES.join(", ")} (got ${JSON.stringify(value)})`, NAME);
}

/** Where the token comes from; a file is checked now, so a bad one is one line before any call. */
function tokenSource(
  context: CommandContext,
  tokenFile: string | undefined,
  scmEndpoint: string,
): { readSecret: SecretReader; exchangeIam?: IamExchange; close(): void } {
  // Only used when the token source holds {"iam": ...}; it opens no connection until then.
  const iam = () =>
    createIamExchange({
      endpoint: nonEmpty(context.env.IAM_ENDPOINT) ?? DEFAULT_IAM_ENDPOINT,
      timeoutMs: 5000,
      ...(tokenFile ? { secretId: tokenFile } : {}),
    });
  if (tokenFile !== undefined) {
    const read = () => {
      try {
        return readFileSync(tokenFile, "utf8");
      } catch (error) {
        throw new UsageError(
          `--token-file: cannot read ${tokenFile} (${(error as NodeJS.ErrnoException).code ?? describeError(error)})`,
          NAME,
        );
      }
    };
    try {
      parseSecret(read());
    } catch (error) {
      if (error instanceof UsageError) throw error;
      // parseSecret's messages describe the shape, never the value.
      throw new UsageError(`--token-file ${tokenFile}: ${(error as Error).message}`, NAME);
    }
    const exchanger = iam();
    // Read again on every token request: a 401 then picks up a token renewed in the file meanwhile.
    return { readSecret: async () => read(), exchangeIam: exchanger.exchange, close: () => exchanger.close() };
  }
  const secretId = nonEmpty(context.env.SCM_TOKEN_SECRET_ID);
  if (secretId !== undefined) {
    const region = context.target.region;
    const client = new SecretsManagerClient({
      ...(region ? { region } : {}),
      requestHandler: { connectionTimeout: 3000, requestTimeout: 5000 },
    });
    const exchanger = iam();
    return {
      readSecret: secretsManagerReader(client, secretId),
      exchangeIam: exchanger.exchange,
      close: () => {
        client.destroy();
        exchanger.close();
      },
    };
  }
  // The local simulator on any port (`npm start -- --scm-port N`): its demo token is public, in this repository.
  if (isLocalSimulator(scmEndpoint)) return { readSecret: async () => LOCAL.demoToken, close: () => {} };
  throw new UsageError(
    "no SCM token: pass --token-file PATH, or set SCM_TOKEN_SECRET_ID to the Secrets Manager secret that holds it",
    NAME,
  );
}

/** http:// on the address the local pipeline binds (127.0.0.1), whatever the port. */
function isLocalSimulator(endpoint: string): boolean {
  try {
    const url = new URL(endpoint);
    return url.protocol === "http:" && url.hostname === LOCAL.host;
  } catch {
    return false;
  }
}

function printReport(context: CommandContext, report: CleanupReport, queueUrl: string): void {
  const destination = report.mode === "dry-run" ? "dry run, nothing enqueued" : `-> ${queueName(queueUrl)}`;
  context.print(`cleanup run ${report.runId} (${destination})`);
  context.print();
  for (const line of formatTable(report.passes, [
    { header: "status", value: (p) => p.status },
    { header: "matching", value: (p) => p.totalCount, align: "right" },
    { header: "listed", value: (p) => p.listed, align: "right" },
    { header: "not reachable", value: (p) => p.unreachable, align: "right" },
    { header: "calls", value: (p) => p.calls, align: "right" },
  ]))
    context.print(line);

  const jobs = report.mode === "dry-run" ? report.selected : report.enqueued;
  if (jobs.length > 0 || report.failed.length > 0) {
    context.print();
    const rows = [
      ...jobs.map((j) => ({
        id: j.certificateId,
        status: j.status,
        name: j.name ?? "",
        domain: j.domain ?? "",
        outcome: j.messageId ?? "would enqueue",
      })),
      ...report.failed.map((f) => ({
        id: f.certificateId,
        status: "",
        name: "",
        domain: "",
        outcome: `FAILED: ${f.error}`,
      })),
    ];
    for (const line of formatTable(rows, [
      { header: "certificate_id", value: (r) => r.id },
      { header: "status", value: (r) => r.status },
      { header: "name", value: (r) => r.name },
      { header: "domain", value: (r) => r.domain },
      { header: report.mode === "dry-run" ? "action" : "message_id", value: (r) => r.outcome },
    ]))
      context.print(line);
  }

  const listedSkips = report.skipped.filter((s) => s.reason !== "over_cap");
  if (listedSkips.length > 0) {
    context.print();
    for (const line of formatTable(listedSkips, [
      { header: "skipped", value: (s) => s.certificateId },
      { header: "status", value: (s) => s.status },
      { header: "reason", value: (s) => s.reason },
    ]))
      context.print(line);
  }
  const overCap = report.skipped.filter((s) => s.reason === "over_cap");
  if (overCap.length > 0) {
    const sample = overCap
      .slice(0, SAMPLE)
      .map((s) => s.certificateId)
      .join(", ");
    context.print();
    context.print(
      `over the cap (--max ${report.filters.maxJobs}): ${overCap.length} not enqueued: ${sample}${overCap.length > SAMPLE ? `, ... (${overCap.length - SAMPLE} more; --json lists all)` : ""}`,
    );
  }

  if (!report.ages.tracked) {
    context.print();
    context.print(
      "ages: unknown without the ledger (SCM's listing has none): every application under review is selected, however recent",
    );
  }

  const c = report.counts;
  const skippedParts = Object.entries(c.skipped)
    .filter(([, n]) => n > 0)
    .map(([reason, n]) => `${reason} ${n}`);
  context.print();
  context.print(
    `${[
      `found ${c.found}`,
      report.mode === "dry-run" ? `would enqueue ${c.selected}` : `enqueued ${c.enqueued}`,
      ...(c.failed > 0 ? [`failed ${c.failed}`] : []),
      `skipped ${Object.values(c.skipped).reduce((sum, n) => sum + n, 0)}${skippedParts.length > 0 ? ` (${skippedParts.join(", ")})` : ""}`,
      `not reachable ${c.unreachable}`,
    ].join(", ")} in ${formatDuration(report.durationMs)}`,
  );
  if (report.mode === "enqueue" && c.enqueued > 0) context.print(`batch_id: ${report.runId}`);
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === "" ? undefined : value.trim();
}
