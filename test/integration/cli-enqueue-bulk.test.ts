/**
 * `scm-withdraw enqueue`, `bulk` and `status`, run in-process (`main(argv, io)`) against fauxqs on
 * 127.0.0.1 with the real SDK. What reaches the queue is read back and checked.
 */
import {
  GetQueueAttributesCommand,
  PurgeQueueCommand,
  SQSClient,
  type SendMessageBatchCommandInput,
  type SendMessageBatchCommandOutput,
} from "@aws-sdk/client-sqs";
import { existsSync, linkSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { localRequester } from "../../lib/requester.ts";
import { bodies, cli, startQueues, type Queues } from "../support/cli.ts";

let queues: Queues;
let dir: string;
beforeAll(async () => {
  queues = await startQueues();
  dir = mkdtempSync(join(tmpdir(), "scm-withdraw-cli-"));
});
afterAll(async () => {
  await queues.close();
});
beforeEach(async () => {
  await queues.drain(queues.queueUrl);
});

/** What the CLI stamps as requested_by when it talks to a local (loopback) queue. */
const LOCAL_USER = localRequester();
const id = (n: number) => `scs${String(n).padStart(13, "0")}`;
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const csvRows = (path: string) =>
  readFileSync(path, "utf8")
    .trim()
    .split("\n")
    .map((l) => l.split(","));
const received = async () => bodies(await queues.drain(queues.queueUrl));

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe("enqueue", () => {
  it("sends one manual job per id and prints each message id", async () => {
    const run = await cli(["enqueue", id(1), id(2), "--reason", "duplicate order", ...queues.flags]);
    expect(run.code).toBe(0);
    expect(run.stderr).toBe("");
    const messages = await queues.drain(queues.queueUrl);
    const lines = run.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^certificate_id\s+message_id$/);
    for (const m of messages) expect(run.stdout).toContain(`${JSON.parse(m.Body!).certificate_id}  ${m.MessageId}`);
    expect(lines.at(-1)).toBe("sent 2 to withdrawals");
    expect(bodies(messages).sort((a, b) => String(a.certificate_id).localeCompare(String(b.certificate_id)))).toEqual([
      {
        certificate_id: id(1),
        source: "manual",
        reason: "duplicate order",
        requested_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        requested_by: LOCAL_USER,
      },
      {
        certificate_id: id(2),
        source: "manual",
        reason: "duplicate order",
        requested_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        requested_by: LOCAL_USER,
      },
    ]);
  });

  it("reports each invalid id in one line naming it and why, still sends the valid ones, and exits 1", async () => {
    const run = await cli(["enqueue", "../etc/passwd", id(3), "scs12", ...queues.flags]);
    expect(run.code).toBe(1);
    expect(run.stderr.trim().split("\n")).toEqual([
      'invalid certificate id "../etc/passwd": certificate_id must be exactly 16 characters A-Z, a-z, 0-9; not sent',
      'invalid certificate id "scs12": certificate_id must be exactly 16 characters A-Z, a-z, 0-9; not sent',
    ]);
    expect((await received()).map((b) => b.certificate_id)).toEqual([id(3)]);
    expect(run.stdout).toContain("sent 1 to withdrawals, 2 invalid (not sent)");
  });

  it("trims an id as a bulk .txt line is trimmed", async () => {
    const run = await cli(["enqueue", ` ${id(5)} `, ...queues.flags]);
    expect(run.code).toBe(0);
    expect((await received()).map((b) => b.certificate_id)).toEqual([id(5)]);
  });

  it("takes --request-id and --batch-id for a single job, and prints JSON with --json", async () => {
    const run = await cli([
      "enqueue",
      id(4),
      "--request-id",
      "OPS-4411",
      "--batch-id",
      "b-7",
      "--json",
      ...queues.flags,
    ]);
    expect(run.code).toBe(0);
    const out = JSON.parse(run.stdout);
    const [message] = await queues.drain(queues.queueUrl);
    expect(out).toEqual({
      queue_url: queues.queueUrl,
      sent: [{ certificate_id: id(4), message_id: message!.MessageId }],
      failed: [],
      invalid: [],
      duplicates: [],
    });
    expect(JSON.parse(message!.Body!)).toMatchObject({
      certificate_id: id(4),
      request_id: "OPS-4411",
      batch_id: "b-7",
      source: "manual",
    });
  });

  it.each([
    [
      ["enqueue", id(1), id(2), "--request-id", "r"],
      "--request-id applies to one job, but 2 certificate ids were given",
    ],
    [["enqueue", id(1), "--reason", "x".repeat(300)], "reason must be at most 256 characters"],
    [["enqueue"], "enqueue needs at least one certificate id"],
  ])("refuses %j with one line and exit 2, sending nothing", async (argv, message) => {
    const run = await cli([...argv, ...queues.flags]);
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(`scm-withdraw: error: ${message} (see \`scm-withdraw enqueue --help\`)\n`);
    expect(await received()).toEqual([]);
  });
});

describe("bulk", () => {
  it("sends a .txt file: invalid lines reported by line number and not sent, duplicates dropped, batch stamped", async () => {
    const path = file(
      "ids.txt",
      ["# to withdraw", id(10), "", "scs123", id(11), `${id(10)}  # again`, "../../etc/passwd", id(12), ""].join("\n"),
    );
    const run = await cli(["bulk", "--yes", path, "--batch-id", "bulk-test-1", "--reason", "cleanup", ...queues.flags]);
    expect(run.code).toBe(1);
    expect(run.stderr.trim().split("\n")).toEqual([
      `${path}:4: "scs123": certificate_id must be exactly 16 characters A-Z, a-z, 0-9; not sent`,
      `${path}:6: ${id(10)} is a duplicate of line 2; skipped`,
      `${path}:7: "../../etc/passwd": certificate_id must be exactly 16 characters A-Z, a-z, 0-9; not sent`,
    ]);
    const messages = await queues.drain(queues.queueUrl);
    const jobs = bodies(messages);
    expect(jobs.map((j) => j.certificate_id).sort()).toEqual([id(10), id(11), id(12)]);
    for (const job of jobs) expect(job).toMatchObject({ source: "bulk", batch_id: "bulk-test-1", reason: "cleanup" });
    expect(run.stdout).toContain(`batch bulk-test-1: ${path} (txt, `);
    expect(run.stdout).toContain("read 6 records: 3 valid, 2 invalid (not sent), 1 duplicate (skipped)");
    expect(run.stdout).toMatch(/sent 3, failed 0 in [\d.]+ m?s \(\d+ messages\/s\)/);
    expect(run.stdout).toContain(`results: ${path}.results.csv`);

    const rows = csvRows(`${path}.results.csv`);
    expect(rows[0]).toEqual(["line", "certificate_id", "outcome", "message_id", "detail"]);
    const byLine = new Map(rows.slice(1).map((r) => [Number(r[0]), r]));
    expect([...byLine.keys()].sort((a, b) => a - b)).toEqual([2, 4, 5, 6, 7, 8]);
    expect(byLine.get(4)!.slice(1, 3)).toEqual(["", "invalid"]);
    expect(byLine.get(6)).toEqual(["6", id(10), "duplicate", "", "duplicate of line 2; skipped"]);
    const sentRows = rows.filter((r) => r[2] === "sent");
    expect(sentRows.map((r) => [r[0], r[1], r[3]]).sort()).toEqual(
      [
        ["2", id(10), messages.find((m) => m.Body!.includes(id(10)))!.MessageId],
        ["5", id(11), messages.find((m) => m.Body!.includes(id(11)))!.MessageId],
        ["8", id(12), messages.find((m) => m.Body!.includes(id(12)))!.MessageId],
      ].sort(),
    );
  });

  it("writes the message id of every sent job into the results file", async () => {
    const path = file("three.txt", `${id(20)}\n${id(21)}\n${id(22)}\n`);
    const results = join(dir, "three-results.csv");
    const run = await cli(["bulk", "--yes", "--reason", "test", path, "--results", results, ...queues.flags]);
    expect(run.code).toBe(0);
    const messages = await queues.drain(queues.queueUrl);
    const rows = csvRows(results).slice(1);
    expect(rows.map((r) => [r[1], r[2], r[3]]).sort()).toEqual(
      messages.map((m) => [JSON.parse(m.Body!).certificate_id, "sent", m.MessageId]).sort(),
    );
    // a generated batch id, printed first and stamped on every job
    const batchId = /^batch (bulk-\d{8}-\d{6}-[0-9a-f]{4}):/.exec(run.stdout)?.[1];
    expect(batchId).toBeDefined();
    for (const m of messages) expect(JSON.parse(m.Body!).batch_id).toBe(batchId);
  });

  it("reads a .csv by its certificate_id column, with quoted fields and a reason column", async () => {
    const path = file(
      "ids.csv",
      [
        "name,certificate_id,reason",
        `"shop, main",${id(30)},"moved to ""new"" account"`,
        `blog,${id(31)},`,
        `dup,${id(30)},x`,
        "bad,scs1,",
        `api,"${id(32)}",late`,
      ].join("\r\n"),
    );
    const run = await cli(["bulk", "--yes", path, "--reason", "default reason", ...queues.flags]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`${path}:4: ${id(30)} is a duplicate of line 2; skipped`);
    expect(run.stderr).toContain(
      `${path}:5: "scs1": certificate_id must be exactly 16 characters A-Z, a-z, 0-9; not sent`,
    );
    const jobs = (await received()).sort((a, b) => String(a.certificate_id).localeCompare(String(b.certificate_id)));
    expect(jobs.map((j) => [j.certificate_id, j.reason, j.source])).toEqual([
      [id(30), 'moved to "new" account', "bulk"],
      [id(31), "default reason", "bulk"],
      [id(32), "late", "bulk"],
    ]);
  });

  it("validates .jsonl lines against the full schema and keeps their extra fields", async () => {
    const path = file(
      "jobs.jsonl",
      [
        JSON.stringify({ certificate_id: id(40), request_id: "R-40", ticket: "T-1" }),
        JSON.stringify({ certificate_id: id(41), requested_at: "last tuesday" }),
        "{not json",
        JSON.stringify({ certificate_id: id(40), request_id: "R-40b" }),
        JSON.stringify({ certificate_id: id(42), source: "cleanup", batch_id: "other" }),
      ].join("\n"),
    );
    const run = await cli(["bulk", "--yes", "--reason", "CHG-1", path, "--batch-id", "b-json", ...queues.flags]);
    expect(run.code).toBe(1);
    expect(run.stderr.trim().split("\n")).toEqual([
      `${path}:2: requested_at must be an ISO-8601 date-time, e.g. 2026-11-27T10:00:00Z; not sent`,
      `${path}:3: body is not JSON; not sent`,
      `${path}:4: ${id(40)} is a duplicate of line 1; skipped`,
    ]);
    const jobs = (await received()).sort((a, b) => String(a.certificate_id).localeCompare(String(b.certificate_id)));
    expect(jobs).toEqual([
      {
        certificate_id: id(40),
        request_id: "R-40",
        ticket: "T-1",
        source: "bulk",
        batch_id: "b-json",
        requested_at: expect.any(String),
        requested_by: LOCAL_USER,
        reason: "CHG-1",
      },
      {
        certificate_id: id(42),
        source: "bulk",
        batch_id: "b-json",
        requested_at: expect.any(String),
        requested_by: LOCAL_USER,
        reason: "CHG-1",
      },
    ]);
    const rows = csvRows(`${path}.results.csv`);
    expect(rows.find((r) => r[0] === "2")!.slice(0, 3)).toEqual(["2", id(41), "invalid"]);
  });

  it("needs a reason unless --dry-run: --reason, or one per line (csv column, jsonl field); who sends is stamped on every job", async () => {
    const txt = file("no-reason.txt", `${id(70)}\n`);
    const refused = await cli(["bulk", "--yes", txt, ...queues.flags]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("bulk needs --reason TEXT");
    const csv = file("some-reasons.csv", ["certificate_id,reason", `${id(71)},CHG-9`, `${id(72)},`].join("\n"));
    const run = await cli(["bulk", "--yes", csv, ...queues.flags]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`${csv}:3: no reason: pass --reason TEXT or give the line a reason; not sent`);
    expect(await received()).toEqual([
      expect.objectContaining({ certificate_id: id(71), reason: "CHG-9", requested_by: LOCAL_USER }),
    ]);
    // A line cannot speak for someone else: requested_by is always the sender's.
    const jsonl = file(
      "spoof.jsonl",
      JSON.stringify({ certificate_id: id(73), reason: "r", requested_by: "arn:aws:iam::1:user/someone-else" }),
    );
    expect((await cli(["bulk", "--yes", jsonl, ...queues.flags])).code).toBe(0);
    expect(await received()).toEqual([expect.objectContaining({ certificate_id: id(73), requested_by: LOCAL_USER })]);
  });

  it("--dry-run validates and counts, sends nothing, and needs no queue", async () => {
    const path = file("dry.txt", `${id(50)}\n${id(51)}\nnope\n${id(50)}\n`);
    const port = await closedPort();
    const run = await cli([
      "bulk",
      path,
      "--dry-run",
      "--queue-url",
      `http://sqs.eu-west-1.localhost:${port}/000000000000/withdrawals`,
    ]);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain("dry run, nothing will be sent");
    expect(run.stdout).toContain("read 4 records: 2 valid, 1 invalid (not sent), 1 duplicate (skipped)");
    expect(run.stdout).toContain("dry run: 2 would be sent, nothing was sent");
    expect(
      csvRows(`${path}.results.csv`)
        .filter((r) => r[2] === "valid")
        .map((r) => r[1]),
    ).toEqual([id(50), id(51)]);

    const clean = file("dry-clean.txt", `${id(52)}\n`);
    expect((await cli(["bulk", clean, "--dry-run", ...queues.flags])).code).toBe(0);
    expect(await received()).toEqual([]);
  });

  it("retries a batch entry SQS reports as failed, and reports an entry SQS refuses with its line", async () => {
    // The real client, plus a middleware that makes SQS report one entry as failed (server side) on its first try.
    let failedOnce = false;
    const retried: string[][] = [];
    const createSqsClient = (config: ConstructorParameters<typeof SQSClient>[0]) => {
      const sqs = new SQSClient(config!);
      sqs.middlewareStack.add(
        (next, context) => async (args) => {
          if (context.commandName !== "SendMessageBatchCommand") return next(args);
          const input = args.input as SendMessageBatchCommandInput;
          const victim = failedOnce ? undefined : input.Entries!.find((e) => e.MessageBody!.includes(id(61)));
          if (failedOnce) retried.push(input.Entries!.map((e) => JSON.parse(e.MessageBody!).certificate_id));
          if (!victim) return next(args);
          failedOnce = true;
          const result = await next({
            ...args,
            input: { ...input, Entries: input.Entries!.filter((e) => e !== victim) },
          });
          const output = result.output as SendMessageBatchCommandOutput;
          output.Failed = [
            ...(output.Failed ?? []),
            { Id: victim.Id!, SenderFault: false, Code: "InternalError", Message: "try again" },
          ];
          return result;
        },
        { step: "initialize", name: "failOnce" },
      );
      return sqs;
    };
    // U+FFFF passes the schema but SQS refuses it: a SenderFault, reported and not retried.
    const path = file(
      "retry.jsonl",
      [id(60), id(61), id(62)]
        .map((c) => JSON.stringify({ certificate_id: c }))
        .concat(JSON.stringify({ certificate_id: id(63), reason: "bad \uFFFF" }))
        .join("\n"),
    );
    const run = await cli(["bulk", "--yes", "--reason", "test", path, "--json", ...queues.flags], { createSqsClient });
    expect(run.code).toBe(1);
    expect(retried).toEqual([[id(61)]]);
    expect((await received()).map((j) => j.certificate_id).sort()).toEqual([id(60), id(61), id(62)]);
    expect(run.stderr).toMatch(
      new RegExp(
        `^${path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:4: ${id(63)} not sent: InvalidMessageContents: Invalid characters found`,
      ),
    );
    expect(JSON.parse(run.stdout)).toMatchObject({
      read: 4,
      valid: 4,
      invalid: 0,
      duplicates: 0,
      sent: 3,
      failed: 1,
      results_file: `${path}.results.csv`,
    });
    expect(
      csvRows(`${path}.results.csv`)
        .find((r) => r[0] === "4")!
        .slice(0, 3),
    ).toEqual(["4", id(63), "failed"]);
  });

  it("sends 10,000 ids in seconds", async () => {
    const path = file("ten-thousand.txt", Array.from({ length: 10_000 }, (_, i) => id(100_000 + i)).join("\n"));
    const started = performance.now();
    const run = await cli(["bulk", "--yes", "--reason", "test", path, "--json", ...queues.flags]);
    const elapsed = performance.now() - started;
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ valid: 10_000, sent: 10_000, failed: 0 });
    const { Attributes } = await queues.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: queues.queueUrl, AttributeNames: ["ApproximateNumberOfMessages"] }),
    );
    expect(Number(Attributes!.ApproximateNumberOfMessages)).toBe(10_000);
    console.info(`bulk: 10,000 ids sent to fauxqs in ${Math.round(elapsed)} ms`);
    // Generous: it takes about 1 s here; the point is "seconds", not minutes.
    expect(elapsed).toBeLessThan(20_000);
    await queues.sqs.send(new PurgeQueueCommand({ QueueUrl: queues.queueUrl }));
  });

  it.each([
    [["bulk", "--yes", "missing.txt"], "cannot read missing.txt: no such file"],
    [
      ["bulk", "--yes", "ids.xlsx"],
      "cannot tell the format of ids.xlsx from its name: use .txt, .csv or .jsonl, or pass --format",
    ],
    [["bulk"], "bulk needs a file"],
    [["bulk", "--yes", "a.txt", "--concurrency", "0"], '--concurrency must be a whole number from 1 to 64 (got "0")'],
    [["bulk", "--yes", "a.txt", "--format", "xml"], '--format must be one of txt, csv, jsonl (got "xml")'],
  ])("refuses %j with one line and exit 2", async (argv, message) => {
    const run = await cli(argv, { env: {} });
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(`scm-withdraw: error: ${message} (see \`scm-withdraw bulk --help\`)\n`);
  });

  it("refuses to write the results over the input file", async () => {
    const path = file("self.txt", `${id(71)}\n`);
    const run = await cli(["bulk", "--yes", "--reason", "test", path, "--results", path, ...queues.flags]);
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(
      `scm-withdraw: error: --results would overwrite the input file ${path} (see \`scm-withdraw bulk --help\`)\n`,
    );
    expect(readFileSync(path, "utf8")).toBe(`${id(71)}\n`);
    expect(await received()).toEqual([]);
  });

  it.each([
    ["a hard link", (target: string, link: string) => linkSync(target, link)],
    ["a symbolic link", (target: string, link: string) => symlinkSync(target, link)],
  ])("refuses --results through %s to the input file, leaving the input whole", async (_, makeLink) => {
    const path = file(`linked-${_.length}.txt`, `${id(72)}\n${id(73)}\n`);
    const link = join(dir, `linked-${_.length}.results.csv`);
    makeLink(path, link);
    const run = await cli(["bulk", "--yes", "--reason", "test", path, "--results", link, ...queues.flags]);
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(
      `scm-withdraw: error: --results ${link} is the input file ${path} (through a link); choose another path (see \`scm-withdraw bulk --help\`)\n`,
    );
    expect(readFileSync(path, "utf8")).toBe(`${id(72)}\n${id(73)}\n`);
    expect(await received()).toEqual([]);
  });

  it("writes --results /dev/null as asked: no /dev/null-2, and an empty input never removes /dev/null", async () => {
    const path = file("to-dev-null.txt", `${id(77)}\n`);
    const run = await cli(["bulk", path, "--dry-run", "--results", "/dev/null", ...queues.flags]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("results: /dev/null\n");
    expect(existsSync("/dev/null-2")).toBe(false);
    const empty = await cli([
      "bulk",
      file("empty-to-dev-null.txt", ""),
      "--dry-run",
      "--results",
      "/dev/null",
      ...queues.flags,
    ]);
    expect(empty.code).toBe(1);
    expect(existsSync("/dev/null")).toBe(true);
  });

  it("refuses a --results path that is a directory, with one line", async () => {
    const path = file("to-dir.txt", `${id(78)}\n`);
    const run = await cli(["bulk", path, "--dry-run", "--results", dir, ...queues.flags]);
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(
      `scm-withdraw: error: --results ${dir} is a directory; give a file path (see \`scm-withdraw bulk --help\`)\n`,
    );
    expect(existsSync(`${dir}-2`)).toBe(false);
  });

  it("reports a line over 64 KiB as invalid by number and goes on with the rest", async () => {
    const path = file("huge-line.txt", `${id(74)}\n${"x".repeat(5_000_000)}\n${id(75)}\n`);
    const run = await cli(["bulk", path, "--dry-run", ...queues.flags]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`${path}:2: the line is longer than 65536 bytes (5000000 bytes); not sent`);
    expect(
      csvRows(`${path}.results.csv`)
        .slice(1)
        .map((r) => r.slice(0, 3)),
    ).toEqual([
      ["1", id(74), "valid"],
      ["2", "", "invalid"],
      ["3", id(75), "valid"],
    ]);
  });

  it("refuses to send without a terminal and without --yes, before reading or sending anything", async () => {
    const path = file("unasked.txt", `${id(76)}\n`);
    const run = await cli(["bulk", path, ...queues.flags]);
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(
      "scm-withdraw: error: bulk sends a withdrawal for every id in the file (--dry-run checks the file): pass --yes to confirm (there is no terminal to ask on) (see `scm-withdraw bulk --help`)\n",
    );
    expect(existsSync(`${path}.results.csv`)).toBe(false);
    expect(await received()).toEqual([]);
  });

  it("on a terminal, reads the file first and asks with the count, the batch id and the reason", async () => {
    const path = file("asked.txt", `${id(77)}\n${id(78)}\nnope\n${id(77)}\n`);
    const questions: string[] = [];
    const ask = (reply: string) => async (question: string) => {
      questions.push(question);
      return reply;
    };
    const declined = await cli(["bulk", path, "--batch-id", "b-ask", "--reason", "moved", ...queues.flags], {
      ask: ask("no"),
    });
    expect(declined.code).toBe(1);
    expect(declined.stderr).toBe(
      `${path}: 2 jobs to send, 1 invalid (not sent), 1 duplicate (skipped)\nnot confirmed: nothing was sent\n`,
    );
    expect(questions).toEqual(['send 2 withdrawals as batch b-ask (reason "moved") to withdrawals? [y/N] ']);
    expect(existsSync(`${path}.results.csv`)).toBe(false);
    expect(await received()).toEqual([]);
    const accepted = await cli(["bulk", path, "--batch-id", "b-ask", "--reason", "moved", ...queues.flags], {
      ask: ask("y"),
    });
    expect(accepted.code).toBe(1); // the invalid line
    expect((await received()).map((b) => b.certificate_id).sort()).toEqual([id(77), id(78)]);
  });

  it("never overwrites an earlier run's results file: a re-run picks a new name and prints it", async () => {
    const path = file("rerun.txt", `${id(79)}\n`);
    const first = await cli(["bulk", path, "--dry-run", ...queues.flags]);
    const before = readFileSync(`${path}.results.csv`, "utf8");
    const second = await cli(["bulk", path, "--dry-run", "--json", ...queues.flags]);
    expect([first.code, second.code]).toEqual([0, 0]);
    expect(JSON.parse(second.stdout).results_file).toBe(`${path}.results-2.csv`);
    const third = await cli(["bulk", path, "--dry-run", ...queues.flags]);
    expect(third.stdout).toContain(`results: ${path}.results-3.csv (${path}.results.csv exists: not overwritten)\n`);
    expect(readFileSync(`${path}.results.csv`, "utf8")).toBe(before);
    expect(readFileSync(`${path}.results-3.csv`, "utf8")).toBe(before);
  });

  it.each([
    ["an empty file", "empty.txt", ""],
    ["a file with no valid line", "none-valid.txt", "# only a comment\nscs12\n"],
  ])("exits 1 for %s, sending nothing", async (_, name, text) => {
    const path = file(name, text);
    const run = await cli(["bulk", "--yes", "--reason", "test", path, ...queues.flags]);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain(`no valid job in ${path}: nothing was sent\n`);
    expect(existsSync(`${path}.results.csv`)).toBe(text !== "");
    expect(await received()).toEqual([]);
  });

  it("on a terminal, the progress bar counts jobs sent out of jobs read, not bytes read", async () => {
    const path = file("progress.txt", Array.from({ length: 50 }, (_, i) => id(400 + i)).join("\n"));
    // Sending lags reading by far: 150 ms per SendMessageBatch call, one at a time.
    const createSqsClient = (config: ConstructorParameters<typeof SQSClient>[0]) => {
      const sqs = new SQSClient(config!);
      sqs.middlewareStack.add(
        (next, context) => async (args) => {
          if (context.commandName === "SendMessageBatchCommand") await new Promise((r) => setTimeout(r, 150));
          return next(args);
        },
        { step: "initialize", name: "slowSends" },
      );
      return sqs;
    };
    let stderr = "";
    const run = await cli(["bulk", "--yes", "--reason", "test", path, "--concurrency", "1", ...queues.flags], {
      createSqsClient,
      stderr: { write: (c: string) => (stderr += c), isTTY: true },
    });
    expect(run.code).toBe(0);
    const bars = [...stderr.matchAll(/(\d+)% (\d+) of (\d+) read sent/g)].map((m) => m.slice(1).map(Number));
    expect(bars.length).toBeGreaterThan(1);
    for (const [percent, sent, read] of bars)
      expect(percent).toBeLessThanOrEqual(Math.floor((100 * sent!) / read!) + 1);
    expect(await received()).toHaveLength(50);
  });

  it("refuses a .csv without a certificate_id column as a whole, sending nothing and leaving no results file", async () => {
    const path = file("wrong.csv", `id,reason\n${id(70)},x\n`);
    const run = await cli(["bulk", "--yes", "--reason", "test", path, ...queues.flags]);
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(
      `scm-withdraw: error: ${path}: no certificate_id column in the header row on line 1 (found: id, reason) (see \`scm-withdraw bulk --help\`)\n`,
    );
    expect(await received()).toEqual([]);
    expect(existsSync(`${path}.results.csv`)).toBe(false);
  });
});

describe("status", () => {
  it("shows visible, in-flight and delayed counts of both queues, finding the DLQ from the redrive policy", async () => {
    await cli(["enqueue", id(80), id(81), ...queues.flags]);
    await queues.deadLetter({ body: JSON.stringify({ certificate_id: id(82) }), certificateId: id(82) });
    const run = await cli(["status", "--queue-url", queues.queueUrl, "--json"]);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({
      queue: { queue: "withdrawals", url: queues.queueUrl, visible: 2, in_flight: 0, delayed: 0 },
      dlq: { queue: "withdrawals-dlq", url: queues.dlqUrl, visible: 1, in_flight: 0, delayed: 0 },
    });
    const text = await cli(["status", ...queues.flags]);
    expect(text.stdout.split("\n")[0]).toMatch(/^queue\s+visible\s+in flight\s+delayed\s+url$/);
    expect(text.stdout).toMatch(/withdrawals-dlq\s+1\s+0\s+0\s+http/);
    await queues.drain(queues.dlqUrl);
  });
});

describe("when the queue is not there", () => {
  it("says in one line that the local pipeline is not running", async () => {
    const port = await closedPort();
    const run = await cli(["status", "--queue-url", `http://sqs.eu-west-1.localhost:${port}/000000000000/withdrawals`]);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      `scm-withdraw: error: no queue at http://127.0.0.1:${port}: start the local pipeline with \`npm start\`, or pass --queue-url\n`,
    );
  });

  it("names a queue that does not exist", async () => {
    const url = queues.queueUrl.replace(/withdrawals$/, "nope");
    const run = await cli(["enqueue", id(90), "--queue-url", url]);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      `scm-withdraw: error: no queue ${url} on ${queues.endpoint}: is the local pipeline running (\`npm start\`)? otherwise pass --queue-url/--dlq-url\n`,
    );
  });
});

describe("usage errors", () => {
  it.each([
    [
      ["enqueue", id(1), "--reasn", "x"],
      "unknown option --reasn (did you mean --reason?) (see `scm-withdraw enqueue --help`)",
    ],
    [
      ["dlq", "list", "--max", "many"],
      '--max must be a whole number from 1 to 1000000 (got "many") (see `scm-withdraw dlq list --help`)',
    ],
    [
      ["dlq", "list", "--reason", "gone"],
      '--reason "gone" is not a failure reason; use one of invalid_message, unauthorized, forbidden, not_found, rejected, unexpected_answer, retries_exhausted, unlabelled (see `scm-withdraw dlq list --help`)',
    ],
    [["enqueue", id(1), "--reason"], "--reason needs a value (TEXT) (see `scm-withdraw enqueue --help`)"],
    [["status", "--json=yes"], '--json takes no value (got "yes") (see `scm-withdraw status --help`)'],
    [["frobnicate"], 'unknown command "frobnicate" (see `scm-withdraw --help`)'],
    [["dlq"], "dlq needs a subcommand: list, redrive (see `scm-withdraw --help`)"],
    [["dlq", "purge"], 'unknown dlq subcommand "purge": use list, redrive (see `scm-withdraw --help`)'],
    [
      ["status", "--queue-url", "withdrawals"],
      '--queue-url must be an SQS queue URL like https://sqs.eu-west-1.amazonaws.com/123456789012/withdrawals (got "withdrawals") (see `scm-withdraw status --help`)',
    ],
  ])("%j exits 2 with one line", async (argv, message) => {
    const run = await cli(argv);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe("");
    expect(run.stderr).toBe(`scm-withdraw: error: ${message}\n`);
  });

  it("prints help on stdout with exit 0, per command too", async () => {
    const index = await cli(["--help"]);
    expect(index.code).toBe(0);
    for (const name of ["enqueue", "bulk", "dlq list", "dlq redrive", "status"])
      expect(index.stdout).toContain(`\n  ${name}`);
    expect(index.stdout).toContain("exit codes: 0 everything done, 1 some work failed, 2 usage error");
    const bulk = await cli(["bulk", "--yes", "--help"]);
    expect(bulk.code).toBe(0);
    expect(bulk.stdout).toMatch(/^usage: scm-withdraw bulk <file>/);
    expect(bulk.stdout).toContain("--dry-run");
    expect((await cli(["help", "dlq", "redrive"])).stdout).toMatch(/^usage: scm-withdraw dlq redrive/);
    expect((await cli(["dlq", "list", "-h"])).stdout).toMatch(/^usage: scm-withdraw dlq list/);
  });

  it.each([
    ["batch", ["batch status", "batch report"]],
    ["dlq", ["dlq list", "dlq redrive"]],
  ])("`%s --help` lists the group's subcommands, exit 0", async (group, members) => {
    for (const help of ["--help", "-h"]) {
      const run = await cli([group, help]);
      expect(run.code).toBe(0);
      expect(run.stderr).toBe("");
      expect(run.stdout).toMatch(new RegExp(`^usage: scm-withdraw ${group} <subcommand> \\[options\\]\n`));
      for (const name of members) expect(run.stdout).toMatch(new RegExp(`\n  ${name}\\s+\\S`));
    }
  });

  it("prints the index on stderr with exit 2 when no command is given", async () => {
    const run = await cli([]);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe("");
    expect(run.stderr).toMatch(/^scm-withdraw: feed the withdrawals queue/);
  });
});
