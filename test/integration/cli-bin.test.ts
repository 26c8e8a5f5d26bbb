/**
 * The real bin (`bin/scm-withdraw.mjs`, running the built `dist/cli.mjs`), spawned as a user runs it: clean output,
 * exit codes, the one-line error when no queue is running, and Ctrl-C during a bulk send.
 */
import { GetQueueAttributesCommand } from "@aws-sdk/client-sqs";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startQueues, type Queues } from "../support/cli.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const BIN = join(ROOT, "bin/scm-withdraw.mjs");
// Only what a shell would have: no AWS settings from the developer's environment.
const ENV = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? tmpdir() };

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function run(
  command: string,
  args: string[],
  options: { onStdout?: (text: string, child: ReturnType<typeof spawn>) => void } = {},
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, env: ENV, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
      options.onStdout?.(stdout, child);
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

let queues: Queues;
let dir: string;
beforeAll(async () => {
  queues = await startQueues();
  dir = mkdtempSync(join(tmpdir(), "scm-withdraw-bin-"));
});
afterAll(async () => {
  await queues.close();
});

describe("bin/scm-withdraw.mjs", () => {
  it("prints help with exit 0 and nothing on stderr", async () => {
    const result = await run(process.execPath, [BIN, "--help"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^scm-withdraw: feed the withdrawals queue/);
    expect(result.stderr).toBe("");
  });

  it("enqueues against a running queue with clean output", async () => {
    const result = await run(process.execPath, [BIN, "enqueue", "scs1000000000001", ...queues.flags]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      /^certificate_id\s+message_id\nscs1000000000001\s+[0-9a-f-]{36}\nsent 1 to withdrawals\n$/,
    );
    await queues.drain(queues.queueUrl);
  });

  it("says in one line, with exit 1, that no local queue is running", async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as { port: number };
    await new Promise((resolve) => server.close(resolve));
    const result = await run(process.execPath, [
      BIN,
      "status",
      "--queue-url",
      `http://sqs.eu-west-1.localhost:${port}/000000000000/withdrawals`,
    ]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toBe(
      `scm-withdraw: error: no queue at http://127.0.0.1:${port}: start the local pipeline with \`npm start\`, or pass --queue-url\n`,
    );
  });

  it("exits 2 with one line for a usage error", async () => {
    const result = await run(process.execPath, [BIN, "bulk", "--dry-rn", "x.txt"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      "scm-withdraw: error: unknown option --dry-rn (did you mean --dry-run?) (see `scm-withdraw bulk --help`)\n",
    );
  });

  it("runs as `npx scm-withdraw` in the project directory", async () => {
    const result = await run("npx", ["--offline", "scm-withdraw", "--version"]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^scm-withdraw \d+\.\d+\.\d+\n$/);
  });

  it("on Ctrl-C during a bulk send, stops reading, finishes what is in flight, reports, and exits 130", async () => {
    const path = join(dir, "many.txt");
    writeFileSync(path, Array.from({ length: 200_000 }, (_, i) => `scs${String(i).padStart(13, "0")}`).join("\n"));
    const depth = async () => {
      const { Attributes } = await queues.sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: queues.queueUrl, AttributeNames: ["ApproximateNumberOfMessages"] }),
      );
      return Number(Attributes!.ApproximateNumberOfMessages);
    };
    let started = false;
    const result = await run(process.execPath, [BIN, "bulk", "--yes", "--reason", "test", path, ...queues.flags], {
      onStdout: (text, child) => {
        if (started || !text.startsWith("batch ")) return;
        started = true;
        // Interrupt mid-send: once some jobs are in the queue (polled, not slept).
        void (async () => {
          while ((await depth()) < 1000 && child.exitCode === null) await new Promise((r) => setTimeout(r, 20));
          child.kill("SIGINT");
        })();
      },
    });
    expect(result.code).toBe(130);
    expect(result.stderr).toContain("scm-withdraw: stopping: finishing what is in flight");
    expect(result.stdout).toContain("interrupted: the rest of the file was not read");
    const sent = Number(/\nsent (\d+), failed 0 /.exec(result.stdout)?.[1]);
    expect(sent).toBeGreaterThanOrEqual(1000);
    expect(sent).toBeLessThan(200_000);
    // Nothing lost or unaccounted for: what the results file says was sent is exactly what is in the queue.
    const rows = readFileSync(`${path}.results.csv`, "utf8").trim().split("\n").slice(1);
    expect(rows.filter((r) => r.split(",")[2] === "sent")).toHaveLength(sent);
    expect(await depth()).toBe(sent);
  });
});
