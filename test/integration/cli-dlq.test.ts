/**
 * `scm-withdraw dlq list` and `dlq redrive`, in-process against fauxqs, with dead letters carrying the
 * worker's attributes (`lib/dead-letter.ts`); and a redrive round trip through the real handler.
 */
import {
  ChangeMessageVisibilityBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
  type SendMessageBatchCommandInput,
} from "@aws-sdk/client-sqs";
import type { Context, SQSBatchResponse, SQSEvent } from "aws-lambda";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { DEMO } from "../../local/demo-certificates.ts";
import { seedDemoScenario } from "../../local/scm-simulator.ts";
import { cli, drain, startQueues, type Queues } from "../support/cli.ts";
import { lambdaContext, sqsEvent, sqsRecord } from "../support/lambda.ts";
import { attributesOf, startStack } from "../support/stack.ts";

let queues: Queues;
beforeAll(async () => {
  queues = await startQueues();
});
afterAll(async () => {
  await queues.close();
});

const id = (n: number) => `scs${String(n).padStart(13, "0")}`;

const ALICE = "arn:aws:iam::123456789012:user/alice";

/** Bodies as producers wrote them: odd spacing and non-ASCII must survive a redrive byte for byte. */
const SEEDED = {
  notFound: [1, 2, 3, 4].map(
    (n) => `{"certificate_id": "${id(n)}",  "reason":"kündigung ✓", "source":"bulk", "requested_by":"${ALICE}"}`,
  ),
  rejected: [5, 6].map((n) => JSON.stringify({ certificate_id: id(n), source: "manual" })),
  invalid: "withdraw scs1000000000001 please",
  unlabelled: JSON.stringify({ certificate_id: id(8) }),
};

async function seedDlq() {
  await queues.drain(queues.dlqUrl);
  await queues.drain(queues.queueUrl);
  for (const [i, body] of SEEDED.notFound.entries())
    await queues.deadLetter({
      body,
      reason: "not_found",
      httpStatus: 404,
      errorCode: "SCM.0020",
      certificateId: id(i + 1),
    });
  for (const [i, body] of SEEDED.rejected.entries())
    await queues.deadLetter({
      body,
      reason: "rejected",
      httpStatus: 400,
      errorCode: "SCM.0010",
      certificateId: id(i + 5),
    });
  await queues.deadLetter({ body: SEEDED.invalid, reason: "invalid_message", errorMsg: "body is not JSON" });
  // What SQS's own redrive policy moves: the original message, none of the worker's attributes.
  await queues.sqs.send(new SendMessageCommand({ QueueUrl: queues.dlqUrl, MessageBody: SEEDED.unlabelled }));
}

async function depth(url: string) {
  const { Attributes = {} } = await queues.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    }),
  );
  return {
    visible: Number(Attributes.ApproximateNumberOfMessages),
    inFlight: Number(Attributes.ApproximateNumberOfMessagesNotVisible),
  };
}

describe("dlq list", () => {
  beforeAll(seedDlq);

  it("counts by failure_reason and error_code with up to 3 sample ids, and leaves every message visible", async () => {
    const run = await cli(["dlq", "list", "--json", ...queues.flags]);
    expect(run.code).toBe(0);
    const out = JSON.parse(run.stdout);
    expect(out).toMatchObject({ dlq_url: queues.dlqUrl, scanned: 8, matching: 8, stopped_at_max: false });
    expect(out.groups).toEqual([
      // Who asked and why come from each body: older producers' jobs have no requested_by ("unknown").
      {
        failure_reason: "not_found",
        error_code: "SCM.0020",
        count: 4,
        sample_certificate_ids: expect.any(Array),
        requested_by: { [ALICE]: 4 },
        sample_reasons: ["kündigung ✓"],
      },
      {
        failure_reason: "rejected",
        error_code: "SCM.0010",
        count: 2,
        sample_certificate_ids: expect.arrayContaining([id(5), id(6)]),
        requested_by: { unknown: 2 },
        sample_reasons: [],
      },
      {
        failure_reason: "invalid_message",
        error_code: null,
        count: 1,
        sample_certificate_ids: [],
        requested_by: { unknown: 1 },
        sample_reasons: [],
      },
      {
        failure_reason: "unlabelled",
        error_code: null,
        count: 1,
        sample_certificate_ids: [id(8)],
        requested_by: { unknown: 1 },
        sample_reasons: [],
      },
    ]);
    const samples = out.groups[0].sample_certificate_ids as string[];
    expect(samples).toHaveLength(3);
    for (const s of samples) expect([id(1), id(2), id(3), id(4)]).toContain(s);
    // Visible again at once: nothing in flight, so a redrive right after sees everything.
    expect(await depth(queues.dlqUrl)).toEqual({ visible: 8, inFlight: 0 });
  });

  it("shows the same counts when run again", async () => {
    const first = await cli(["dlq", "list", ...queues.flags]);
    const second = await cli(["dlq", "list", ...queues.flags]);
    expect(first.code).toBe(0);
    const counts = (text: string) => text.split("\n").map((l) => l.replace(/\s{2,}scs.*$/, ""));
    expect(counts(second.stdout)).toEqual(counts(first.stdout));
    expect(first.stdout).toMatch(/^withdrawals-dlq: 8 messages \(all left in the queue\)\n/);
    expect(first.stdout).toMatch(
      /\nfailure_reason\s+error_code\s+count\s+sample certificate ids\s+requested by\s+sample reasons\n/,
    );
    expect(first.stdout).toContain(`${ALICE} (4)  "kündigung ✓"`);
    expect(first.stdout).toMatch(/\nnot_found\s+SCM\.0020\s+4\s+scs/);
    expect(first.stdout).toMatch(/\ninvalid_message\s+-\s+1\s+unknown \(1\)\n/);
    expect(first.stdout).toMatch(/\ntotal\s+8\n/);
    expect(await depth(queues.dlqUrl)).toEqual({ visible: 8, inFlight: 0 });
  });

  it("filters by --reason and stops at --max", async () => {
    const filtered = JSON.parse(
      (await cli(["dlq", "list", "--reason", "rejected,invalid_message", "--json", ...queues.flags])).stdout,
    );
    expect(filtered.groups.map((g: { failure_reason: string; count: number }) => [g.failure_reason, g.count])).toEqual([
      ["rejected", 2],
      ["invalid_message", 1],
    ]);
    const capped = JSON.parse((await cli(["dlq", "list", "--max", "3", "--json", ...queues.flags])).stdout);
    expect(capped.matching).toBe(3);
    expect(capped.stopped_at_max).toBe(true);
    expect(await depth(queues.dlqUrl)).toEqual({ visible: 8, inFlight: 0 });
  });

  it("shows progress on a terminal while it scans, and clears it before the result", async () => {
    // A slow DLQ: 150 ms per receive, 2 messages each, so the scan takes long enough to draw.
    const createSqsClient = (config: ConstructorParameters<typeof SQSClient>[0]) => {
      const sqs = new SQSClient(config!);
      sqs.middlewareStack.add(
        (next, context) => async (args) => {
          if (context.commandName === "ReceiveMessageCommand") {
            await new Promise((r) => setTimeout(r, 150));
            (args.input as { MaxNumberOfMessages?: number }).MaxNumberOfMessages = 2;
          }
          return next(args);
        },
        { step: "initialize", name: "slowReceives" },
      );
      return sqs;
    };
    let stderr = "";
    const run = await cli(["dlq", "list", ...queues.flags], {
      createSqsClient,
      stderr: { write: (c: string) => (stderr += c), isTTY: true },
    });
    expect(run.code).toBe(0);
    expect(stderr).toMatch(/\r\x1b\[K\[#*-*\] +\d+% \d+ read/);
    expect(stderr.endsWith("\r\x1b[K")).toBe(true);
    expect(await depth(queues.dlqUrl)).toEqual({ visible: 8, inFlight: 0 });
  });

  it("says when the DLQ is empty", async () => {
    const empty = await startQueues();
    const run = await cli(["dlq", "list", ...empty.flags]);
    await empty.close();
    expect(run).toEqual({ code: 0, stdout: "withdrawals-dlq is empty\n", stderr: "" });
  });
});

describe("dlq redrive", () => {
  beforeEach(seedDlq);

  it("moves only the matching reason, original bodies byte for byte and without the DLQ attributes", async () => {
    const run = await cli(["dlq", "redrive", "--yes", "--reason", "not_found", ...queues.flags]);
    expect(run.code).toBe(0);
    expect(run.stderr).toBe("");
    expect(run.stdout).toMatch(
      /^moved 4 messages from withdrawals-dlq to withdrawals:\nfailure_reason\s+moved\nnot_found\s+4\nleft in withdrawals-dlq: 4 not matching --reason not_found\n$/,
    );
    const moved = await drain(queues.sqs, queues.queueUrl);
    expect(moved.map((m) => m.Body).sort()).toEqual([...SEEDED.notFound].sort());
    for (const m of moved) expect(m.MessageAttributes).toBeUndefined();
    // The rest stays in the DLQ, visible at once, with its attributes.
    expect(await depth(queues.dlqUrl)).toEqual({ visible: 4, inFlight: 0 });
    const left = await queues.drain(queues.dlqUrl);
    expect(left.map((m) => attributesOf(m).failure_reason ?? "unlabelled").sort()).toEqual([
      "invalid_message",
      "rejected",
      "rejected",
      "unlabelled",
    ]);
  });

  it("moves every reason but invalid_message without --reason, and reports the new message ids with --json", async () => {
    const run = await cli(["dlq", "redrive", "--yes", "--json", ...queues.flags]);
    expect(run.code).toBe(0);
    const out = JSON.parse(run.stdout);
    expect(out).toMatchObject({
      moved: 7,
      by_reason: { not_found: 4, rejected: 2, unlabelled: 1 },
      failed: [],
      not_matching: 1,
      not_matching_by_reason: { invalid_message: 1 },
    });
    const moved = await drain(queues.sqs, queues.queueUrl);
    expect(moved.map((m) => m.MessageId).sort()).toEqual(
      out.messages.map((m: { message_id: string }) => m.message_id).sort(),
    );
    expect(moved.map((m) => m.Body).sort()).toEqual([...SEEDED.notFound, ...SEEDED.rejected, SEEDED.unlabelled].sort());
    expect(await depth(queues.dlqUrl)).toEqual({ visible: 1, inFlight: 0 });
    const text = await cli(["dlq", "redrive", "--yes", ...queues.flags]);
    expect(text.stdout).toBe(
      "moved 0 messages from withdrawals-dlq to withdrawals\nleft in withdrawals-dlq: 1 invalid_message (moved only when named: --reason invalid_message)\n",
    );
  });

  it("moves invalid_message when it is named", async () => {
    const run = await cli(["dlq", "redrive", "--yes", "--reason", "invalid_message", "--json", ...queues.flags]);
    expect(JSON.parse(run.stdout)).toMatchObject({ moved: 1, by_reason: { invalid_message: 1 } });
    expect((await drain(queues.sqs, queues.queueUrl)).map((m) => m.Body)).toEqual([SEEDED.invalid]);
  });

  it("refuses without a terminal and without --yes, touching nothing", async () => {
    const run = await cli(["dlq", "redrive", ...queues.flags]);
    expect(run).toEqual({
      code: 2,
      stdout: "",
      stderr:
        "scm-withdraw: error: dlq redrive moves messages back to the withdrawals queue (--dry-run shows which): pass --yes to confirm (there is no terminal to ask on) (see `scm-withdraw dlq redrive --help`)\n",
    });
    expect(await depth(queues.dlqUrl)).toEqual({ visible: 8, inFlight: 0 });
  });

  it("on a terminal, shows the counts by reason and asks; no moves nothing, yes moves what was shown", async () => {
    const questions: string[] = [];
    const answer = (reply: string) => async (question: string) => {
      questions.push(question);
      return reply;
    };
    const declined = await cli(["dlq", "redrive", ...queues.flags], { ask: answer("n") });
    expect(declined.code).toBe(1);
    expect(declined.stderr).toMatch(
      /^failure_reason\s+to move\nnot_found\s+4\nrejected\s+2\nunlabelled\s+1\nnot confirmed: nothing was moved\n$/,
    );
    expect(questions).toEqual(["move 7 messages from withdrawals-dlq to withdrawals? [y/N] "]);
    expect(await depth(queues.dlqUrl)).toEqual({ visible: 8, inFlight: 0 });

    const accepted = await cli(["dlq", "redrive", "--reason", "rejected", ...queues.flags], { ask: answer("yes") });
    expect(accepted.code).toBe(0);
    expect(accepted.stdout).toMatch(/^moved 2 messages/);
    expect(questions[1]).toBe("move 2 messages from withdrawals-dlq to withdrawals? [y/N] ");
    expect(await depth(queues.queueUrl)).toEqual({ visible: 2, inFlight: 0 });
  });

  it("--max moves at most N; --dry-run moves nothing", async () => {
    const dry = await cli(["dlq", "redrive", "--reason", "rejected", "--dry-run", ...queues.flags]);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(
      /^dry run: would move 2 messages from withdrawals-dlq to withdrawals:\nfailure_reason\s+would move\nrejected\s+2\n/,
    );
    expect(await depth(queues.queueUrl)).toEqual({ visible: 0, inFlight: 0 });
    expect(await depth(queues.dlqUrl)).toEqual({ visible: 8, inFlight: 0 });

    const capped = await cli([
      "dlq",
      "redrive",
      "--yes",
      "--reason",
      "not_found",
      "--max",
      "3",
      "--json",
      ...queues.flags,
    ]);
    expect(JSON.parse(capped.stdout)).toMatchObject({ moved: 3, stopped_at_max: true });
    expect(await depth(queues.queueUrl)).toEqual({ visible: 3, inFlight: 0 });
    expect(await depth(queues.dlqUrl)).toEqual({ visible: 5, inFlight: 0 });
  });

  it("deletes nothing from the DLQ when the send to the queue fails", async () => {
    const createSqsClient = (config: ConstructorParameters<typeof SQSClient>[0]) => {
      const sqs = new SQSClient(config!);
      sqs.middlewareStack.add(
        (next, context) => async (args) => {
          if (context.commandName === "SendMessageBatchCommand")
            throw Object.assign(new Error("send refused"), { name: "ServiceUnavailable" });
          return next(args);
        },
        { step: "initialize", name: "failSends" },
      );
      return sqs;
    };
    const run = await cli(["dlq", "redrive", "--yes", "--reason", "rejected", ...queues.flags], { createSqsClient });
    expect(run.code).toBe(1);
    const lines = run.stderr.trim().split("\n");
    expect(lines).toHaveLength(2);
    for (const line of lines)
      expect(line).toMatch(
        /^not moved: scs000000000000[56] \(DLQ message [\w-]+, rejected\): ServiceUnavailable: send refused; it stays in withdrawals-dlq$/,
      );
    expect(run.stdout).toContain("moved 0 messages");
    expect(run.stdout).toContain("failed: 2");
    expect(await depth(queues.queueUrl)).toEqual({ visible: 0, inFlight: 0 });
    expect(await depth(queues.dlqUrl)).toEqual({ visible: 8, inFlight: 0 });
  });

  it("does not loop when redriven jobs are dead-lettered again while it runs", async () => {
    // As if the worker failed every redriven job again at once: each send to the queue puts a new dead letter in the DLQ.
    const createSqsClient = (config: ConstructorParameters<typeof SQSClient>[0]) => {
      const sqs = new SQSClient(config!);
      sqs.middlewareStack.add(
        (next, context) => async (args) => {
          const result = await next(args);
          if (context.commandName === "SendMessageBatchCommand") {
            for (const entry of (args.input as SendMessageBatchCommandInput).Entries!) {
              await queues.deadLetter({ body: entry.MessageBody!, reason: "not_found", errorCode: "SCM.0020" });
            }
          }
          return result;
        },
        { step: "initialize", name: "failAgain" },
      );
      return sqs;
    };
    const run = await cli(["dlq", "redrive", "--yes", "--reason", "not_found", "--json", ...queues.flags], {
      createSqsClient,
    });
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ moved: 4, arrived_during_run: 4, not_matching: 4 });
    expect(await depth(queues.queueUrl)).toEqual({ visible: 4, inFlight: 0 });
    // 8 seeded - 4 moved + 4 dead-lettered again, all visible for the next run.
    expect(await depth(queues.dlqUrl)).toEqual({ visible: 8, inFlight: 0 });
  });

  it("touches nothing when the withdrawals queue does not exist", async () => {
    const run = await cli([
      "dlq",
      "redrive",
      "--yes",
      "--queue-url",
      queues.queueUrl.replace(/withdrawals$/, "withdrawalz"),
      "--dlq-url",
      queues.dlqUrl,
    ]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /^scm-withdraw: error: no queue http:\/\/sqs\.eu-west-1\.localhost:\d+\/000000000000\/withdrawalz on /,
    );
    expect(await depth(queues.dlqUrl)).toEqual({ visible: 8, inFlight: 0 });
  });
});

describe("duplicate DLQ copies and other readers", () => {
  /** Two jobs, each dead-lettered twice (a worker killed between the DLQ send and the delete), and one single. */
  async function seedCopies() {
    await queues.drain(queues.dlqUrl);
    await queues.drain(queues.queueUrl);
    for (const n of [1, 2]) {
      const body = JSON.stringify({ certificate_id: id(20 + n) });
      for (let copy = 0; copy < 2; copy++)
        await queues.deadLetter({
          body,
          reason: "retries_exhausted",
          certificateId: id(20 + n),
          sourceMessageId: `src-copy-${n}`,
        });
    }
    await queues.deadLetter({
      body: JSON.stringify({ certificate_id: id(23) }),
      reason: "retries_exhausted",
      certificateId: id(23),
    });
  }

  it("dlq list counts each source_message_id once and says how many copies it saw", async () => {
    await seedCopies();
    const run = await cli(["dlq", "list", "--json", ...queues.flags]);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({
      scanned: 3,
      matching: 3,
      duplicate_copies: 2,
      groups: [{ failure_reason: "retries_exhausted", count: 3 }],
    });
    const text = await cli(["dlq", "list", ...queues.flags]);
    expect(text.stdout).toContain("2 duplicate copies of these (same source_message_id): counted once\n");
    expect(await depth(queues.dlqUrl)).toEqual({ visible: 5, inFlight: 0 });
  });

  it("dlq redrive sends each job once and deletes its extra copies", async () => {
    await seedCopies();
    const run = await cli(["dlq", "redrive", "--yes", "--json", ...queues.flags]);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({
      moved: 3,
      duplicate_copies: { deleted: 2, left: 0 },
      complete: true,
    });
    const sent = await drain(queues.sqs, queues.queueUrl);
    expect(sent.map((m) => JSON.parse(m.Body!).certificate_id).sort()).toEqual([id(21), id(22), id(23)]);
    expect(await depth(queues.dlqUrl)).toEqual({ visible: 0, inFlight: 0 });
  });

  it("reports messages another reader holds, and a redrive that could not see them all exits 1", async () => {
    await seedDlq();
    // Another reader (a second redrive, a list) holds 3 of the 8 messages while this one runs.
    const other = await queues.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queues.dlqUrl, MaxNumberOfMessages: 3, VisibilityTimeout: 60 }),
    );
    expect(other.Messages).toHaveLength(3);
    const listed = await cli(["dlq", "list", "--json", ...queues.flags]);
    expect(JSON.parse(listed.stdout)).toMatchObject({ scanned: 5, in_flight_elsewhere: 3 });
    expect(listed.stderr).toBe(
      "withdrawals-dlq: not everything was seen (3 messages were in flight elsewhere): another reader (dlq list, dlq redrive) holds them; run again when it is done\n",
    );

    const run = await cli([
      "dlq",
      "redrive",
      "--yes",
      "--reason",
      "not_found,rejected,invalid_message,unlabelled",
      "--json",
      ...queues.flags,
    ]);
    expect(run.code).toBe(1);
    expect(JSON.parse(run.stdout)).toMatchObject({ moved: 5, in_flight_elsewhere: 3, complete: false });
    expect(run.stderr).toContain("3 messages were in flight elsewhere");
    await queues.sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: queues.dlqUrl,
        Entries: other.Messages!.map((m, i) => ({
          Id: String(i),
          ReceiptHandle: m.ReceiptHandle!,
          VisibilityTimeout: 0,
        })),
      }),
    );
    expect(await depth(queues.dlqUrl)).toEqual({ visible: 3, inFlight: 0 });
  });
});

describe("a redrive round trip through the real handler", () => {
  type Handler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;

  it("dead-letters a job while SCM fails, redrives it once SCM is fixed, and the job is then withdrawn", async () => {
    const stack = await startStack();
    const savedEnv = { ...process.env };
    try {
      seedDemoScenario(stack.sim);
      process.env = { ...savedEnv, ...stack.env };
      vi.resetModules();
      const handler = (await import("../../handlers/withdraw.ts")).handler as unknown as Handler;
      const flags = ["--queue-url", stack.queueUrl, "--dlq-url", stack.dlqUrl];

      // SCM answers 500 every time and this is the last receive: the worker dead-letters it.
      const body = JSON.stringify({ certificate_id: DEMO.alwaysFailing, source: "bulk", batch_id: "b-round-trip" });
      expect(
        (await handler(sqsEvent(sqsRecord(body, { receiveCount: 5 })), lambdaContext())).batchItemFailures,
      ).toEqual([]);
      const listed = JSON.parse((await cli(["dlq", "list", "--json", ...flags])).stdout);
      expect(listed.groups).toEqual([
        {
          failure_reason: "retries_exhausted",
          error_code: "SCM.0500",
          count: 1,
          sample_certificate_ids: [DEMO.alwaysFailing],
          requested_by: { unknown: 1 },
          sample_reasons: [],
        },
      ]);

      // The outage is over: redrive that reason, then the worker gets the job again.
      stack.sim.clearFaults();
      const redrive = await cli(["dlq", "redrive", "--yes", "--reason", "retries_exhausted", ...flags]);
      expect(redrive.code).toBe(0);
      const [requeued, ...rest] = await drain(stack.sqs, stack.queueUrl);
      expect(rest).toEqual([]);
      expect(requeued!.Body).toBe(body);
      expect(
        (await handler(sqsEvent(sqsRecord(requeued!.Body!, { messageId: requeued!.MessageId! })), lambdaContext()))
          .batchItemFailures,
      ).toEqual([]);
      expect(stack.sim.withdrawals(DEMO.alwaysFailing)).toBe(1);
      expect(await stack.drainDlq()).toEqual([]);
    } finally {
      process.env = savedEnv;
      await stack.close();
    }
  });
});
