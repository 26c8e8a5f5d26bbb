/** `scm-withdraw status`: how much work is waiting, in flight and dead-lettered. */
import { GetQueueAttributesCommand } from "@aws-sdk/client-sqs";
import { UsageError } from "../../lib/errors.ts";
import { EXIT, type Command, type CommandContext } from "../context.ts";
import { HEADS } from "./heads.ts";
import { formatTable, queueName } from "../output.ts";

interface Depth {
  queue: string;
  url: string;
  visible: number;
  in_flight: number;
  delayed: number;
}

export const statusCommand: Command = {
  ...HEADS.status,
  description: [
    "Shows SQS's approximate counts for both queues: visible (waiting to be processed, or in the DLQ",
    "waiting for triage), in flight (received by a worker or a scan, not yet deleted) and delayed.",
    "SQS updates these counts with a lag of up to a minute.",
  ].join("\n"),
  options: {},
  async run(context, { positionals }) {
    if (positionals.length > 0)
      throw new UsageError(`status takes no arguments (got ${JSON.stringify(positionals[0])})`, "status");
    const queue = await depth(context, context.target.queueUrl);
    const dlq = await depth(context, await context.dlqUrl());
    if (context.json) {
      context.printJson({ queue, dlq });
    } else {
      for (const line of formatTable(
        [queue, dlq],
        [
          { header: "queue", value: (d) => d.queue },
          { header: "visible", value: (d) => d.visible, align: "right" },
          { header: "in flight", value: (d) => d.in_flight, align: "right" },
          { header: "delayed", value: (d) => d.delayed, align: "right" },
          { header: "url", value: (d) => d.url },
        ],
      ))
        context.print(line);
    }
    return EXIT.ok;
  },
};

async function depth(context: CommandContext, url: string): Promise<Depth> {
  const { Attributes = {} } = await context.call(url, () =>
    context.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: url,
        AttributeNames: [
          "ApproximateNumberOfMessages",
          "ApproximateNumberOfMessagesNotVisible",
          "ApproximateNumberOfMessagesDelayed",
        ],
      }),
    ),
  );
  const n = (name: string) => Number(Attributes[name as keyof typeof Attributes] ?? 0);
  return {
    queue: queueName(url),
    url,
    visible: n("ApproximateNumberOfMessages"),
    in_flight: n("ApproximateNumberOfMessagesNotVisible"),
    delayed: n("ApproximateNumberOfMessagesDelayed"),
  };
}
