/**
 * What every CLI command gets: where the queues are, an SQS client pointed at them, the output
 * streams, and the mapping from SDK errors to one line an operator can act on.
 *
 * Defaults are the local pipeline's (`npm start`, see `cli/local-defaults.ts`); with `--queue-url`
 * naming a real AWS queue, the SDK's standard credentials, region and endpoint resolution apply.
 */
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { SQSClient, SQSClientConfig } from "@aws-sdk/client-sqs";
import { CliError, describeError, UsageError } from "../lib/errors.ts";
import type { Ledger } from "../lib/ledger.ts";
import type { Sightings } from "../lib/sightings.ts";
import { createLogger, silentLogger } from "../lib/logger.ts";
import { awsRequester, localRequester } from "../lib/requester.ts";
import { LOCAL, localDynamoEndpoint, localQueueUrl } from "./local-defaults.ts";
import type { OptionSpec, ParsedArgs } from "./args.ts";
import type { OutputStream } from "./output.ts";

/** Exit codes, documented in docs/operations.md and in `--help`. */
export const EXIT = {
  /** Everything asked for was done. */
  ok: 0,
  /** Some or all of the work failed (invalid lines, failed sends, unreachable queue...). */
  failed: 1,
  /** The command line (or the input file as a whole) cannot be used; nothing was done. */
  usage: 2,
  /** Interrupted (Ctrl-C) after finishing what was in flight. */
  interrupted: 130,
} as const;

/** The process around the CLI; injected so tests run it in-process. */
export interface CliIo {
  stdout: OutputStream;
  stderr: OutputStream;
  /** Defaults to `process.env`. */
  env?: Record<string, string | undefined>;
  /** Aborted on Ctrl-C: commands stop taking new work, finish what is in flight and report. */
  signal?: AbortSignal;
  /** Builds the SQS client from the resolved configuration (tests add middleware here). */
  createSqsClient?: (config: SQSClientConfig) => SQSClient;
  /**
   * Asks the operator a question on the terminal and returns the answer (undefined when interrupted).
   * Absent when there is no terminal: commands that would ask then need `--yes` (see `cli/confirm.ts`).
   */
  ask?: (question: string) => Promise<string | undefined>;
  /** Long-poll wait of DLQ scans, seconds (default 1: on AWS a short poll may miss messages). */
  dlqWaitSeconds?: number;
}

export const GLOBAL_OPTIONS = {
  "queue-url": {
    type: "string",
    valueName: "URL",
    description: `the withdrawals queue (default: $WITHDRAWAL_QUEUE_URL, else the local pipeline's ${LOCAL.queueName} queue)`,
  },
  "dlq-url": {
    type: "string",
    valueName: "URL",
    description: "the dead-letter queue (default: $WITHDRAWAL_DLQ_URL, else the queue's redrive policy target)",
  },
  region: {
    type: "string",
    valueName: "REGION",
    description: "AWS region (default: $AWS_REGION, else the one in the queue URL)",
  },
  "endpoint-url": {
    type: "string",
    valueName: "URL",
    description: "SQS endpoint override (default: $AWS_ENDPOINT_URL_SQS; for the local pipeline, 127.0.0.1)",
  },
  "ledger-table": {
    type: "string",
    valueName: "NAME",
    description: `the ledger's DynamoDB table (default: $LEDGER_TABLE; for the local pipeline, ${LOCAL.ledgerTable} on ${localDynamoEndpoint()})`,
  },
  json: { type: "boolean", description: "print machine-readable JSON on stdout instead of text" },
  help: { type: "boolean", short: "h", description: "show help for the command" },
} as const satisfies OptionSpec;

export interface Command {
  /** The words that select it: `"enqueue"`, `"dlq list"`. */
  name: string;
  /** One line for the command index. */
  summary: string;
  /** Synopsis after `scm-withdraw `, e.g. `bulk <file> [options]`. */
  usage: string;
  /** Paragraphs shown by `--help` after the synopsis. */
  description: string;
  options: OptionSpec;
  /** Returns the exit code. Throws `UsageError` (exit 2) or anything else (one line, exit 1). */
  run(context: CommandContext, args: ParsedArgs): Promise<number>;
}

/** What the command index shows of a command without loading its module (cli/commands/index.ts). */
export type CommandHead = Pick<Command, "name" | "summary" | "usage">;

/** A command whose module (and what it imports: the AWS SDK, HTTP, parsers) loads only when it is used. */
export interface LazyCommand extends CommandHead {
  load(): Promise<Command>;
}

export type CommandEntry = Command | LazyCommand;

/** The SQS SDK module, loaded when a command runs (not for `--help` or a usage error). */
type SqsSdk = typeof import("@aws-sdk/client-sqs");

export interface Target {
  queueUrl: string;
  /** Known up front (flag, environment, or the local default), else read from the queue's redrive policy. */
  dlqUrl: string | undefined;
  /** The SQS endpoint the client sends to; undefined = the SDK's own resolution (real AWS). */
  endpoint: string | undefined;
  region: string | undefined;
  /** The endpoint is on this machine (the local pipeline or another emulator). */
  local: boolean;
}

export interface LedgerTarget {
  tableName: string;
  /** The DynamoDB endpoint; undefined = the SDK's own resolution (real AWS). */
  endpoint: string | undefined;
  /** undefined = the SDK's own resolution (AWS_PROFILE's region). */
  region: string | undefined;
  local: boolean;
  /**
   * Nobody asked for it: the local pipeline's default table. Used only if it answers (an `npm start
   * -- --no-ledger` has none), so the producers then work as without a ledger.
   */
  implicit: boolean;
}

/** What a command that cannot work without the ledger says when there is none. */
export const NEEDS_LEDGER = "needs the ledger: set LEDGER_TABLE or --ledger-table";

const QUEUE_URL = /^https?:\/\/[^/\s]+\/[^/\s]+\/[A-Za-z0-9_-]{1,80}(\.fifo)?\/?$/;

/** Works out queues, endpoint and region from the global flags and the environment. */
export function resolveTarget(values: ParsedArgs["values"], env: Record<string, string | undefined>): Target {
  const flag = (name: string) => (typeof values[name] === "string" ? (values[name] as string) : undefined);
  const given = flag("queue-url") ?? nonEmpty(env.WITHDRAWAL_QUEUE_URL);
  const queueUrl = given ?? localQueueUrl(LOCAL.queueName);
  const dlqGiven = flag("dlq-url") ?? nonEmpty(env.WITHDRAWAL_DLQ_URL);
  for (const [name, url] of [
    ["--queue-url", queueUrl],
    ["--dlq-url", dlqGiven],
  ] as const) {
    if (url !== undefined && !QUEUE_URL.test(url))
      throw new UsageError(
        `${name} must be an SQS queue URL like https://sqs.eu-west-1.amazonaws.com/123456789012/withdrawals (got ${JSON.stringify(url)})`,
      );
  }
  const dlqUrl = dlqGiven ?? (given === undefined ? localQueueUrl(LOCAL.dlqName) : undefined);

  const explicitEndpoint = flag("endpoint-url") ?? nonEmpty(env.AWS_ENDPOINT_URL_SQS) ?? nonEmpty(env.AWS_ENDPOINT_URL);
  if (explicitEndpoint !== undefined && !/^https?:\/\/[^/\s]+\/?$/.test(explicitEndpoint)) {
    throw new UsageError(
      `the SQS endpoint must be a URL like http://127.0.0.1:9324 (got ${JSON.stringify(explicitEndpoint)})`,
    );
  }
  const queueHost = new URL(queueUrl);
  // fauxqs names queues http://sqs.REGION.localhost:PORT/..., which does not resolve everywhere: talk to 127.0.0.1.
  const derived = isLoopback(queueHost.hostname)
    ? `${queueHost.protocol}//${queueHost.hostname.endsWith(".localhost") ? LOCAL.host : queueHost.hostname}:${queueHost.port || (queueHost.protocol === "https:" ? 443 : 80)}`
    : undefined;
  const endpoint = explicitEndpoint?.replace(/\/$/, "") ?? derived;
  const local = endpoint !== undefined && isLoopback(new URL(endpoint).hostname);
  const region =
    flag("region") ??
    nonEmpty(env.AWS_REGION) ??
    nonEmpty(env.AWS_DEFAULT_REGION) ??
    /^sqs[.-]([a-z0-9-]+)\./.exec(queueHost.hostname)?.[1] ??
    (local ? LOCAL.region : undefined);
  return { queueUrl, dlqUrl, endpoint, region, local };
}

/**
 * The ledger (optional; where jobs are recorded and batches followed): `--ledger-table` or
 * `LEDGER_TABLE`, or the local pipeline's table when the queue is the local pipeline's default too.
 * The endpoint comes from the SDK's standard `AWS_ENDPOINT_URL_DYNAMODB` (or `AWS_ENDPOINT_URL`).
 */
export function resolveLedgerTarget(
  values: ParsedArgs["values"],
  env: Record<string, string | undefined>,
): LedgerTarget | undefined {
  const flag = (name: string) => (typeof values[name] === "string" ? (values[name] as string) : undefined);
  const tableName = flag("ledger-table") ?? nonEmpty(env.LEDGER_TABLE);
  const localPipeline = flag("queue-url") === undefined && nonEmpty(env.WITHDRAWAL_QUEUE_URL) === undefined;
  const endpoint = (nonEmpty(env.AWS_ENDPOINT_URL_DYNAMODB) ?? nonEmpty(env.AWS_ENDPOINT_URL))?.replace(/\/$/, "");
  if (endpoint !== undefined && !/^https?:\/\/[^/\s]+\/?$/.test(endpoint)) {
    throw new UsageError(
      `the DynamoDB endpoint must be a URL like http://127.0.0.1:${LOCAL.dynamoDbPort} (got ${JSON.stringify(endpoint)})`,
    );
  }
  // The region: given, else a real queue URL's; else the SDK's own (a profile's) for a real table.
  const queueUrl = flag("queue-url") ?? nonEmpty(env.WITHDRAWAL_QUEUE_URL);
  const given =
    flag("region") ??
    nonEmpty(env.AWS_REGION) ??
    nonEmpty(env.AWS_DEFAULT_REGION) ??
    (queueUrl ? /^https?:\/\/sqs[.-]([a-z0-9-]+)\.amazonaws\./.exec(queueUrl)?.[1] : undefined);
  if (tableName !== undefined) {
    if (!/^[A-Za-z0-9_.-]{3,255}$/.test(tableName))
      throw new UsageError(
        `--ledger-table must be a DynamoDB table name: 3 to 255 characters A-Z, a-z, 0-9, _ . - (got ${JSON.stringify(tableName)})`,
      );
    const local = endpoint !== undefined && isLoopback(new URL(endpoint).hostname);
    return { tableName, endpoint, region: given ?? (local ? LOCAL.region : undefined), local, implicit: false };
  }
  if (!localPipeline) return undefined;
  return {
    tableName: LOCAL.ledgerTable,
    endpoint: endpoint ?? localDynamoEndpoint(),
    region: given ?? LOCAL.region,
    local: true,
    implicit: true,
  };
}

function isLoopback(hostname: string): boolean {
  return (
    hostname === "localhost" ||
    hostname.endsWith(".localhost") ||
    /^127(\.\d{1,3}){3}$/.test(hostname) ||
    hostname === "[::1]"
  );
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === "" ? undefined : value.trim();
}

interface ContextOptions {
  json: boolean;
  command: string;
  ledger?: LedgerTarget | undefined;
}

export class CommandContext {
  readonly io: CliIo;
  readonly env: Record<string, string | undefined>;
  readonly json: boolean;
  readonly target: Target;
  readonly ledgerTarget: LedgerTarget | undefined;
  readonly command: string;
  #sqs: SQSClient | undefined;
  #dlqUrl: string | undefined;
  #dynamo: DynamoDBClient | undefined;
  #ledger: Promise<Ledger | undefined> | undefined;
  #ledgerWarnings = 0;
  #requestedBy: Promise<string> | undefined;
  readonly #sdk: SqsSdk;

  /** Loads the SQS SDK first: the CLI's start (`--help`, usage errors) never pays for it. */
  static async open(io: CliIo, target: Target, options: ContextOptions): Promise<CommandContext> {
    return new CommandContext(io, target, options, await import("@aws-sdk/client-sqs"));
  }

  private constructor(io: CliIo, target: Target, options: ContextOptions, sdk: SqsSdk) {
    this.#sdk = sdk;
    this.io = io;
    this.env = io.env ?? process.env;
    this.target = target;
    this.ledgerTarget = options.ledger;
    this.json = options.json;
    this.command = options.command;
    this.#dlqUrl = target.dlqUrl;
  }

  get signal(): AbortSignal | undefined {
    return this.io.signal;
  }

  /** The SQS client, created on first use (a dry run never needs one). */
  get sqs(): SQSClient {
    if (!this.#sqs) {
      const { endpoint, region, local } = this.target;
      const config: SQSClientConfig = {
        ...(region ? { region } : {}),
        ...(endpoint ? { endpoint } : {}),
        // An emulator ignores credentials; don't make the SDK hunt for real ones (or call the instance metadata service).
        ...(local && !this.env.AWS_ACCESS_KEY_ID && !this.env.AWS_PROFILE
          ? { credentials: { accessKeyId: "local", secretAccessKey: "local" } }
          : {}),
        // Long polls wait at most a few seconds; anything slower than this is a dead connection.
        requestHandler: { connectionTimeout: 5000, requestTimeout: 30_000 },
      };
      this.#sqs = this.io.createSqsClient ? this.io.createSqsClient(config) : new this.#sdk.SQSClient(config);
    }
    return this.#sqs;
  }

  /** The dead-letter queue's URL: given, or read from the withdrawals queue's redrive policy. */
  async dlqUrl(): Promise<string> {
    if (this.#dlqUrl) return this.#dlqUrl;
    const { queueUrl } = this.target;
    const attributes = await this.call(queueUrl, () =>
      this.sqs.send(new this.#sdk.GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["RedrivePolicy"] })),
    );
    const arn = parseRedriveTarget(attributes.Attributes?.RedrivePolicy);
    if (!arn)
      throw new UsageError(`cannot tell the dead-letter queue: ${queueUrl} has no redrive policy; pass --dlq-url`);
    this.#dlqUrl = `${new URL(queueUrl).origin}/${arn.account}/${arn.name}`;
    return this.#dlqUrl;
  }

  /**
   * The ledger, or undefined when there is none: not configured, or the local pipeline's default
   * table does not answer (then producers work as without a ledger). Its write failures become
   * `warning:` lines on stderr (a few; the command's summary counts the rest). Created on first use.
   */
  ledger(): Promise<Ledger | undefined> {
    this.#ledger ??= this.#openLedger();
    return this.#ledger;
  }

  /** The cleanup sweep's first sightings, in the ledger's table; undefined without a ledger. */
  async sightings(): Promise<Sightings | undefined> {
    const ledger = await this.ledger();
    if (!ledger || !this.#dynamo || !this.ledgerTarget) return undefined;
    const { createSightings } = await import("../lib/sightings.ts");
    return createSightings({ client: this.#dynamo, tableName: this.ledgerTarget.tableName, logger: silentLogger });
  }

  /** The ledger, for commands that cannot work without it (`batch`, `bulk --wait`). */
  async requireLedger(): Promise<Ledger> {
    const ledger = await this.ledger();
    if (ledger) return ledger;
    const target = this.ledgerTarget;
    if (target?.implicit)
      throw new CliError(
        `no ledger at ${target.endpoint}: start the local pipeline with \`npm start\` (without --no-ledger), or set LEDGER_TABLE or --ledger-table`,
      );
    throw new CliError(`${this.command} ${NEEDS_LEDGER}`);
  }

  async #openLedger(): Promise<Ledger | undefined> {
    const target = this.ledgerTarget;
    if (!target) return undefined;
    // Loaded only by the commands that use the ledger: the others (and a million-line --dry-run) stay lean.
    const [{ DynamoDBClient, DescribeTableCommand }, { createLedger }] = await Promise.all([
      import("@aws-sdk/client-dynamodb"),
      import("../lib/ledger.ts"),
    ]);
    const { region } = target;
    this.#dynamo = new DynamoDBClient({
      ...(region ? { region } : {}),
      ...(target.endpoint ? { endpoint: target.endpoint } : {}),
      ...(target.local && !this.env.AWS_ACCESS_KEY_ID && !this.env.AWS_PROFILE
        ? { credentials: { accessKeyId: "local", secretAccessKey: "local" } }
        : {}),
      requestHandler: { connectionTimeout: 3000, requestTimeout: 10_000 },
    });
    if (target.implicit) {
      try {
        await this.#dynamo.send(new DescribeTableCommand({ TableName: target.tableName }), {
          abortSignal: AbortSignal.timeout(3000),
        });
      } catch {
        return undefined;
      }
    }
    const logger = createLogger({
      level: "warn",
      write: (line) => {
        // A few lines say what is wrong; more would bury the command's own output.
        if (++this.#ledgerWarnings > 3) return;
        const entry = JSON.parse(line) as { event?: string; operation?: string; error?: string };
        if (entry.event === "ledger_write_failed")
          this.note(
            `warning: the ledger (table ${target.tableName}) could not record ${entry.operation ?? "a write"}: ${entry.error ?? "unknown error"}`,
          );
        else if (entry.event === "ledger_unavailable")
          this.note(`warning: the ledger (table ${target.tableName}) keeps failing; not recording for a while`);
      },
    });
    // 10 writes in flight: `dlq redrive` records each received batch of 10 at once (see dlq-redrive.ts).
    return createLedger({ client: this.#dynamo, tableName: target.tableName, logger, concurrency: 10 });
  }

  /**
   * Who is asking, stamped as `requested_by` on every job this command sends (the audit trail): the
   * OS user for the local pipeline (loopback endpoints), else the caller's AWS identity (STS).
   */
  requestedBy(): Promise<string> {
    this.#requestedBy ??= this.target.local
      ? Promise.resolve(localRequester())
      : awsRequester({ region: this.target.region }).catch((error: unknown) => {
          throw new CliError(
            `cannot tell who is asking (STS GetCallerIdentity, for requested_by): ${explainSqsError(error, this.target, "STS").replace(/^SQS call on STS failed: /, "")}`,
          );
        });
    return this.#requestedBy;
  }

  /** Checks that a queue answers, so a wrong URL fails once, in one line, before any work. */
  async checkQueue(url: string): Promise<void> {
    await this.call(url, () =>
      this.sqs.send(new this.#sdk.GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["QueueArn"] })),
    );
  }

  /** Runs one SQS call about `url`; an error becomes a {@link CliError} saying what to do. */
  async call<T>(url: string, send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (error) {
      throw new CliError(explainSqsError(error, this.target, url));
    }
  }

  /** One line on stdout (results). */
  print(line = ""): void {
    this.io.stdout.write(`${line}\n`);
  }

  printJson(value: unknown): void {
    this.io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  /** One line on stderr (problems, notes). */
  note(line: string): void {
    this.io.stderr.write(`${line}\n`);
  }

  close(): void {
    this.#sqs?.destroy();
    this.#dynamo?.destroy();
  }
}

function parseRedriveTarget(policy: string | undefined): { account: string; name: string } | undefined {
  if (!policy) return undefined;
  try {
    const arn = (JSON.parse(policy) as { deadLetterTargetArn?: unknown }).deadLetterTargetArn;
    const match = typeof arn === "string" ? /^arn:[^:]+:sqs:[^:]*:([^:]+):([^:]+)$/.exec(arn) : null;
    return match ? { account: match[1]!, name: match[2]! } : undefined;
  } catch {
    return undefined;
  }
}

/** One line for an SQS failure: what went wrong, with the fix when there is an obvious one. */
export function explainSqsError(thrown: unknown, target: Target, url: string): string {
  const error = thrown as { name?: string; code?: string; message?: string; Code?: string; errors?: unknown[] };
  const code = error.code ?? (error.errors?.[0] as { code?: string } | undefined)?.code;
  const name = error.name ?? "";
  const where = target.endpoint ?? "SQS";
  if (
    code === "ECONNREFUSED" ||
    code === "ECONNRESET" ||
    code === "ENOTFOUND" ||
    code === "EAI_AGAIN" ||
    code === "ETIMEDOUT" ||
    name === "TimeoutError"
  ) {
    if (target.local) return `no queue at ${where}: start the local pipeline with \`npm start\`, or pass --queue-url`;
    return `cannot reach ${where === "SQS" ? `SQS for ${url}` : where} (${code ?? name}): check the network, --region and --endpoint-url`;
  }
  if (
    name === "QueueDoesNotExist" ||
    error.Code === "AWS.SimpleQueueService.NonExistentQueue" ||
    /NonExistentQueue/.test(error.message ?? "")
  ) {
    return target.local
      ? `no queue ${url} on ${where}: is the local pipeline running (\`npm start\`)? otherwise pass --queue-url/--dlq-url`
      : `queue does not exist: ${url} (check --queue-url, --dlq-url and --region)`;
  }
  if (name === "CredentialsProviderError")
    return "no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY";
  if (/Region is missing/i.test(error.message ?? "")) return "no AWS region: pass --region or set AWS_REGION";
  if (
    [
      "InvalidClientTokenId",
      "SignatureDoesNotMatch",
      "ExpiredToken",
      "UnrecognizedClientException",
      "InvalidSecurity",
    ].includes(name)
  ) {
    return `AWS rejected the credentials (${name}): ${error.message ?? ""}`.trim();
  }
  if (name === "AccessDenied" || name === "AccessDeniedException" || name === "KmsAccessDenied")
    return `access denied on ${url} (${name}): ${error.message ?? ""}`.trim();
  return `SQS call on ${url} failed: ${describeError(thrown)}`;
}
