/**
 * Builds the worker's real dependencies from the configuration: the SCM client, the Secrets Manager
 * token provider (with the IAM exchange for `{"iam": ...}` secrets), the DLQ sender and the logger. Called once per container by the handler; tests
 * and the local pipeline call it too, with the same configuration variables.
 */
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import type { SQSClient } from "@aws-sdk/client-sqs";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { AWS_REQUEST_HANDLER, lazyLedger, sqsClientConfig } from "./aws-clients.ts";
import type { Config } from "./config.ts";
import { createDeadLetterSender } from "./dead-letter.ts";
import { createIamExchange } from "./iam.ts";
import { createLogger, type Logger } from "./logger.ts";
import {
  createAdaptiveLimiter,
  createRateLimiter,
  GATEWAY_HEADROOM,
  systemClock,
  unlimited,
  type RateLimiter,
} from "./rate-limiter.ts";
import { createScmClient } from "./scm-client.ts";
import { createTokenProvider, secretsManagerReader } from "./token-provider.ts";
import { createVisibilityChanger } from "./visibility.ts";
import { createWorker, type WorkerDependencies } from "./worker.ts";

export interface Runtime {
  worker: ReturnType<typeof createWorker>;
  logger: Logger;
  close(): void;
}

export function createRuntime(
  config: Config,
  overrides: Partial<WorkerDependencies> & {
    sqs?: SQSClient;
    secretsManager?: SecretsManagerClient;
    dynamo?: DynamoDBClient;
  } = {},
): Runtime {
  const logger = overrides.logger ?? createLogger({ level: config.logLevel });
  // The SQS client (for dead letters only) is made on the first dead letter: loading the SQS SDK is
  // about 15 ms of every cold start, and most containers never dead-letter anything (dead-letter.ts).
  let createdSqs: SQSClient | undefined;
  let sqsClient: Promise<SQSClient> | undefined;
  const sqs = () =>
    (sqsClient ??= import("@aws-sdk/client-sqs").then(({ SQSClient }) => {
      createdSqs = new SQSClient(sqsClientConfig(config.sqsEndpointOverridden));
      return createdSqs;
    }));
  const secretsManager = overrides.secretsManager ?? new SecretsManagerClient({ requestHandler: AWS_REQUEST_HANDLER });
  const scm =
    overrides.scm ??
    createScmClient({
      endpoint: config.scmEndpoint,
      timeoutMs: config.scmTimeoutMs,
      maxSockets: config.batchConcurrency,
    });
  // Used only when the secret holds {"iam": ...}; it opens no connection until then.
  const iam = createIamExchange({
    endpoint: config.iamEndpoint,
    timeoutMs: config.iamTimeoutMs,
    secretId: config.tokenSecretId,
  });
  const tokens =
    overrides.tokens ??
    createTokenProvider({
      readSecret: secretsManagerReader(secretsManager, config.tokenSecretId),
      ttlMs: config.tokenCacheTtlMs,
      exchangeIam: iam.exchange,
      iamRefreshMarginMs: config.iamTokenRefreshMarginMs,
    });
  // Two attempts: each ledger call on the worker's path has its own short time limit (1 s), retries must fit in it.
  const dynamo = overrides.dynamo ? { client: overrides.dynamo } : {};
  const ledger = config.ledgerTable ? lazyLedger(config.ledgerTable, logger, { ...dynamo, maxAttempts: 2 }) : undefined;
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
    return config.scmMaxRps
      ? createRateLimiter(config.scmMaxRps, systemClock, { headroom: GATEWAY_HEADROOM })
      : unlimited;
  }
  const round = (rps: number) => (Number.isFinite(rps) ? Math.round(rps * 100) / 100 : null);
  return createAdaptiveLimiter({
    initialRps: config.scmMaxRps,
    onCut: ({ rate, previous, statedLimit }) =>
      logger.info("scm_rate_reduced", {
        rps: round(rate),
        previousRps: round(previous),
        statedLimit: statedLimit ?? null,
      }),
  });
}
