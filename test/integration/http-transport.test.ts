/**
 * The one HTTP transport (`lib/http-transport.ts`) over real HTTP against the SCM simulator: its time
 * limit covers a slow drip, its body cap stops reading, and it is the only HTTP client code in lib/.
 */
import { readdirSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHttpTransport, type HttpTransport } from "../../lib/http-transport.ts";
import { faults, startScmSimulator, type ScmSimulator } from "../../local/scm-simulator.ts";

const ID = "scs1481110651012";
let sim: ScmSimulator;
let transport: HttpTransport;
const detail = () => new URL(`/v3/scm/certificates/${ID}`, sim.url);

beforeAll(async () => {
  sim = await startScmSimulator({ certificates: [{ id: ID, status: "CHECKING" }] });
  transport = createHttpTransport({ maxSockets: 2, maxBodyBytes: 4096 });
});
afterAll(async () => {
  transport.close();
  await sim.close();
});

describe("the shared HTTP transport", () => {
  it("gives any status with its headers and text, reusing one keep-alive connection", async () => {
    const before = sim.stats.connectionsOpened;
    const first = await transport.send({ url: detail(), method: "GET", timeoutMs: 2000 });
    const second = await transport.send({ url: detail(), method: "GET", timeoutMs: 2000 });
    expect(first).toMatchObject({
      kind: "answer",
      status: 401,
      headers: { "content-type": expect.stringContaining("json") },
    });
    expect(JSON.parse((first as { text: string }).text)).toMatchObject({ error_code: "APIGW.0301" });
    expect(second).toMatchObject({ kind: "answer", status: 401 });
    expect(sim.stats.connectionsOpened - before).toBe(1);
  });

  it("ends a slow drip at the time limit, although bytes keep coming", async () => {
    sim.inject(ID, faults.drip(50, { padTo: 4000 }));
    const started = Date.now();
    const result = await transport.send({ url: detail(), method: "GET", timeoutMs: 300 });
    expect(result).toMatchObject({ kind: "network", failure: "timeout", message: "no complete answer within 300 ms" });
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it("stops reading past the body cap, keeping the status", async () => {
    sim.inject(ID, faults.huge(10_000_000, { status: 503, chunked: true }));
    expect(await transport.send({ url: detail(), method: "GET", timeoutMs: 5000 })).toMatchObject({
      kind: "answer",
      status: 503,
      text: undefined,
    });
  });

  it("answers an aborted call at once as a timeout", async () => {
    const controller = new AbortController();
    controller.abort();
    expect(
      await transport.send({ url: detail(), method: "GET", timeoutMs: 5000, signal: controller.signal }),
    ).toMatchObject({
      kind: "network",
      failure: "timeout",
      message: "aborted",
    });
  });

  it("is the only code in lib/ that sends HTTP requests itself (the AWS SDK has its own)", () => {
    const lib = new URL("../../lib/", import.meta.url);
    const speakers = readdirSync(lib)
      .filter((file) => file.endsWith(".ts"))
      .filter((file) => /\bhttps?\)?\.request\(/.test(readFileSync(new URL(file, lib), "utf8")));
    expect(speakers).toEqual(["http-transport.ts"]);
  });
});
