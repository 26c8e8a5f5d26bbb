/**
 * The one place the deployed functions (lib/runtime.ts, lib/cleanup.ts) configure AWS SDK clients:
 * the request handler's time limits, the SQS client's endpoint rule, and the ledger loaded on first use.
 */
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { SQSClientConfig } from "@aws-sdk/client-sqs";
import type { Ledger } from "./ledger.ts";
import type { Logger } from "./logger.ts";

/**
 * SDK calls must not outlive the Lambda: the SDK's default has no request timeout at all, and without
 * throwOnRequestTimeout its requestTimeout only logs a warning and lets the call hang on.
 */
export const AWS_REQUEST_HANDLER = {
  connectionTimeout: 3000,
  requestTimeout: 5000,
  throwOnRequestTimeout: true,
} as const;

/** The SQS client's options. With an endpoint override (a local emulator), the SDK must not send to the queue URL's host. */
export function sqsClientConfig(endpointOverridden: boolean): SQSClientConfig {
  return { useQueueUrlAsEndpoint: !endpointOverridden, requestHandler: AWS_REQUEST_HANDLER };
}

export interface LazyLedger
  extends Pick<Ledger, "claim" | "onOutcome" | "recordQueued" | "recordNotSent" | "recordBatch"> {
  /** Failed and skipped writes so far (zeros until the ledger is loaded). */
  stats(): { failures: number; skipped: number };
  close(): void;
}

/**
 * The ledger (LEDGER_TABLE), loaded on its first use: lib/ledger.ts and the DynamoDB SDK are imported
 * only by containers that use it, so a container without one pays nothing at cold start. Like every
 * ledger call, a failed load on the worker's path means "proceed" and no record (the worker catches it).
 */
export function lazyLedger(
  tableName: string,
  logger: Logger,
  options: { client?: DynamoDBClient; maxAttempts?: number } = {},
): LazyLedger {
  let created: DynamoDBClient | undefined;
  let loaded: Ledger | undefined;
  let loading: Promise<Ledger> | undefined;
  const load = () =>
    (loading ??= Promise.all([import("@aws-sdk/client-dynamodb"), import("./ledger.ts")]).then(
      ([{ DynamoDBClient }, { createLedger }]) => {
        const maxAttempts = options.maxAttempts === undefined ? {} : { maxAttempts: options.maxAttempts };
        const client =
          options.client ?? (created = new DynamoDBClient({ requestHandler: AWS_REQUEST_HANDLER, ...maxAttempts }));
        return (loaded = createLedger({ client, tableName, logger }));
      },
    ));
  return {
    claim: async (...args) => (await load()).claim(...args),
    onOutcome: async (...args) => (await load()).onOutcome(...args),
    recordQueued: async (...args) => (await load()).recordQueued(...args),
    recordNotSent: async (...args) => (await load()).recordNotSent(...args),
    recordBatch: async (...args) => (await load()).recordBatch(...args),
    stats: () => loaded?.stats() ?? { failures: 0, skipped: 0 },
    close: () => created?.destroy(),
  };
}
