/**
 * Builds the worker's real dependencies from the configuration: the SCM client, the Secrets Manager
 * token provider (with the IAM exchange for `{"iam": ...}` secrets), the DLQ sender and the logger. Called once per container by the handler; tests
 * and the local pipeline call it too, with the same configuration variables.
 */
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import type { SQSClient } from "@aws-sdk/client-sqs";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { Config } from "./config.ts";
import { createDeadLetterSender } from "./dead-letter.ts";
import { createIamExchange } from "./iam.ts";
import type { Ledger } from "./ledger.ts";
import { createLogger, type Logger } from "./logger.ts";
import { createAdaptiveLimiter, createRateLimiter, GATEWAY_HEADROOM, systemClock, unlimited, type RateLimiter } from "./rate-limiter.ts";
import { createScmClient } from "./scm-client.ts";
import { createTokenProvider, secretsManagerReader } from "./token-provider.ts";
import { createVisibilityChanger } from "./visibility.ts";
import { createWorker, type WorkerDependencies } from "./worker.ts";

/** SDK calls must not outlive the Lambda: the SDK's default has no request timeout at all. */
const AWS_REQUEST_HANDLER = { connectionTimeout: 3000, requestTimeout: 5000 } as const;

export interface Runtime {
  worker: ReturnType<typeof createWorker>;
  logger: Logger;
  close(): void;
}

export function createRuntime(
  config: Config,
  overrides: Partial<WorkerDependencies> & { sqs?: SQSClient; secretsManager?: SecretsManagerClient; dynamo?: DynamoDBClient } = {},
): Runtime {
  const logger = overrides.logger ?? createLogger({ level: config.logLevel });
  // The SQS client (for dead letters only) is made on the first dead letter: loading the SQS SDK is
  // about 15 ms of every cold start, and most containers never dead-letter anything (dead-letter.ts).
  let createdSqs: SQSClient | undefined;
  let sqsClient: Promise<SQSClient> | undefined;
  const sqs = () =>
    (sqsClient ??= import("@aws-sdk/client-sqs").then(({ SQSClient }) => {
      // With an endpoint override (a local emulator), the SDK must not send to the queue URL's host.
      createdSqs = new SQSClient({ useQueueUrlAsEndpoint: !config.sqsEndpointOverridden, requestHandler: AWS_REQUEST_HANDLER });
      return createdSqs;
    }));
  const secretsManager = overrides.secretsManager ?? new SecretsManagerClient({ requestHandler: AWS_REQUEST_HANDLER });
  const scm = overrides.scm ?? createScmClient({ endpoint: config.scmEndpoint, timeoutMs: config.scmTimeoutMs, maxSockets: config.batchConcurrency });
  // Used only when the secret holds {"iam": ...}; it opens no connection until then.
  const iam = createIamExchange({ endpoint: config.iamEndpoint, timeoutMs: config.iamTimeoutMs, secretId: config.tokenSecretId });
  const tokens =
    overrides.tokens ??
    createTokenProvider({
      readSecret: secretsManagerReader(secretsManager, config.tokenSecretId),
      ttlMs: config.tokenCacheTtlMs,
      exchangeIam: iam.exchange,
      iamRefreshMarginMs: config.iamTokenRefreshMarginMs,
    });
  const ledger = config.ledgerTable ? lazyLedger(config.ledgerTable, logger, overrides.dynamo) : undefined;
  const worker = createWorker({
    config,
    scm,
    tokens,
    sendDeadLetter: overrides.sendDeadLetter ?? createDeadLetterSender(overrides.sqs ?? sqs, config.dlqUrl),
    changeVisibility: createVisibilityChanger(overrides.sqs ?? sqs),
    logger,
    limiter: limiterFor(config, logger),
    ...overrides,
    ...(ledger && !overrides.ledger
      ? {
          ledger,
          onOutcome: async (outcome) => {
            await ledger.onOutcome(outcome);
            await overrides.onOutcome?.(outcome);
          },
        }
      : {}),
  });
  return {
    worker,
    logger,
    close: () => {
      scm.close();
      iam.close();
      createdSqs?.destroy();
      if (!overrides.secretsManager) secretsManager.destroy();
      ledger?.close();
    },
  };
}

/**
 * `adaptive` (default): finds this container's share of SCM's unpublished rate limit, starting from
 * SCM_MAX_RPS (rate-limiter.ts). `fixed`: SCM_MAX_RPS as set, a little under it so jitter on the way to
 * the gateway does not cost 429s; no limit without it.
 */
function limiterFor(config: Config, logger: Logger): RateLimiter {
  if (config.scmRateLimit === "fixed") {
    return config.scmMaxRps ? createRateLimiter(config.scmMaxRps, systemClock, { headroom: GATEWAY_HEADROOM }) : unlimited;
  }
  const round = (rps: number) => (Number.isFinite(rps) ? Math.round(rps * 100) / 100 : null);
  return createAdaptiveLimiter({
    initialRps: config.scmMaxRps,
    onCut: ({ rate, previous, statedLimit }) =>
      logger.info("scm_rate_reduced", { rps: round(rate), previousRps: round(previous), statedLimit: statedLimit ?? null }),
  });
}

/**
 * The ledger (LEDGER_TABLE), loaded on its first use: lib/ledger.ts and the DynamoDB SDK are imported
 * only by containers that have a ledger, so a container without one pays nothing at cold start. Like
 * every ledger call, a failed load means "proceed" and no record; it never decides a job's fate.
 */
function lazyLedger(tableName: string, logger: Logger, dynamo: DynamoDBClient | undefined) {
  let created: DynamoDBClient | undefined;
  let loaded: Ledger | undefined;
  let loading: Promise<Ledger> | undefined;
  const load = () =>
    (loading ??= Promise.all([import("@aws-sdk/client-dynamodb"), import("./ledger.ts")]).then(([{ DynamoDBClient }, { createLedger }]) => {
      // Two attempts: each ledger call has its own short time limit (1 s), retries must fit in it.
      const client = dynamo ?? (created = new DynamoDBClient({ requestHandler: AWS_REQUEST_HANDLER, maxAttempts: 2 }));
      return (loaded = createLedger({ client, tableName, logger }));
    }));
  return {
    claim: async (job: Parameters<Ledger["claim"]>[0]) => (await load()).claim(job),
    onOutcome: async (outcome: Parameters<Ledger["onOutcome"]>[0]) => (await load()).onOutcome(outcome),
    stats: () => loaded?.stats() ?? { failures: 0, skipped: 0 },
    close: () => created?.destroy(),
  };
}
