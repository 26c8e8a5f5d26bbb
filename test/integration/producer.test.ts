/**
 * `lib/producer.ts` against fauxqs over HTTP: batching by 10 and by size, several calls in flight
 * (and no more), per-entry failures reported with SQS's error, and retries of only the entries a
 * batch reports as failed.
 */
import { SQSClient, type SendMessageBatchCommandInput, type SendMessageBatchCommandOutput } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { buildWithdrawalBody } from "../../lib/message.ts";
import { createSender, sendWithRetries, type OutgoingMessage, type SendResult } from "../../lib/producer.ts";
import { bodies, startQueues, type Queues } from "../support/cli.ts";

let queues: Queues;
beforeAll(async () => {
  queues = await startQueues();
});
afterAll(async () => {
  await queues.close();
});
beforeEach(async () => {
  await queues.drain(queues.queueUrl);
});

const id = (n: number) => `scs${String(n).padStart(13, "0")}`;
const job = (n: number, extra: Record<string, unknown> = {}): OutgoingMessage<number> => ({
  key: n,
  body: buildWithdrawalBody({ certificate_id: id(n), source: "bulk", ...extra }),
});

/** A real SQS client for this fauxqs that records each SendMessageBatch call's entry ids and lets a test rewrite calls. */
function observedClient(
  options: { intercept?: (input: SendMessageBatchCommandInput, call: number) => { drop: string[] } } = {},
) {
  const sqs = new SQSClient({
    endpoint: queues.endpoint,
    region: "eu-west-1",
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
  });
  const calls: string[][] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  sqs.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== "SendMessageBatchCommand") return next(args);
      const input = args.input as SendMessageBatchCommandInput;
      const call = calls.push(input.Entries!.map((e) => JSON.parse(e.MessageBody!).certificate_id as string)) - 1;
      // Simulates SQS answering "failed" for some entries (a server-side fault): they are not sent this time.
      const drop = options.intercept?.(input, call).drop ?? [];
      const dropped = input.Entries!.filter((e) => drop.includes(JSON.parse(e.MessageBody!).certificate_id));
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      try {
        const kept = input.Entries!.filter((e) => !dropped.includes(e));
        // SQS refuses an empty batch: when every entry is dropped, answer without calling it.
        const result =
          kept.length > 0
            ? await next({ ...args, input: { ...input, Entries: kept } })
            : { output: { Successful: [], $metadata: {} }, response: {} };
        const output = result.output as SendMessageBatchCommandOutput;
        output.Failed = [
          ...(output.Failed ?? []),
          ...dropped.map((e) => ({
            Id: e.Id!,
            SenderFault: false,
            Code: "InternalError",
            Message: "injected server-side failure",
          })),
        ];
        return result as Awaited<ReturnType<typeof next>>;
      } finally {
        inFlight--;
      }
    },
    { step: "initialize", name: "observeBatches" },
  );
  return { sqs, calls, maxInFlight: () => maxInFlight };
}

async function sendAll(
  sqs: SQSClient,
  messages: OutgoingMessage<number>[],
  options: { concurrency?: number; maxRetries?: number } = {},
) {
  const results: SendResult<number>[] = [];
  const sender = createSender<number>({ sqs, queueUrl: queues.queueUrl, onResult: (r) => results.push(r), ...options });
  for (const message of messages) await sender.push(message);
  await sender.flush();
  return results.sort((a, b) => a.key - b.key);
}

describe("createSender", () => {
  it("sends 25 messages in calls of at most 10 and reports each one's message id", async () => {
    const { sqs, calls } = observedClient();
    const results = await sendAll(
      sqs,
      Array.from({ length: 25 }, (_, i) => job(i + 1)),
    );
    expect(calls.map((c) => c.length).sort((a, b) => b - a)).toEqual([10, 10, 5]);
    expect(results.map((r) => r.key)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    expect(results.every((r) => r.ok)).toBe(true);
    const received = await queues.drain(queues.queueUrl);
    expect(received.map((m) => m.MessageId).sort()).toEqual(results.map((r) => (r.ok ? r.messageId : "")).sort());
    sqs.destroy();
  });

  it("reports an entry SQS refuses with SQS's error, sends the others, and does not retry it", async () => {
    const { sqs, calls } = observedClient();
    // U+FFFF survives JSON.stringify and is outside the characters SQS accepts in a message.
    const refused = job(3, { reason: "bad \uFFFF character" });
    const results = await sendAll(sqs, [job(1), job(2), refused, job(4)]);
    expect(results.filter((r) => r.ok).map((r) => r.key)).toEqual([1, 2, 4]);
    const failed = results.find((r) => !r.ok);
    expect(failed).toMatchObject({ key: 3, ok: false });
    expect(failed && !failed.ok && failed.error).toMatch(/^InvalidMessageContents: Invalid characters found/);
    expect(calls).toHaveLength(1);
    expect(
      bodies(await queues.drain(queues.queueUrl))
        .map((b) => b.certificate_id)
        .sort(),
    ).toEqual([id(1), id(2), id(4)]);
    sqs.destroy();
  });

  it("retries only the entries a batch reports as failed, and every message arrives once", async () => {
    const { sqs, calls } = observedClient({
      intercept: (_input, call) => ({ drop: call === 0 ? [id(2), id(7)] : [] }),
    });
    const results = await sendAll(
      sqs,
      Array.from({ length: 10 }, (_, i) => job(i + 1)),
    );
    expect(results.every((r) => r.ok)).toBe(true);
    expect(calls).toHaveLength(2);
    expect(calls[1]!.sort()).toEqual([id(2), id(7)]);
    const received = bodies(await queues.drain(queues.queueUrl)).map((b) => b.certificate_id as string);
    expect(received.sort()).toEqual(Array.from({ length: 10 }, (_, i) => id(i + 1)));
  });

  it("gives up on an entry that keeps failing after maxRetries and reports SQS's error", async () => {
    const { sqs, calls } = observedClient({ intercept: () => ({ drop: [id(5)] }) });
    const results = await sendAll(sqs, [job(4), job(5), job(6)], { maxRetries: 2 });
    expect(results.find((r) => r.key === 5)).toEqual({
      key: 5,
      ok: false,
      error: "InternalError: injected server-side failure",
    });
    expect(results.filter((r) => r.ok).map((r) => r.key)).toEqual([4, 6]);
    // first call + 2 retries, each with only the failing entry after the first
    expect(calls.map((c) => c.length)).toEqual([3, 1, 1]);
    sqs.destroy();
  });

  it("keeps at most `concurrency` calls in flight", async () => {
    const { sqs, maxInFlight, calls } = observedClient();
    const results = await sendAll(
      sqs,
      Array.from({ length: 200 }, (_, i) => job(i + 1)),
      { concurrency: 3 },
    );
    expect(results.filter((r) => r.ok)).toHaveLength(200);
    expect(calls).toHaveLength(20);
    expect(maxInFlight()).toBeLessThanOrEqual(3);
    expect(maxInFlight()).toBeGreaterThan(1);
    sqs.destroy();
  });

  it("splits a batch by size: ten 100 KiB messages never go in one 256 KiB call", async () => {
    const { sqs, calls } = observedClient();
    const big = (n: number) => job(n, { note: "x".repeat(100 * 1024) });
    const results = await sendAll(
      sqs,
      Array.from({ length: 5 }, (_, i) => big(i + 1)),
    );
    expect(results.every((r) => r.ok)).toBe(true);
    expect(calls.map((c) => c.length)).toEqual([2, 2, 1]);
    sqs.destroy();
  });
});

describe("sendWithRetries", () => {
  it("reports every entry with the network error when SQS cannot be reached", async () => {
    const sqs = new SQSClient({
      endpoint: "http://127.0.0.1:1",
      region: "eu-west-1",
      credentials: { accessKeyId: "test", secretAccessKey: "test" },
      maxAttempts: 1,
    });
    const results = await sendWithRetries(sqs, queues.queueUrl, [job(1), job(2)], 1);
    expect(results.map((r) => r.key).sort()).toEqual([1, 2]);
    for (const r of results) expect(r.ok === false && r.error).toMatch(/ECONNREFUSED/);
    sqs.destroy();
  });
});

describe("permanent whole-call failures", () => {
  it("does not retry a call to a queue that does not exist", async () => {
    const observed = observedClient();
    const missing = queues.queueUrl.replace(/[^/]+$/, "no-such-queue");
    const results = await sendWithRetries(observed.sqs, missing, [job(1), job(2)], 3);
    expect(results.map((r) => r.ok)).toEqual([false, false]);
    expect(results[0]!.ok === false && results[0]!.error).toMatch(/QueueDoesNotExist|NonExistentQueue/);
    expect(observed.calls).toHaveLength(1);
    observed.sqs.destroy();
  });
});

describe("a throwing onResult callback", () => {
  it("surfaces from flush() instead of becoming an unhandled rejection", async () => {
    const observed = observedClient();
    const sender = createSender<number>({
      sqs: observed.sqs,
      queueUrl: queues.queueUrl,
      onResult: () => {
        throw new Error("results file is full");
      },
    });
    await sender.push(job(1));
    await expect(sender.flush()).rejects.toThrow("results file is full");
    observed.sqs.destroy();
  });
});
