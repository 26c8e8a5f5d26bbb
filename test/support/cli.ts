/**
 * Helpers for the CLI tests: run `main(argv, io)` in-process with collected stdout/stderr, and a
 * fauxqs with the withdrawals queue and its DLQ (linked by a redrive policy, as in the real stack).
 */
import { CreateQueueCommand, SendMessageCommand, SQSClient, type Message } from "@aws-sdk/client-sqs";
import { buildApp } from "fauxqs";
import { randomUUID } from "node:crypto";
import type { AddressInfo } from "node:net";
import { deadLetterAttributes, type DeadLetter } from "../../lib/dead-letter.ts";
import { main, type CliIo } from "../../cli/main.ts";
import { drain } from "./sqs.ts";

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in-process. The environment is empty unless given, so the developer's AWS settings never leak in. */
export async function cli(argv: string[], io: Partial<CliIo> = {}): Promise<CliRun> {
  let stdout = "";
  let stderr = "";
  const code = await main(argv, {
    stdout: { write: (chunk: string) => (stdout += chunk) },
    stderr: { write: (chunk: string) => (stderr += chunk) },
    env: {},
    dlqWaitSeconds: 0,
    ...io,
  });
  return { code, stdout, stderr };
}

export interface Queues {
  sqs: SQSClient;
  endpoint: string;
  port: number;
  queueUrl: string;
  dlqUrl: string;
  /** `--queue-url X --dlq-url Y` for this fauxqs. */
  flags: string[];
  /** Receives and deletes every message now visible in `url`, with all attributes. */
  drain(url: string): Promise<Message[]>;
  /** Puts a dead letter in the DLQ the way the worker does (original body + the worker's attributes). */
  deadLetter(letter: Partial<DeadLetter> & { body: string }): Promise<string>;
  close(): Promise<void>;
}

export async function startQueues(): Promise<Queues> {
  const app = buildApp({ logger: false });
  await app.listen({ port: 0, host: "127.0.0.1" });
  const port = (app.server.address() as AddressInfo).port;
  const endpoint = `http://127.0.0.1:${port}`;
  const sqs = new SQSClient({
    endpoint,
    region: "eu-west-1",
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
  });
  const dlqUrl = (await sqs.send(new CreateQueueCommand({ QueueName: "withdrawals-dlq" }))).QueueUrl!;
  const queueUrl = (
    await sqs.send(
      new CreateQueueCommand({
        QueueName: "withdrawals",
        Attributes: {
          RedrivePolicy: JSON.stringify({
            deadLetterTargetArn: "arn:aws:sqs:eu-west-1:000000000000:withdrawals-dlq",
            maxReceiveCount: 8,
          }),
        },
      }),
    )
  ).QueueUrl!;
  return {
    sqs,
    endpoint,
    port,
    queueUrl,
    dlqUrl,
    flags: ["--queue-url", queueUrl, "--dlq-url", dlqUrl],
    drain: (url) => drain(sqs, url),
    async deadLetter(letter) {
      const full: DeadLetter = {
        reason: "not_found",
        // Each dead letter its own source message, as the worker writes them; a test of duplicate copies passes one.
        sourceMessageId: `src-${randomUUID()}`,
        certificateId: undefined,
        httpStatus: undefined,
        errorCode: undefined,
        errorMsg: undefined,
        attempts: 1,
        receiveCount: 1,
        failedAt: new Date(),
        ...letter,
      };
      const out = await sqs.send(
        new SendMessageCommand({
          QueueUrl: dlqUrl,
          MessageBody: full.body,
          MessageAttributes: deadLetterAttributes(full),
        }),
      );
      return out.MessageId!;
    },
    async close() {
      sqs.destroy();
      await app.close();
    },
  };
}

export { drain };

/** The JSON bodies of messages. */
export const bodies = (messages: Message[]) => messages.map((m) => JSON.parse(m.Body!) as Record<string, unknown>);
