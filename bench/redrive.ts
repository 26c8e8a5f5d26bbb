/**
 * Comparison 6: `scm-withdraw dlq redrive` with the ledger against without it, same run, same N
 * dead letters each time. The ledger records every job as requeued before its message is sent
 * back (issue 13: it used to cost 12× the rate). fauxqs and dynalite run in processes of their own,
 * as SQS and DynamoDB do not share the CLI's CPU; the CLI runs in-process through `main(argv, io)`.
 */
import { CreateQueueCommand, SendMessageBatchCommand, SQSClient } from "@aws-sdk/client-sqs";
import { main } from "../cli/main.ts";
import { deadLetterAttributes } from "../lib/dead-letter.ts";
import { buildWithdrawalBody } from "../lib/message.ts";
import { startDynamoServer } from "./dynamo-server.ts";
import { fixed, median, type Section } from "./report.ts";
import { startSqsServer } from "./sqs-server.ts";

export interface RedriveOptions {
  messages: number;
  rounds: number;
  /** Redrive rate with the ledger / without it must be at least this. */
  minRatio: number;
}

export const REDRIVE_DEFAULTS: RedriveOptions = { messages: 2000, rounds: 5, minRatio: 0.5 };

export async function benchRedrive(options: RedriveOptions = REDRIVE_DEFAULTS): Promise<Section> {
  const [sqsServer, dynamo] = await Promise.all([startSqsServer(), startDynamoServer()]);
  const sqs = new SQSClient({
    endpoint: sqsServer.endpoint,
    region: "eu-west-1",
    credentials: { accessKeyId: "bench", secretAccessKey: "bench" },
  });
  try {
    const rates = { without: [] as number[], with: [] as number[] };
    // Round 0 warms both paths up (the SDKs, the servers' first tables and connections) and is not counted.
    for (let round = 0; round <= options.rounds; round++) {
      // Alternating which goes first, so a drift in the machine's load favours neither.
      for (const mode of round % 2 === 0 ? (["without", "with"] as const) : (["with", "without"] as const)) {
        const tag = `r${round}${mode === "with" ? "l" : "n"}`;
        const count = round === 0 ? Math.min(200, options.messages) : options.messages;
        const queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: `redrive-${tag}` }))).QueueUrl!;
        const dlqUrl = (await sqs.send(new CreateQueueCommand({ QueueName: `redrive-${tag}-dlq` }))).QueueUrl!;
        await fillDlq(sqs, dlqUrl, tag, count);
        const env =
          mode === "with" ? { LEDGER_TABLE: dynamo.tableName, AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint } : {};
        const started = performance.now();
        const code = await main(
          [
            "dlq",
            "redrive",
            "--yes",
            "--queue-url",
            queueUrl,
            "--dlq-url",
            dlqUrl,
            "--endpoint-url",
            sqsServer.endpoint,
            "--json",
          ],
          {
            stdout: { write: () => true },
            stderr: { write: (text: string) => void process.stderr.write(text) },
            env,
            dlqWaitSeconds: 0,
          },
        );
        const seconds = (performance.now() - started) / 1000;
        if (code !== 0) throw new Error(`dlq redrive ${mode} the ledger exited ${code}`);
        if (round > 0) rates[mode].push(count / seconds);
      }
    }
    const without = median(rates.without);
    const withLedger = median(rates.with);
    const ratio = withLedger / without;
    return {
      title: "6. dlq redrive with the ledger",
      rows: [
        {
          comparison: "6 redrive",
          metric: `dlq redrive, ${options.messages.toLocaleString("en")} messages, with the ledger (msgs/s)`,
          value: fixed(withLedger, 0),
          baseline: `${fixed(without, 0)} without the ledger`,
          ratio: `${fixed(ratio, 2)}×`,
          target: `≥ ${options.minRatio}×`,
          pass: ratio >= options.minRatio,
        },
      ],
      notes: [
        `${options.messages.toLocaleString("en")} dead letters (the worker's attributes, bodies with a request_id) redriven by \`scm-withdraw dlq redrive\` through the CLI's entry, ${options.rounds} rounds each way after a warm-up round, alternating; medians. With the ledger each job is recorded as requeued before its message is sent back (per group of up to 100 messages: one BatchGetItem, then BatchWriteItem calls of 25).`,
        `Rates without the ledger: ${rates.without.map((r) => fixed(r, 0)).join(", ")} msgs/s; with it: ${rates.with.map((r) => fixed(r, 0)).join(", ")} msgs/s. fauxqs and dynalite each in a process of their own.`,
      ],
    };
  } finally {
    sqs.destroy();
    await Promise.all([sqsServer.close(), dynamo.close()]);
  }
}

async function fillDlq(sqs: SQSClient, dlqUrl: string, tag: string, count: number): Promise<void> {
  const entries = Array.from({ length: count }, (_, i) => {
    const certificateId = `rd${tag}${String(i).padStart(14 - tag.length, "0")}`;
    const body = buildWithdrawalBody({
      certificate_id: certificateId,
      source: "bulk",
      batch_id: `bench-${tag}`,
      request_id: `bench-${tag}:${certificateId}`,
    });
    const attributes = deadLetterAttributes({
      body,
      reason: "retries_exhausted",
      sourceMessageId: `m-${i}`,
      certificateId,
      httpStatus: 500,
      errorCode: "SCM.0500",
      errorMsg: "bench",
      attempts: 3,
      receiveCount: 1,
      failedAt: new Date(),
    });
    return { Id: String(i % 10), MessageBody: body, MessageAttributes: attributes };
  });
  const calls: Promise<unknown>[] = [];
  for (let i = 0; i < entries.length; i += 10) {
    calls.push(sqs.send(new SendMessageBatchCommand({ QueueUrl: dlqUrl, Entries: entries.slice(i, i + 10) })));
    if (calls.length >= 8) await Promise.all(calls.splice(0));
  }
  await Promise.all(calls);
}

if (process.argv.includes("--standalone")) {
  const section = await benchRedrive();
  console.log(JSON.stringify(section, null, 2));
}
