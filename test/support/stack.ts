/**
 * The local stack for integration tests: fauxqs (SQS) and the Secrets Manager endpoint on
 * 127.0.0.1, the SCM simulator, and the environment the real handler reads.
 */
import { CreateQueueCommand, SQSClient, type Message } from "@aws-sdk/client-sqs";
import { buildApp } from "fauxqs";
import type { AddressInfo } from "node:net";
import { startSecretsManagerServer, type SecretsManagerServer } from "../../local/secrets-manager-server.ts";
import { startScmSimulator, type ScmSimulator, type ScmSimulatorOptions } from "../../local/scm-simulator.ts";
import { TEST_TOKEN } from "./secrets.ts";
import { drain } from "./sqs.ts";

export const SECRET_ID = "scm-withdraw/token";

export interface Stack {
  sim: ScmSimulator;
  secrets: SecretsManagerServer;
  sqs: SQSClient;
  sqsEndpoint: string;
  queueUrl: string;
  dlqUrl: string;
  /** The environment the handler is configured with (docs/configuration.md variables and the SDK's own). */
  env: Record<string, string>;
  /** Receives (and deletes) every message now in the DLQ, with all attributes. */
  drainDlq(): Promise<Message[]>;
  close(): Promise<void>;
}

export async function startStack(
  options: { simulator?: ScmSimulatorOptions; env?: Record<string, string> } = {},
): Promise<Stack> {
  const fauxqs = buildApp({ logger: false });
  await fauxqs.listen({ port: 0, host: "127.0.0.1" });
  const sqsEndpoint = `http://127.0.0.1:${(fauxqs.server.address() as AddressInfo).port}`;
  const sqs = new SQSClient({
    endpoint: sqsEndpoint,
    region: "eu-west-1",
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
  });
  const dlqUrl = (await sqs.send(new CreateQueueCommand({ QueueName: "withdrawals-dlq" }))).QueueUrl!;
  const queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: "withdrawals" }))).QueueUrl!;
  const sim = await startScmSimulator({ tokens: [TEST_TOKEN], ...options.simulator });
  const secrets = await startSecretsManagerServer({ [SECRET_ID]: TEST_TOKEN });

  const env = {
    SCM_ENDPOINT: sim.url,
    SCM_TOKEN_SECRET_ID: SECRET_ID,
    WITHDRAWAL_DLQ_URL: dlqUrl,
    AWS_ENDPOINT_URL_SQS: sqsEndpoint,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url,
    AWS_REGION: "eu-west-1",
    AWS_ACCESS_KEY_ID: secrets.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: secrets.credentials.secretAccessKey,
    RETRY_BASE_DELAY_MS: "5",
    RETRY_MAX_DELAY_MS: "20",
    SCM_TIMEOUT_MS: "300",
    ...options.env,
  };

  return {
    sim,
    secrets,
    sqs,
    sqsEndpoint,
    queueUrl,
    dlqUrl,
    env,
    drainDlq: () => drain(sqs, dlqUrl),
    async close() {
      sqs.destroy();
      await Promise.all([sim.close(), secrets.close(), fauxqs.close()]);
    },
  };
}

/** Attribute values of a DLQ message as plain strings. */
export function attributesOf(message: Message): Record<string, string> {
  return Object.fromEntries(Object.entries(message.MessageAttributes ?? {}).map(([k, v]) => [k, v.StringValue ?? ""]));
}
