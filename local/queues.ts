/**
 * The embedded SQS of the local runs (`pipeline.ts`, `chaos.ts`): fauxqs on 127.0.0.1 with the
 * withdrawals queue and its DLQ, the queue's redrive policy pointing at the DLQ as deployed, and
 * fauxqs's inspection endpoint to count and read messages without receiving them (a receive would
 * change their visibility and receive count).
 *
 * ```ts
 * const queues = await startLocalQueues({ port: 0, visibilityTimeoutSeconds: 2, redriveMaxReceiveCount: 5 });
 * await queues.sqs.send(new SendMessageCommand({ QueueUrl: queues.queueUrl, MessageBody: "..." }));
 * const { queue, dlq } = await queues.counts();
 * await queues.close();
 * ```
 *
 * @module
 */
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from "@aws-sdk/client-sqs";
import { buildApp } from "fauxqs";
import type { AddressInfo } from "node:net";
import { LOCAL } from "../cli/local-defaults.ts";

export interface LocalQueuesOptions {
  /** On 127.0.0.1; 0 (the default) picks a free one. A taken port rejects with the listen error (EADDRINUSE). */
  port?: number;
  region?: string;
  /** The withdrawals queue's visibility timeout, seconds. */
  visibilityTimeoutSeconds: number;
  /** The redrive policy's `maxReceiveCount`: the queue moves a message to the DLQ on this receive. */
  redriveMaxReceiveCount: number;
}

/** The DLQ key for messages the queue's redrive policy moved there: they carry no `failure_reason` (the worker never decided). */
export const REDRIVE_POLICY_REASON = "redrive_policy";

/** Why a DLQ message is there: the worker's `failure_reason` attribute, or {@link REDRIVE_POLICY_REASON}. */
export const deadLetterReason = (message: InspectedMessage): string =>
  message.messageAttributes?.failure_reason?.StringValue ?? REDRIVE_POLICY_REASON;

/** A message as fauxqs shows it, without receiving it. */
export interface InspectedMessage {
  messageId: string;
  body: string;
  approximateReceiveCount: number;
  messageAttributes?: Record<string, { DataType: string; StringValue?: string }>;
}

/** Messages of one queue, by where they stand. */
export interface QueueCounts {
  /** Visible, or delayed: waiting to be received. */
  waiting: number;
  /** Received and not deleted: being processed, or failed and waiting out the visibility timeout. */
  inFlight: number;
}

export interface LocalQueues {
  /** `http://127.0.0.1:PORT`: the value for AWS_ENDPOINT_URL_SQS. */
  readonly endpoint: string;
  readonly region: string;
  readonly queueUrl: string;
  readonly queueArn: string;
  readonly dlqUrl: string;
  /** A client for the endpoint (placeholder credentials), destroyed by `close()`. */
  readonly sqs: SQSClient;
  /** A new client for the endpoint, for a caller that destroys (or tampers with) its own. */
  client(): SQSClient;
  /** Both queues' counts, without reading their messages (cheap enough for a live progress line). */
  counts(): Promise<{ queue: QueueCounts; dlq: QueueCounts }>;
  /** Every message of the queue or the DLQ: waiting, delayed and in flight. */
  messages(which: "queue" | "dlq"): Promise<InspectedMessage[]>;
  close(): Promise<void>;
}

export async function startLocalQueues(options: LocalQueuesOptions): Promise<LocalQueues> {
  const region = options.region ?? LOCAL.region;
  const app = buildApp({ logger: false, defaultRegion: region });
  try {
    await app.listen({ port: options.port ?? 0, host: LOCAL.host });
  } catch (error) {
    await app.close().catch(() => {});
    throw error;
  }
  const endpoint = `http://${LOCAL.host}:${(app.server.address() as AddressInfo).port}`;
  // fauxqs's queue URLs name sqs.<region>.localhost, which may not resolve: the explicit endpoint wins.
  const client = () =>
    new SQSClient({ endpoint, region, credentials: { accessKeyId: "local", secretAccessKey: "local" } });
  const sqs = client();
  const close = async () => {
    sqs.destroy();
    await app.close();
  };

  try {
    const dlqUrl = (
      await sqs.send(
        new CreateQueueCommand({ QueueName: LOCAL.dlqName, Attributes: { MessageRetentionPeriod: "1209600" } }),
      )
    ).QueueUrl!;
    const queueUrl = (
      await sqs.send(
        new CreateQueueCommand({
          QueueName: LOCAL.queueName,
          Attributes: {
            VisibilityTimeout: String(options.visibilityTimeoutSeconds),
            RedrivePolicy: JSON.stringify({
              deadLetterTargetArn: await queueArnOf(sqs, dlqUrl),
              maxReceiveCount: options.redriveMaxReceiveCount,
            }),
          },
        }),
      )
    ).QueueUrl!;
    const queueArn = await queueArnOf(sqs, queueUrl);
    const nameOf = { queue: LOCAL.queueName, dlq: LOCAL.dlqName } as const;

    return {
      endpoint,
      region,
      queueUrl,
      queueArn,
      dlqUrl,
      sqs,
      client,
      async counts() {
        const response = await app.inject({ method: "GET", url: "/_fauxqs/queues" });
        const queues = response.json() as {
          name: string;
          approximateMessageCount: number;
          approximateInflightCount: number;
          approximateDelayedCount: number;
        }[];
        const countsOf = (name: string): QueueCounts => {
          const q = queues.find((entry) => entry.name === name);
          return q
            ? { waiting: q.approximateMessageCount + q.approximateDelayedCount, inFlight: q.approximateInflightCount }
            : { waiting: 0, inFlight: 0 };
        };
        return { queue: countsOf(LOCAL.queueName), dlq: countsOf(LOCAL.dlqName) };
      },
      async messages(which) {
        const name = nameOf[which];
        const response = await app.inject({ method: "GET", url: `/_fauxqs/queues/${encodeURIComponent(name)}` });
        if (response.statusCode !== 200)
          throw new Error(`fauxqs: cannot inspect queue ${name} (HTTP ${response.statusCode})`);
        const { messages } = response.json() as {
          messages: {
            ready: InspectedMessage[];
            delayed: InspectedMessage[];
            inflight: { message: InspectedMessage; visibilityDeadline: number }[];
          };
        };
        return [...messages.ready, ...messages.delayed, ...messages.inflight.map((entry) => entry.message)];
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

async function queueArnOf(sqs: SQSClient, queueUrl: string): Promise<string> {
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["QueueArn"] }),
  );
  return Attributes!.QueueArn!;
}
