/**
 * The whole pipeline on one machine, without AWS: an embedded SQS (fauxqs) with the withdrawals
 * queue and its DLQ, the SCM simulator (or a real SCM), a local Secrets Manager endpoint serving the
 * token, and the REAL `handlers/withdraw.ts` run by the local event-source runner (`runner.ts`).
 *
 * `npm start` (scripts/start.ts) is a thin terminal front end over {@link startPipeline}; tests,
 * benchmarks and chaos runs use the function directly:
 *
 * ```ts
 * const pipeline = await startPipeline({ sqsPort: 0, scmPort: 0, secretsPort: 0 });
 * await pipeline.enqueue(demoJobs());
 * const stats = await pipeline.drain();
 * await pipeline.stop();
 * ```
 *
 * With `ledger: true`, a local DynamoDB (dynalite) runs beside the queue with the ledger's table, and
 * the handler gets `LEDGER_TABLE` and `AWS_ENDPOINT_URL_DYNAMODB`, as a deployed one gets its table.
 *
 * The handler runs in worker threads, one per concurrent batch (`container-pool.ts`): each is a
 * "Lambda container" with its own `process.env` (the handler's configuration), its own module scope
 * (token cache, keep-alive connections) and its own cold start; one that times out is terminated and
 * replaced. The handler's JSON log lines come back to this thread: they are passed to `onLogLine`
 * (the worker log) and read to count what happened to each job.
 *
 * @module
 */
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { SQSClient } from "@aws-sdk/client-sqs";
import { randomUUID } from "node:crypto";
import { createServer } from "node:net";
import { FAILURE_REASONS } from "../lib/classify.ts";
import { createLedger, jobRefFromBody, type JobRef, type Ledger } from "../lib/ledger.ts";
import { buildWithdrawalBody, parseWithdrawalBody } from "../lib/message.ts";
import { createSender, type SendResult } from "../lib/producer.ts";
import { parseSecret } from "../lib/token-provider.ts";
import { ContainerStartError, createContainerPool, localHandlerEnv } from "./container-pool.ts";
import { LOCAL } from "../cli/local-defaults.ts";
import { DEMO, DEMO_INVALID_BODIES } from "./demo-certificates.ts";
import { localRequester } from "../lib/requester.ts";
import { createLedgerTable, localDynamoClient, startLocalDynamo, type LocalDynamo } from "./dynamodb.ts";
import { deadLetterReason, REDRIVE_POLICY_REASON, startLocalQueues, type LocalQueues } from "./queues.ts";
import { createEventSourceRunner, type EventSourceRunner, type InvocationReport, type RunnerStats } from "./runner.ts";
import { startScmSimulator, seedDemoScenario, type ScmSimulator, type ScmSimulatorOptions } from "./scm-simulator.ts";
import { startSecretsManagerServer, type SecretsManagerServer } from "./secrets-manager-server.ts";

/** Local defaults, chosen so `npm start -- --drain` finishes in seconds (see docs/running-locally.md). */
export const LOCAL_PIPELINE_DEFAULTS = {
  /** Queue visibility timeout (s): a failed record comes back this long after its receive (or its invocation's end). */
  visibilityTimeoutSeconds: 2,
  /** The worker's MAX_RECEIVE_COUNT: the 3rd receive of a still-failing record dead-letters it (production: 5). */
  maxReceiveCount: 3,
  /** The queue's redrive maxReceiveCount: a safety net above MAX_RECEIVE_COUNT, as in serverless.yml (production: 8). */
  redriveMarginReceives: 2,
  batchSize: 10,
  /** Production waits up to 5 s to fill a batch; locally a job starts at once. */
  batchingWindowMs: 0,
  /** Batches in flight at once (containers); Lambda's minimum maximum concurrency is 2. */
  maxConcurrency: 2,
  /** The function timeout the context counts down from: production's (serverless.yml), so the worker's deadline logic behaves the same. */
  functionTimeoutMs: 60_000,
  /**
   * The worker's RETRY_VISIBILITY_SCHEDULE (production: 15s,1m,4m,15m): a record left for retry comes
   * back after a jittered 0-1 s, then 0-2 s, then 0-4 s (`retry_delayed` lines in the worker log).
   */
  retryVisibilitySchedule: "1s,2s,4s",
} as const;

/** The DLQ key for messages the queue's redrive policy moved there (defined with the queues). */
export { REDRIVE_POLICY_REASON };

export interface PipelineOptions {
  /** Ports on 127.0.0.1; 0 (the default here) picks free ones. `npm start` passes `LOCAL`'s. */
  sqsPort?: number;
  scmPort?: number;
  secretsPort?: number;
  /** A real SCM endpoint: no simulator is started. */
  scmEndpoint?: string;
  /** The SecretString to serve (raw token or `{"token": ...}`). Default: the simulator's demo token. */
  secret?: string;
  /** Extra options for the simulator (latency, rate limit, ...). Its tokens always include the served token. */
  simulator?: ScmSimulatorOptions;
  /** Seed the simulator with the demo certificates (default true). */
  seedDemo?: boolean;
  visibilityTimeoutSeconds?: number;
  /** The worker's MAX_RECEIVE_COUNT; the queue's redrive `maxReceiveCount` is this + 2. */
  maxReceiveCount?: number;
  batchSize?: number;
  batchingWindowMs?: number;
  maxConcurrency?: number;
  functionTimeoutMs?: number;
  /** Long-poll wait per receive (s); short so `stop()` is quick. Default 1. */
  pollWaitSeconds?: number;
  /**
   * The ledger (lib/ledger.ts). `true`: dynalite on `dynamoDbPort` with the ledger's table (named
   * `LOCAL.ledgerTable` unless `tableName` is given). `{ endpoint }`: a DynamoDB already running there
   * (its table is not created: pointing it at a stopped one simulates an outage). Default: no ledger.
   */
  ledger?: boolean | { tableName?: string; endpoint?: string };
  /** Port of the local DynamoDB with `ledger: true`; 0 (the default here) picks a free one. `npm start` passes `LOCAL`'s. */
  dynamoDbPort?: number;
  /**
   * More handler configuration (docs/configuration.md: MAX_ATTEMPTS, SCM_TIMEOUT_MS, LOG_LEVEL, ...).
   * The pipeline's own wiring wins.
   */
  env?: Record<string, string | undefined>;
  /** Every line the handler writes (its JSON logs) and anything a container prints to stderr. */
  onLogLine?: (line: string) => void;
  onInvocation?: (report: InvocationReport) => void;
  /** Queue errors and failed invocations. */
  onError?: (error: Error, where: string) => void;
}

/** Where each job stands, from the handler's log lines (per SQS message id). */
export type JobState = "withdrawn" | "already_withdrawn" | "dead_lettered" | "retrying";

/** The live counters: {@link PipelineStats} without the DLQ's breakdown by reason (which reads every DLQ message). */
export type PipelineProgress = Omit<PipelineStats, "deadLettered">;

export interface PipelineStats {
  /** Jobs sent by {@link Pipeline.enqueue}. */
  enqueued: number;
  /** Jobs withdrawn (the handler logged `withdrawal_succeeded`). */
  withdrawn: number;
  /** Jobs acknowledged as already withdrawn (`withdrawal_already_withdrawn`). */
  alreadyWithdrawn: number;
  /** What the DLQ holds now, by `failure_reason`; {@link REDRIVE_POLICY_REASON} for messages the queue's redrive moved. */
  deadLettered: Record<string, number>;
  deadLetteredTotal: number;
  /** Jobs whose last attempt failed transiently; they come back after the visibility timeout. */
  retrying: number;
  /** Messages on the withdrawals queue: waiting to be received, and received (being processed, or failed and waiting out the visibility timeout). */
  pending: { inQueue: number; inFlight: number };
  runner: RunnerStats;
  /** Since the pipeline started. */
  elapsedMs: number;
}

/** A message left on a queue when the pipeline stopped (the embedded queue lives in memory). */
export interface LeftoverMessage {
  messageId: string;
  body: string;
  receiveCount: number;
  /** String values of the message attributes (the DLQ's `failure_reason`, `error_code`, ...). */
  attributes: Record<string, string>;
}

export interface StopReport {
  stats: PipelineStats;
  /** Still on the withdrawals queue: not processed to the end. */
  unfinished: LeftoverMessage[];
  /** In the DLQ. */
  deadLetters: LeftoverMessage[];
}

/** The ledger of a pipeline started with `ledger`. */
export interface PipelineLedger {
  /** The value for AWS_ENDPOINT_URL_DYNAMODB (the CLI's and the handler's). */
  readonly endpoint: string;
  readonly tableName: string;
  /** A client for the endpoint (placeholder credentials). */
  readonly client: DynamoDBClient;
  /** A ledger over the same table, for reads (`batchStatus`, `batchJobs`) and producers. */
  readonly ledger: Ledger;
  /** Stops the local DynamoDB (an outage); only when the pipeline started it. */
  stopDynamo(): Promise<void>;
}

export interface Pipeline {
  /** `http://127.0.0.1:PORT`: the value for AWS_ENDPOINT_URL_SQS. */
  readonly sqsEndpoint: string;
  readonly queueUrl: string;
  readonly dlqUrl: string;
  readonly queueArn: string;
  readonly scmEndpoint: string;
  readonly secretsEndpoint: string;
  readonly secretId: string;
  readonly region: string;
  /** The simulator, unless a real `scmEndpoint` was given. */
  readonly sim: ScmSimulator | undefined;
  /** The local Secrets Manager endpoint (rotate the token with `setSecret`, inject outages with `failNext`). */
  readonly secrets: SecretsManagerServer;
  /** An SQS client for the embedded queue (explicit endpoint, dummy credentials). */
  readonly sqs: SQSClient;
  /** The ledger, when started with `ledger`. */
  readonly ledger: PipelineLedger | undefined;
  /** The settings in force (defaults applied). */
  readonly settings: Required<
    Pick<
      PipelineOptions,
      | "visibilityTimeoutSeconds"
      | "maxReceiveCount"
      | "batchSize"
      | "batchingWindowMs"
      | "maxConcurrency"
      | "functionTimeoutMs"
    >
  > & {
    redriveMaxReceiveCount: number;
  };
  /**
   * Sends bodies to the withdrawals queue (SendMessageBatch, 10 per call); resolves with each result.
   * With the ledger, bodies that carry a `request_id` are first recorded as queued (the others get
   * their ledger entry from the worker, keyed by their SQS message id), and `batch` records a batch's
   * expected total once they are sent.
   */
  enqueue(
    bodies: readonly string[],
    options?: { batch?: { id: string; expectedTotal: number } },
  ): Promise<SendResult<number>[]>;
  /** Counters, the DLQ by reason (read from the DLQ's messages) and the queue's depth. */
  stats(): Promise<PipelineStats>;
  /** The same without the DLQ's breakdown: cheap, for a live progress line. */
  progress(): Promise<PipelineProgress>;
  /** True when nothing is queued, in flight, or being enqueued. */
  isIdle(): Promise<boolean>;
  /** Resolves once the queue and everything in flight are empty; rejects after `timeoutMs` if given. */
  drain(options?: { timeoutMs?: number; pollMs?: number }): Promise<PipelineStats>;
  /** Stops polling, lets the batches in flight finish, reports what is left, and closes everything. */
  stop(): Promise<StopReport>;
}

/** A port the pipeline needs is taken. */
export class PortInUseError extends Error {
  /** Every port found taken (all are checked before any is reported), in the order of the services. */
  readonly taken: readonly { service: string; port: number }[];
  constructor(taken: readonly { service: string; port: number }[], options?: ErrorOptions) {
    const list = taken.map((t) => `${t.port} (${t.service})`).join(", ");
    super(
      `${taken.length === 1 ? "port" : "ports"} ${list} on ${LOCAL.host} ${taken.length === 1 ? "is" : "are"} already in use`,
      options,
    );
    this.name = "PortInUseError";
    this.taken = taken;
  }

  get port(): number {
    return this.taken[0]!.port;
  }

  get service(): string {
    return this.taken[0]!.service;
  }
}

/** `startPipeline` rejects with it when the handler cannot start in its containers (for example a bad configuration). */
export { ContainerStartError };

/**
 * The demo jobs: one per outcome of `DEMO`, plus the invalid bodies. With `batchId`, the valid ones
 * belong to that batch (the ledger can then follow them as one).
 */
export function demoJobs(batchId?: string): string[] {
  // Stamped like every producer's jobs (the OS user, locally), so the audit columns show who asked.
  const requestedBy = localRequester();
  return [
    ...Object.entries(DEMO).map(([name, id]) =>
      buildWithdrawalBody({
        certificate_id: id,
        source: "manual",
        request_id: `demo-${name}`,
        reason: `demo: ${name}`,
        requested_by: requestedBy,
        ...(batchId ? { batch_id: batchId } : {}),
      }),
    ),
    ...DEMO_INVALID_BODIES,
  ];
}

/** What the demo jobs end as, once drained (see `demo-certificates.ts`). */
export const DEMO_EXPECTED = {
  withdrawn: 3,
  alreadyWithdrawn: 1,
  deadLettered: { invalid_message: 2, rejected: 1, forbidden: 1, not_found: 1, retries_exhausted: 1 },
} as const;

export async function startPipeline(options: PipelineOptions = {}): Promise<Pipeline> {
  const maxReceiveCount = options.maxReceiveCount ?? LOCAL_PIPELINE_DEFAULTS.maxReceiveCount;
  const settings = {
    visibilityTimeoutSeconds: options.visibilityTimeoutSeconds ?? LOCAL_PIPELINE_DEFAULTS.visibilityTimeoutSeconds,
    maxReceiveCount,
    // Above the worker's count, as deployed: the queue only moves what the worker could not decide.
    redriveMaxReceiveCount: maxReceiveCount + LOCAL_PIPELINE_DEFAULTS.redriveMarginReceives,
    batchSize: options.batchSize ?? LOCAL_PIPELINE_DEFAULTS.batchSize,
    batchingWindowMs: options.batchingWindowMs ?? LOCAL_PIPELINE_DEFAULTS.batchingWindowMs,
    maxConcurrency: options.maxConcurrency ?? LOCAL_PIPELINE_DEFAULTS.maxConcurrency,
    functionTimeoutMs: options.functionTimeoutMs ?? LOCAL_PIPELINE_DEFAULTS.functionTimeoutMs,
  };
  const secret = options.secret ?? LOCAL.demoToken;
  const stored = parseSecret(secret); // throws TokenUnavailableError (without the token) if unusable
  const region = LOCAL.region;
  const started = Date.now();

  const closers: (() => Promise<void> | void)[] = [];
  const closeAll = async () => {
    for (const close of closers.splice(0).reverse()) {
      try {
        await close();
      } catch {
        // Closing is best effort: one failing closer must not keep the others open.
      }
    }
  };

  try {
    // Check every port first: a clear error before anything starts (and the Secrets Manager server
    // does not report a taken port itself).
    // Every port is checked before any is reported: one run names all the ports to change.
    await assertPortsFree([
      { service: "SQS", port: options.sqsPort ?? 0 },
      ...(options.scmEndpoint ? [] : [{ service: "SCM simulator", port: options.scmPort ?? 0 }]),
      { service: "Secrets Manager", port: options.secretsPort ?? 0 },
      ...(options.ledger === true ? [{ service: "DynamoDB", port: options.dynamoDbPort ?? 0 }] : []),
    ]);

    // ---- SQS (fauxqs), bound to loopback only ----
    let queues: LocalQueues;
    try {
      queues = await startLocalQueues({
        port: options.sqsPort ?? 0,
        region,
        visibilityTimeoutSeconds: settings.visibilityTimeoutSeconds,
        redriveMaxReceiveCount: settings.redriveMaxReceiveCount,
      });
    } catch (error) {
      throw isAddressInUse(error)
        ? new PortInUseError([{ service: "SQS", port: options.sqsPort ?? 0 }], { cause: error })
        : error;
    }
    closers.push(() => queues.close());
    const { endpoint: sqsEndpoint, sqs, queueUrl, queueArn, dlqUrl } = queues;

    // ---- SCM: the simulator, or the real one ----
    let sim: ScmSimulator | undefined;
    let scmEndpoint = options.scmEndpoint;
    if (!scmEndpoint) {
      const simOptions: ScmSimulatorOptions = { ...options.simulator, port: options.scmPort ?? 0 };
      if (stored.kind === "token") simOptions.tokens = [...(options.simulator?.tokens ?? []), stored.token];
      else if (stored.kind === "aksk")
        simOptions.accessKeys = [...(options.simulator?.accessKeys ?? []), stored.credentials];
      else
        simOptions.iamUsers = [
          ...(options.simulator?.iamUsers ?? []),
          { domain: stored.credentials.domain, user: stored.credentials.user, password: stored.credentials.password },
        ];
      try {
        sim = await startScmSimulator(simOptions);
      } catch (error) {
        throw isAddressInUse(error)
          ? new PortInUseError([{ service: "SCM simulator", port: options.scmPort ?? 0 }], { cause: error })
          : error;
      }
      closers.push(() => sim!.close());
      if (options.seedDemo ?? true) seedDemoScenario(sim);
      scmEndpoint = sim.url;
    }

    // ---- Secrets Manager: serves the token to the handler ----
    let secrets: SecretsManagerServer;
    try {
      secrets = await startSecretsManagerServer({ [LOCAL.secretId]: secret }, options.secretsPort ?? 0);
    } catch (error) {
      throw isAddressInUse(error)
        ? new PortInUseError([{ service: "Secrets Manager", port: options.secretsPort ?? 0 }], { cause: error })
        : error;
    }
    closers.push(() => secrets.close());

    // ---- the ledger: dynalite with the table, or a DynamoDB that is already there ----
    let ledger: PipelineLedger | undefined;
    if (options.ledger) {
      const given = options.ledger === true ? {} : options.ledger;
      const tableName = given.tableName ?? LOCAL.ledgerTable;
      let dynamo: LocalDynamo | undefined;
      if (!given.endpoint) {
        try {
          dynamo = await startLocalDynamo({ port: options.dynamoDbPort ?? 0 });
        } catch (error) {
          throw /already in use/.test((error as Error).message)
            ? new PortInUseError([{ service: "DynamoDB", port: options.dynamoDbPort ?? 0 }], { cause: error })
            : error;
        }
        // Once only: a test may stop it (an outage) before the pipeline stops.
        const close = dynamo.close;
        let closing: Promise<void> | undefined;
        dynamo.close = () => (closing ??= close());
        closers.push(() => dynamo!.close());
      }
      const endpoint = given.endpoint ?? dynamo!.endpoint;
      const client = localDynamoClient(endpoint);
      closers.push(() => client.destroy());
      if (dynamo) await createLedgerTable(client, tableName);
      ledger = {
        endpoint,
        tableName,
        client,
        ledger: createLedger({ client, tableName }),
        stopDynamo: async () => {
          await dynamo?.close();
        },
      };
    }

    // ---- what happened to each job, from the handler's log lines ----
    const jobs = new Map<string, JobState>();
    const counts: Record<JobState, number> = { withdrawn: 0, already_withdrawn: 0, dead_lettered: 0, retrying: 0 };
    const setState = (messageId: unknown, state: JobState) => {
      if (typeof messageId !== "string") return;
      const current = jobs.get(messageId);
      // A decided job stays decided (a redelivery after a lost delete must not count twice).
      if (current === state || (current !== undefined && current !== "retrying")) return;
      if (current !== undefined) counts[current] -= 1;
      counts[state] += 1;
      jobs.set(messageId, state);
    };
    const onLogLine = (line: string) => {
      options.onLogLine?.(line);
      if (!line.startsWith("{")) return;
      let entry: { event?: unknown; messageId?: unknown };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        return;
      }
      switch (entry.event) {
        case "withdrawal_succeeded":
          return setState(entry.messageId, "withdrawn");
        case "withdrawal_already_withdrawn":
          return setState(entry.messageId, "already_withdrawn");
        case "withdrawal_dead_lettered":
          return setState(entry.messageId, "dead_lettered");
        case "withdrawal_left_for_retry":
        case "dead_letter_failed":
          return setState(entry.messageId, "retrying");
      }
    };

    // ---- the handler's containers and the event-source runner ----
    const handlerEnv: Record<string, string> = {
      RETRY_VISIBILITY_SCHEDULE: LOCAL_PIPELINE_DEFAULTS.retryVisibilitySchedule,
      ...definedOnly(options.env ?? {}),
      ...localHandlerEnv({
        scmEndpoint,
        secretsEndpoint: secrets.url,
        secretsCredentials: secrets.credentials,
        sqsEndpoint,
        dlqUrl,
        maxReceiveCount: settings.maxReceiveCount,
        region,
      }),
      // As deployed: the table's name, and (the SDK's standard variable) where DynamoDB is.
      ...(ledger ? { LEDGER_TABLE: ledger.tableName, AWS_ENDPOINT_URL_DYNAMODB: ledger.endpoint } : {}),
    };
    const pool = createContainerPool(handlerEnv, onLogLine);
    closers.push(() => pool.close());
    // Cold-start every container now, so a bad configuration fails here, once, with its message.
    await pool.warm(settings.maxConcurrency);

    const runner: EventSourceRunner = createEventSourceRunner({
      sqs,
      queueUrl,
      queueArn,
      region,
      invoke: pool.invoke,
      visibilityTimeoutSeconds: settings.visibilityTimeoutSeconds,
      batchSize: settings.batchSize,
      batchingWindowMs: settings.batchingWindowMs,
      maxConcurrency: settings.maxConcurrency,
      functionTimeoutMs: settings.functionTimeoutMs,
      waitTimeSeconds: options.pollWaitSeconds ?? 1,
      onInvocation: (report) => {
        // Whole-batch failures (timeout, crash, token unavailable) log no per-record line.
        for (const id of report.failed) setState(id, "retrying");
        options.onInvocation?.(report);
      },
      ...(options.onError ? { onError: options.onError } : {}),
    });
    runner.start();
    closers.push(() => runner.stop());

    let enqueued = 0;
    let enqueueing = 0;

    /** Message counts of both queues, without reading the messages (cheap enough for a live progress line). */
    const queueCounts = async () => {
      const { queue, dlq } = await queues.counts();
      return {
        pending: { inQueue: queue.waiting, inFlight: queue.inFlight },
        deadLetteredTotal: dlq.waiting + dlq.inFlight,
      };
    };

    const progress = async (): Promise<PipelineProgress> => {
      const { pending, deadLetteredTotal } = await queueCounts();
      return {
        enqueued,
        withdrawn: counts.withdrawn,
        alreadyWithdrawn: counts.already_withdrawn,
        deadLetteredTotal,
        retrying: counts.retrying,
        pending,
        runner: runner.stats(),
        elapsedMs: Date.now() - started,
      };
    };

    const stats = async (): Promise<PipelineStats> => {
      const [current, letters] = await Promise.all([progress(), queues.messages("dlq")]);
      const deadLettered: Record<string, number> = {};
      for (const message of letters) {
        const reason = deadLetterReason(message);
        deadLettered[reason] = (deadLettered[reason] ?? 0) + 1;
      }
      return { ...current, deadLettered, deadLetteredTotal: letters.length };
    };

    const isIdle = async () => {
      if (enqueueing > 0 || runner.inFlight > 0) return false;
      const { pending } = await queueCounts();
      return pending.inQueue + pending.inFlight === 0 && runner.inFlight === 0 && enqueueing === 0;
    };

    const leftovers = async (which: "queue" | "dlq"): Promise<LeftoverMessage[]> =>
      (await queues.messages(which)).map((m) => ({
        messageId: m.messageId,
        body: m.body,
        receiveCount: m.approximateReceiveCount,
        attributes: Object.fromEntries(
          Object.entries(m.messageAttributes ?? {}).map(([k, v]) => [k, v.StringValue ?? ""]),
        ),
      }));

    let stopping: Promise<StopReport> | undefined;

    return {
      sqsEndpoint,
      queueUrl,
      dlqUrl,
      queueArn,
      scmEndpoint,
      secretsEndpoint: secrets.url,
      secretId: LOCAL.secretId,
      region,
      sim,
      secrets,
      sqs,
      ledger,
      settings,
      async enqueue(bodies, { batch } = {}) {
        enqueueing += 1;
        try {
          // Recorded before they are sent (as every producer does), when the ledger can know them.
          const refs = new Map<number, JobRef>();
          if (ledger) {
            for (const [index, body] of bodies.entries()) {
              const parsed = parseWithdrawalBody(body);
              if (parsed.ok && parsed.request.request_id !== undefined)
                refs.set(index, jobRefFromBody(body, parsed.request.request_id));
            }
            if (refs.size > 0) await ledger.ledger.recordQueued([...refs.values()]);
          }
          const results: SendResult<number>[] = [];
          const sender = createSender<number>({ sqs, queueUrl, onResult: (result) => results.push(result) });
          for (const [index, body] of bodies.entries()) await sender.push({ key: index, body });
          await sender.flush();
          enqueued += results.filter((r) => r.ok).length;
          if (ledger) {
            const notSent = results.flatMap((r) => (!r.ok && refs.has(r.key) ? [refs.get(r.key)!] : []));
            if (notSent.length > 0) await ledger.ledger.recordNotSent(notSent);
            if (batch) await ledger.ledger.recordBatch(batch.id, { expectedTotal: batch.expectedTotal });
          }
          return results.sort((a, b) => a.key - b.key);
        } finally {
          enqueueing -= 1;
        }
      },
      stats,
      progress,
      isIdle,
      async drain({ timeoutMs, pollMs = 100 } = {}) {
        const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
        // Two idle looks in a row, so a record between "received" and "handed over" is not missed.
        for (let idleLooks = 0; idleLooks < 2; ) {
          if (Date.now() > deadline) throw new Error(`drain: still busy after ${timeoutMs} ms`);
          idleLooks = (await isIdle()) ? idleLooks + 1 : 0;
          await new Promise((resolve) => setTimeout(resolve, pollMs));
        }
        return stats();
      },
      stop() {
        stopping ??= (async () => {
          try {
            await runner.stop();
            const [finalStats, unfinished, deadLetters] = await Promise.all([
              stats(),
              leftovers("queue"),
              leftovers("dlq"),
            ]);
            return { stats: finalStats, unfinished, deadLetters };
          } finally {
            await closeAll();
          }
        })();
        return stopping;
      },
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

/**
 * The summary table `npm start` prints: jobs withdrawn and already withdrawn (from the handler's log
 * lines), what the DLQ holds by reason (from the DLQ itself), and what is still pending (from the queue).
 */
export function formatSummary(stats: PipelineStats): string {
  const rows: [string, number][] = [
    ["withdrawn", stats.withdrawn],
    ["already withdrawn", stats.alreadyWithdrawn],
    ["dead-lettered (in the DLQ)", stats.deadLetteredTotal],
    ...Object.entries(stats.deadLettered)
      .sort(([a], [b]) => reasonRank(a) - reasonRank(b) || a.localeCompare(b))
      .map(([reason, count]): [string, number] => [
        `  ${reason === REDRIVE_POLICY_REASON ? "moved by the redrive policy" : reason}`,
        count,
      ]),
    ["still pending", stats.pending.inQueue + stats.pending.inFlight],
    ["  in queue", stats.pending.inQueue],
    ["  in flight", stats.pending.inFlight],
  ];
  const width = Math.max(...rows.map(([label]) => label.length)) + 4;
  const { runner } = stats;
  const plural = (count: number, one: string, many: string) => `${count} ${count === 1 ? one : many}`;
  const header = `after ${(stats.elapsedMs / 1000).toFixed(1)} s: ${plural(runner.records, "delivery", "deliveries")} in ${plural(runner.invocations, "batch", "batches")} (${plural(runner.redeliveries, "redelivery", "redeliveries")})`;
  return [header, ...rows.map(([label, count]) => `  ${label.padEnd(width)}${String(count).padStart(5)}`)].join("\n");
}

/**
 * Whether `now` reports anything that `shown` (the summary printed last, if any) did not: `npm start`
 * prints the summary again on Ctrl-C only then. Every figure counts but the elapsed time, the header's
 * deliveries and batches too: a job can be processed without moving a row (one the ledger already has
 * as withdrawn is acknowledged without a withdrawal, a redelivery of a decided job counts once).
 */
export function summaryChanged(shown: PipelineStats | undefined, now: PipelineStats): boolean {
  if (!shown) return true;
  const figures = (stats: PipelineStats) => formatSummary({ ...stats, elapsedMs: 0 });
  return figures(shown) !== figures(now);
}

/** The outcome table's order (docs/contract.md), then anything else, then the redrive policy's moves. */
const REASON_ORDER: readonly string[] = FAILURE_REASONS;
const reasonRank = (reason: string) =>
  reason === REDRIVE_POLICY_REASON ? 1000 : REASON_ORDER.indexOf(reason) === -1 ? 999 : REASON_ORDER.indexOf(reason);

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

function isAddressInUse(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === "EADDRINUSE";
}

/** Fails with one {@link PortInUseError} naming every `port` (0 = any, never taken) on 127.0.0.1 that is taken. */
async function assertPortsFree(ports: readonly { service: string; port: number }[]): Promise<void> {
  const taken: { service: string; port: number }[] = [];
  for (const entry of ports) {
    if (entry.port === 0) continue;
    const free = await new Promise<boolean>((resolve, reject) => {
      const probe = createServer();
      probe.once("error", (error) => (isAddressInUse(error) ? resolve(false) : reject(error)));
      probe.listen(entry.port, LOCAL.host, () => probe.close(() => resolve(true)));
    });
    if (!free) taken.push(entry);
  }
  if (taken.length > 0) throw new PortInUseError(taken);
}

function definedOnly(env: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined && entry[1] !== ""),
  );
}

/** A random id for a run (used in file names of leftovers). */
export const runId = (): string => `${new Date().toISOString().replace(/[:.]/g, "-")}-${randomUUID().slice(0, 4)}`;
