/**
 * Builds the worker's real dependencies from the configuration: the SCM client, the Secrets Manager
 * token provider (with the IAM exchange for `{"iam": ...}` secrets), the DLQ sender and the logger. Called once per container by the handler; tests
 * and the local pipeline call it too, with the same configuration variables.
 */
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { SQSClient } from "@aws-sdk/client-sqs";
import type { Config } from "./config.ts";
import { createDeadLetterSender } from "./dead-letter.ts";
import { createIamExchange } from "./iam.ts";
import { createLogger, type Logger } from "./logger.ts";
import { createRateLimiter } from "./rate-limiter.ts";
import { createScmClient } from "./scm-client.ts";
import { createTokenProvider, secretsManagerReader } from "./token-provider.ts";
import { createWorker, type WorkerDependencies } from "./worker.ts";

/** SDK calls must not outlive the Lambda: the SDK's default has no request timeout at all. */
const AWS_REQUEST_HANDLER = { connectionTimeout: 3000, requestTimeout: 5000 } as const;

export interface Runtime {
  worker: ReturnType<typeof createWorker>;
  logger: Logger;
  close(): void;
}

export function createRuntime(config: Config, overrides: Partial<WorkerDependencies> & { sqs?: SQSClient; secretsManager?: SecretsManagerClient } = {}): Runtime {
  const logger = overrides.logger ?? createLogger({ level: config.logLevel });
  // With an endpoint override (a local emulator), the SDK must not send to the queue URL's host.
  const sqs = overrides.sqs ?? new SQSClient({ useQueueUrlAsEndpoint: !config.sqsEndpointOverridden, requestHandler: AWS_REQUEST_HANDLER });
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
  const worker = createWorker({
    config,
    scm,
    tokens,
    sendDeadLetter: overrides.sendDeadLetter ?? createDeadLetterSender(sqs, config.dlqUrl),
    logger,
    ...(config.scmMaxRps ? { limiter: createRateLimiter(config.scmMaxRps) } : {}),
    ...overrides,
  });
  return {
    worker,
    logger,
    close: () => {
      scm.close();
      iam.close();
      if (!overrides.sqs) sqs.destroy();
      if (!overrides.secretsManager) secretsManager.destroy();
    },
  };
}
