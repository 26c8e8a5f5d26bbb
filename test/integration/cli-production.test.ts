/**
 * The CLI from a production-only install: a copy of the project with `bin/`, the built `dist/` and
 * node_modules after the real `npm prune --omit=dev` (no tsx, esbuild or other devDependency left)
 * runs its commands against a queue and a ledger. The copy's node_modules is hard-linked (`cp -al`)
 * from the project's, so the prune takes seconds and changes nothing in the project.
 */
import { CreateTableCommand } from "@aws-sdk/client-dynamodb";
import { execFile, spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LEDGER_TABLE_SCHEMA } from "../../lib/ledger.ts";
import { startLocalDynamo, type LocalDynamo } from "../../local/dynamodb.ts";
import { startQueues, type Queues } from "../support/cli.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const DEV_ONLY = ["tsx", "esbuild", "vitest", "typescript", "node", "fauxqs", "dynalite", "osls"];
// Only what a shell would have: no AWS settings from the developer's environment.
const ENV = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp" };

let dir: string;
let queues: Queues;
let dynamo: LocalDynamo;

function run(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(dir, "bin", "scm-withdraw.mjs"), ...args], {
      cwd: dir,
      env: { ...ENV, ...env },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

beforeAll(async () => {
  // Inside the project (.vitest/ is ignored by git), so that hard links never cross file systems.
  mkdirSync(path.join(ROOT, ".vitest"), { recursive: true });
  dir = mkdtempSync(path.join(ROOT, ".vitest", "production-"));
  for (const name of ["package.json", "package-lock.json", "bin", "dist"])
    cpSync(path.join(ROOT, name), path.join(dir, name), { recursive: true });
  await promisify(execFile)("cp", ["-al", path.join(ROOT, "node_modules"), path.join(dir, "node_modules")]);
  await promisify(execFile)(
    "npm",
    ["prune", "--omit=dev", "--offline", "--no-audit", "--no-fund", "--loglevel=error"],
    { cwd: dir, timeout: 60_000 },
  );
  [queues, dynamo] = await Promise.all([startQueues(), startLocalDynamo()]);
  const { partitionKey, sortKey } = LEDGER_TABLE_SCHEMA;
  await dynamo.client().send(
    new CreateTableCommand({
      TableName: "ledger",
      AttributeDefinitions: [
        { AttributeName: partitionKey, AttributeType: "S" },
        { AttributeName: sortKey, AttributeType: "S" },
      ],
      KeySchema: [
        { AttributeName: partitionKey, KeyType: "HASH" },
        { AttributeName: sortKey, KeyType: "RANGE" },
      ],
      BillingMode: "PAY_PER_REQUEST",
    }),
  );
}, 120_000);

afterAll(async () => {
  await Promise.all([queues?.close(), dynamo?.close()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("the CLI after npm prune --omit=dev", () => {
  it("has the runtime dependencies and none of the devDependencies", () => {
    expect(existsSync(path.join(dir, "node_modules", "@aws-sdk", "client-sqs"))).toBe(true);
    for (const name of DEV_ONLY) expect(existsSync(path.join(dir, "node_modules", name)), name).toBe(false);
  });

  it("prints its help and version", async () => {
    const help = await run(["--help"]);
    expect(help).toMatchObject({ code: 0, stderr: "" });
    expect(help.stdout).toMatch(/^scm-withdraw: feed the withdrawals queue/);
    expect(await run(["--version"])).toEqual({ code: 0, stdout: "scm-withdraw 0.1.0\n", stderr: "" });
  });

  it("enqueues with the ledger, reads the batch back, and shows the queue depths", async () => {
    const ledger = { LEDGER_TABLE: "ledger", AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint, AWS_REGION: "eu-west-1" };
    const enqueued = await run(["enqueue", "scs1000000000001", "--batch-id", "prod-check", ...queues.flags], ledger);
    expect(enqueued.stderr).toBe("");
    expect(enqueued.code).toBe(0);
    const status = await run(["batch", "status", "prod-check", "--json", ...queues.flags], ledger);
    expect(status.stderr).toBe("");
    expect(JSON.parse(status.stdout)).toMatchObject({
      batch_id: "prod-check",
      table: "ledger",
      recorded: 1,
      counts: { queued: 1 },
    });
    const depths = await run(["status", "--json", ...queues.flags]);
    expect(depths.code).toBe(0);
    await queues.drain(queues.queueUrl);
  });

  it("checks a bulk file (--dry-run)", async () => {
    writeFileSync(path.join(dir, "ids.txt"), "scs1000000000001\nscs1000000000002\n");
    const result = await run(["bulk", "--dry-run", "ids.txt"]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("dry run: 2 would be sent, nothing was sent");
  });
});
