/**
 * The sweep's real dependencies, built once per container (or CLI run) from its configuration: the
 * SCM client, the token provider (with the IAM exchange for `{"iam": ...}` secrets), the queue sender,
 * and, with `LEDGER_TABLE`, the ledger and the first sightings in its table.
 */
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { SQSClient } from "@aws-sdk/client-sqs";
import { AWS_REQUEST_HANDLER, sqsClientConfig } from "./aws-clients.ts";
import type { CleanupConfig } from "./cleanup-config.ts";
import { runCleanup } from "./cleanup.ts";
import type { CleanupDependencies, CleanupReport, CleanupRunMode } from "./cleanup-types.ts";
import { createIamExchange } from "./iam.ts";
// Types only: the ledger, the sightings and the DynamoDB SDK are loaded only when LEDGER_TABLE is set.
import type { Ledger } from "./ledger.ts";
import { createLogger, type Logger } from "./logger.ts";
import { createSender, type SendResult } from "./producer.ts";
import { lambdaRequester, localRequester } from "./requester.ts";
import { createScmClient, type ScmClient } from "./scm-client.ts";
import type { Sightings } from "./sightings.ts";
import { createTokenProvider, secretsManagerReader, type IamExchange, type TokenProvider } from "./token-provider.ts";

export interface CleanupRuntimeOverrides {
  sqs?: SQSClient;
  secretsManager?: SecretsManagerClient;
  scm?: ScmClient;
  /** Replaces the Secrets Manager token provider (the CLI's `--token-file`). */
  tokens?: TokenProvider;
  /** For secrets holding IAM credentials (`{"iam": {...}}`); default: the real exchange with `IAM_ENDPOINT`. */
  exchangeIam?: IamExchange;
  logger?: Logger;
  /** Replace the ledger and the sightings built from `config.ledgerTable` (tests). */
  ledger?: CleanupDependencies["ledger"];
  sightings?: Sightings;
  /** Who the jobs say asked for them; default: the Lambda function (`lambda:<name>`), else the OS user. */
  requestedBy?: string;
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
  const scm =
    overrides.scm ?? createScmClient({ endpoint: config.scmEndpoint, timeoutMs: config.scmTimeoutMs, maxSockets: 2 });
  let secretsManager: SecretsManagerClient | undefined;
  let iam: ReturnType<typeof createIamExchange> | undefined;
  const tokens =
    overrides.tokens ??
    createTokenProvider({
      readSecret: secretsManagerReader(
        (secretsManager =
          overrides.secretsManager ?? new SecretsManagerClient({ requestHandler: AWS_REQUEST_HANDLER })),
        config.tokenSecretId,
      ),
      ttlMs: config.tokenCacheTtlMs,
      iamRefreshMarginMs: config.iamTokenRefreshMarginMs,
      // Used only when the secret holds {"iam": ...}, as in the worker; it opens no connection until then.
      exchangeIam:
        overrides.exchangeIam ??
        (iam = createIamExchange({
          endpoint: config.iamEndpoint,
          timeoutMs: config.iamTimeoutMs,
          secretId: config.tokenSecretId,
        })).exchange,
    });
  const queueUrl = config.queueUrl;
  const sqs = queueUrl ? (overrides.sqs ?? new SQSClient(sqsClientConfig(config.sqsEndpointOverridden))) : undefined;
  const deps: CleanupDependencies = {
    scm,
    tokens,
    logger,
    requestedBy: overrides.requestedBy ?? lambdaRequester() ?? localRequester(),
    retry: {
      maxAttempts: config.maxAttempts,
      baseDelayMs: config.retryBaseDelayMs,
      maxDelayMs: config.retryMaxDelayMs,
      timeoutMs: config.scmTimeoutMs,
    },
    ...(sqs && queueUrl
      ? {
          createSender: (onResult: (result: SendResult<string>) => void) =>
            createSender<string>({ sqs, queueUrl, onResult }),
        }
      : {}),
  };
  const overridden = overrides.ledger !== undefined || overrides.sightings !== undefined;
  const ledger = !overridden && config.ledgerTable ? lazyLedger(config.ledgerTable, logger) : undefined;
  const ledgerDeps = overrides.ledger ?? ledger;
  if (ledgerDeps) deps.ledger = ledgerDeps;
  const sightings = overrides.sightings ?? ledger?.sightings;
  if (sightings) deps.sightings = sightings;
  return {
    config,
    logger,
    run: ({ runId, deadline, mode }) =>
      runCleanup(deps, {
        runId,
        mode: mode ?? (config.mode === "enqueue" ? "enqueue" : "dry-run"),
        filters: config.filters,
        offsetMode: config.offsetMode,
        minAgeMs: config.minAgeMs,
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

/** The ledger and the sightings in its table, loaded (with the DynamoDB SDK) on first use. */
function lazyLedger(tableName: string, logger: Logger) {
  let created: { destroy(): void } | undefined;
  let loading: Promise<{ ledger: Ledger; sightings: Sightings }> | undefined;
  const load = () =>
    (loading ??= Promise.all([
      import("@aws-sdk/client-dynamodb"),
      import("./ledger.ts"),
      import("./sightings.ts"),
    ]).then(([{ DynamoDBClient }, { createLedger }, { createSightings }]) => {
      const client = new DynamoDBClient({ requestHandler: AWS_REQUEST_HANDLER });
      created = client;
      return {
        ledger: createLedger({ client, tableName, logger }),
        sightings: createSightings({ client, tableName, logger }),
      };
    }));
  const ledger = async () => (await load()).ledger;
  return {
    sightings: {
      record: async (certificates) => (await load()).sightings.record(certificates),
      forget: async (ids) => (await load()).sightings.forget(ids),
    } satisfies Sightings,
    recordQueued: async (...args: Parameters<Ledger["recordQueued"]>) => (await ledger()).recordQueued(...args),
    recordNotSent: async (...args: Parameters<Ledger["recordNotSent"]>) => (await ledger()).recordNotSent(...args),
    recordBatch: async (...args: Parameters<Ledger["recordBatch"]>) => (await ledger()).recordBatch(...args),
    close: () => created?.destroy(),
  };
}
