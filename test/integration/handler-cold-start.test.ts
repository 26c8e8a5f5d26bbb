/**
 * What the handler does when a container starts (bench comparison 3 measures how long it takes): it
 * imports with a valid configuration and no reachable service, opens no connection, and leaves the
 * SQS SDK (needed only for dead letters) unloaded until the first dead letter. Its deployable bundle
 * does not load Node's undici (fetch, WebSocket), which an ES import of `node:http` pulls in on Node 24.
 */
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildEntry } from "../../scripts/build.mjs";

const run = promisify(execFile);
const HANDLER = pathToFileURL(path.resolve(import.meta.dirname, "../../handlers/withdraw.ts")).href;
/** Imports the handler in a fresh process (through tsx, as tests run it) and reports which AWS SDK clients got loaded. */
const SCRIPT = `
import { createRequire } from "node:module";
await import(${JSON.stringify(HANDLER)});
const loaded = Object.keys(createRequire(import.meta.url).cache).map((p) => /@aws-sdk\\/(client-[a-z-]+)\\//.exec(p)?.[1]).filter(Boolean);
process.stdout.write(JSON.stringify([...new Set(loaded)].sort()));
`;

let trap: net.Server;
let connections = 0;
let port = 0;

beforeAll(async () => {
  // Every endpoint points here: any connection made while importing is counted.
  trap = net.createServer((socket) => {
    connections++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => trap.listen(0, "127.0.0.1", resolve));
  port = (trap.address() as net.AddressInfo).port;
});
afterAll(() => new Promise<void>((resolve) => trap.close(() => resolve())));

describe("the handler at container start", () => {
  it("imports without touching the network and without loading the SQS SDK", async () => {
    const base = `http://127.0.0.1:${port}`;
    const { stdout } = await run(
      process.execPath,
      ["--import", "tsx", "--no-warnings", "--input-type=module", "-e", SCRIPT],
      {
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          SCM_ENDPOINT: base,
          SCM_TOKEN_SECRET_ID: "scm-withdraw/token",
          WITHDRAWAL_DLQ_URL: `${base}/000000000000/withdrawals-dlq`,
          AWS_ENDPOINT_URL_SQS: base,
          AWS_ENDPOINT_URL_SECRETS_MANAGER: base,
          AWS_REGION: "eu-west-1",
          AWS_ACCESS_KEY_ID: "test",
          AWS_SECRET_ACCESS_KEY: "test",
        },
        timeout: 20_000,
      },
    );
    const loaded = JSON.parse(stdout) as string[];
    expect(loaded).toContain("client-secrets-manager");
    expect(loaded).not.toContain("client-sqs");
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(connections).toBe(0);
  });

  it("its bundle does not load Node's undici (about 50 ms of a Node 24 cold start)", async () => {
    // Inside the project, so the bundle finds the AWS SDK in node_modules, as the runtime provides it.
    const cache = path.resolve(import.meta.dirname, "../../node_modules/.cache");
    await mkdir(cache, { recursive: true });
    const dir = await mkdtemp(path.join(cache, "scm-withdraw-coldstart-"));
    try {
      const { outfile } = await buildEntry("handlers/withdraw.ts", { outdir: dir });
      const script = `await import(${JSON.stringify(pathToFileURL(outfile).href)}); process.stdout.write(JSON.stringify(process.moduleLoadList.filter((m) => m.includes("undici"))));`;
      const base = `http://127.0.0.1:${port}`;
      const env = {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        SCM_ENDPOINT: base,
        SCM_TOKEN_SECRET_ID: "scm-withdraw/token",
        WITHDRAWAL_DLQ_URL: `${base}/000000000000/withdrawals-dlq`,
        AWS_REGION: "eu-west-1",
        AWS_ACCESS_KEY_ID: "test",
        AWS_SECRET_ACCESS_KEY: "test",
      };
      const { stdout } = await run(process.execPath, ["--input-type=module", "-e", script], { env, timeout: 20_000 });
      expect(JSON.parse(stdout), "an ES import of node:http or node:https in the bundle?").toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
