/**
 * The local services every comparison runs against, all on 127.0.0.1 in the bench process: fauxqs
 * (SQS: the withdrawals queue and the DLQ), the Secrets Manager endpoint, and one SCM simulator per
 * implementation under test (so each one's `stats.maxInFlight` and `connectionsOpened` are its own).
 */
import { CreateQueueCommand, SQSClient } from "@aws-sdk/client-sqs";
import { buildApp } from "fauxqs";
import type { AddressInfo } from "node:net";
import { startSecretsManagerServer, type SecretsManagerServer } from "../local/secrets-manager-server.ts";
import { startScmSimulator, type ScmSimulator, type ScmSimulatorOptions } from "../local/scm-simulator.ts";

/** The token the simulators accept. Not a secret: it opens nothing but the bench's own simulators. */
export const BENCH_TOKEN = "bench-token-0123456789abcdef0123456789abcdef";
export const SECRET_ID = "scm-withdraw/bench-token";
const REGION = "eu-west-1";

export interface BenchStack {
  sqs: SQSClient;
  sqsEndpoint: string;
  secrets: SecretsManagerServer;
  dlqUrl: string;
  /** Creates (or returns) a queue on fauxqs. */
  createQueue(name: string, attributes?: Record<string, string>): Promise<string>;
  /** Starts a simulator that accepts {@link BENCH_TOKEN}; closed with the stack. */
  startSim(options?: ScmSimulatorOptions): Promise<ScmSimulator>;
  /** The handler's environment (the same variables production uses) for a simulator. */
  handlerEnv(sim: ScmSimulator, extra?: Record<string, string>): Record<string, string>;
  close(): Promise<void>;
}

export async function startBenchStack(): Promise<BenchStack> {
  const fauxqs = buildApp({ logger: false });
  await fauxqs.listen({ port: 0, host: "127.0.0.1" });
  const sqsEndpoint = `http://127.0.0.1:${(fauxqs.server.address() as AddressInfo).port}`;
  const sqs = new SQSClient({
    endpoint: sqsEndpoint,
    region: REGION,
    credentials: { accessKeyId: "bench", secretAccessKey: "bench" },
  });
  const createQueue = async (name: string, attributes?: Record<string, string>) =>
    (await sqs.send(new CreateQueueCommand({ QueueName: name, ...(attributes ? { Attributes: attributes } : {}) })))
      .QueueUrl!;
  const dlqUrl = await createQueue("withdrawals-dlq");
  const secrets = await startSecretsManagerServer({ [SECRET_ID]: BENCH_TOKEN });
  const sims: ScmSimulator[] = [];

  return {
    sqs,
    sqsEndpoint,
    secrets,
    dlqUrl,
    createQueue,
    async startSim(options = {}) {
      const sim = await startScmSimulator({ tokens: [BENCH_TOKEN], ...options });
      sims.push(sim);
      return sim;
    },
    handlerEnv(sim, extra = {}) {
      return {
        SCM_ENDPOINT: sim.url,
        SCM_TOKEN_SECRET_ID: SECRET_ID,
        WITHDRAWAL_DLQ_URL: dlqUrl,
        AWS_ENDPOINT_URL_SQS: sqsEndpoint,
        AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url,
        AWS_REGION: REGION,
        AWS_ACCESS_KEY_ID: secrets.credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: secrets.credentials.secretAccessKey,
        ...extra,
      };
    },
    async close() {
      sqs.destroy();
      await Promise.all([...sims.map((s) => s.close()), secrets.close(), fauxqs.close()]);
    },
  };
}

/** `count` distinct valid certificate ids (16 characters [A-Za-z0-9]) starting with `tag`. */
export function certificateIds(tag: string, count: number): string[] {
  const prefix = tag.replace(/[^A-Za-z0-9]/g, "").slice(0, 8);
  return Array.from({ length: count }, (_, i) => `${prefix}${String(i).padStart(16 - prefix.length, "0")}`);
}

/** Adds `ids` to the simulator as applications under review (so cancel-cert answers 200). */
export function seedUnderReview(sim: ScmSimulator, ids: readonly string[]): void {
  for (const id of ids) sim.addCertificate({ id, status: "CHECKING" });
}
