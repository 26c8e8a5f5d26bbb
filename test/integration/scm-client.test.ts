/**
 * The SCM client over real HTTP against the simulator: how much of an answer it reads, what its time
 * limit covers (silence and a slow drip alike), connection failures, keep-alive, id validation,
 * `Retry-After`, and that its errors never carry the token.
 */
import dc from "node:diagnostics_channel";
import type { Socket } from "node:net";
import { inspect } from "node:util";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { cancelSucceeded, classifyAnswer } from "../../lib/classify.ts";
import { describeError } from "../../lib/errors.ts";
import { faults, startScmSimulator, type ScmSimulator } from "../../local/scm-simulator.ts";
import { createScmClient, type ScmClient, type ScmResult } from "../../lib/scm-client.ts";
import { TEST_TOKEN } from "../support/secrets.ts";

const ID = "scs5000000000001";
/** The client's default cap on an answer's body (`maxBodyBytes`). */
const CAP = 64 * 1024;

let sim: ScmSimulator;
let client: ScmClient;

/** Every client socket node opens while a test runs, with each chunk it receives (public diagnostics channel). */
let sockets: { socket: Socket; chunks: { at: number; bytes: number }[] }[] = [];
const onSocket = (message: unknown) => {
  const socket = (message as { socket: Socket }).socket;
  const entry = { socket, chunks: [] as { at: number; bytes: number }[] };
  // A second 'data' listener only observes: the HTTP parser still receives every chunk.
  socket.on("data", (chunk: Buffer) => entry.chunks.push({ at: performance.now(), bytes: chunk.length }));
  sockets.push(entry);
};
const bytesRead = () => sockets.reduce((sum, s) => sum + s.socket.bytesRead, 0);

const clients: ScmClient[] = [];
const newClient = (options: { timeoutMs?: number; maxSockets?: number } = {}) => {
  const c = createScmClient({
    endpoint: sim.url,
    timeoutMs: options.timeoutMs ?? 5000,
    ...(options.maxSockets ? { maxSockets: options.maxSockets } : {}),
  });
  clients.push(c);
  return c;
};
const asAnswer = (result: ScmResult) => {
  expect(result.kind).toBe("answer");
  return result as Extract<ScmResult, { kind: "answer" }>;
};

beforeAll(async () => {
  sim = await startScmSimulator({ tokens: [TEST_TOKEN] });
  dc.subscribe("net.client.socket", onSocket);
});
afterAll(async () => {
  dc.unsubscribe("net.client.socket", onSocket);
  await sim.close();
});
beforeEach(() => {
  sim.reset({ certificates: true });
  sim.addCertificate({ id: ID, status: "CHECKING" });
  sockets = [];
  client = newClient();
});
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});

describe("how much of an answer the client reads", () => {
  it.each([
    ["with Content-Length", false],
    ["chunked", true],
  ])("does not take a huge 200 (%s) for a withdrawal, and stops reading after the cap", async (_name, chunked) => {
    sim.inject(ID, faults.huge(100_000_000, { chunked }));
    const result = asAnswer(await client.cancelCert(ID, TEST_TOKEN));
    expect(result.status).toBe(200);
    expect(result.body).toBeUndefined();
    // Cancel-cert's success is a few bytes of JSON: a body over the cap cannot be one.
    expect(classifyAnswer(result, { tokenRefreshed: false, succeeded: cancelSucceeded(ID) })).toMatchObject({
      kind: "retry",
      reason: "unexpected_answer",
    });
    // 100 MB were offered; the client read its cap and at most a few socket chunks more.
    expect(bytesRead()).toBeGreaterThan(CAP);
    expect(bytesRead()).toBeLessThan(CAP + 512 * 1024);
  });

  it("treats a huge 500 as transient, without reading it all", async () => {
    sim.inject(ID, faults.huge(100_000_000, { status: 500 }));
    const result = asAnswer(await client.cancelCert(ID, TEST_TOKEN));
    expect(result).toMatchObject({ status: 500, body: undefined, errorCode: undefined });
    expect(classifyAnswer(result, { tokenRefreshed: false, succeeded: cancelSucceeded(ID) })).toMatchObject({
      kind: "retry",
      reason: "server_error",
    });
    expect(bytesRead()).toBeLessThan(CAP + 512 * 1024);
  });

  it("reads and parses an error body just under the cap", async () => {
    sim.inject(ID, faults.huge(CAP - 1024, { status: 500 }));
    const result = asAnswer(await client.cancelCert(ID, TEST_TOKEN));
    expect(result).toMatchObject({ status: 500, errorCode: "SCM.0500" });
    expect(result.errorMsg).toMatch(/^x+$/);
  });

  it.each([
    ["an HTML page", faults.unavailable(), 503],
    ["an empty body", faults.badGateway(false), 502],
    ["broken JSON", faults.answer(500, '{"error_code":"SCM.0500","error_msg":'), 500],
    ["a JSON array", faults.answer(400, [{ error_code: "SCM.0010" }]), 400],
  ])("gives the status and no body or error code for %s", async (_name, fault, status) => {
    sim.inject(ID, fault);
    expect(asAnswer(await client.cancelCert(ID, TEST_TOKEN))).toMatchObject({
      status,
      body: status === 400 ? [{ error_code: "SCM.0010" }] : undefined,
      errorCode: undefined,
      errorMsg: undefined,
    });
  });
});

describe("the time limit", () => {
  it("cuts a drip slower than the limit, even though bytes keep arriving", async () => {
    const limited = newClient({ timeoutMs: 600 });
    // 200 OK and its headers at once, then 5 bytes every 50 ms of a 100 kB body: 1000 s in all.
    sim.inject(ID, faults.drip(100, { padTo: 100_000 }));
    const result = await limited.cancelCert(ID, TEST_TOKEN);
    expect(result).toMatchObject({ kind: "network", failure: "timeout", message: "no complete answer within 600 ms" });
    expect(result.durationMs).toBeGreaterThanOrEqual(595);
    // Bytes did keep coming: the headers and several drips, never 600 ms of silence, so an idle
    // timeout would not have fired; the limit is on the whole answer.
    const [socket] = sockets;
    expect(socket!.chunks.length).toBeGreaterThanOrEqual(3);
    const gaps = socket!.chunks.slice(1).map((c, i) => c.at - socket!.chunks[i]!.at);
    expect(Math.max(...gaps)).toBeLessThan(600);
    expect(sim.calls[0]!.status).toBe(200);
  });

  it("answers a drip that finishes inside the limit", async () => {
    sim.inject(ID, faults.drip(2000, { padTo: 300 }));
    expect(asAnswer(await client.cancelCert(ID, TEST_TOKEN))).toMatchObject({
      status: 200,
      body: { cert_id: ID, message: "success" },
    });
  });

  it("cuts silence (a hang) at the limit", async () => {
    const limited = newClient({ timeoutMs: 300 });
    sim.inject(ID, faults.hang());
    const result = await limited.cancelCert(ID, TEST_TOKEN);
    expect(result).toMatchObject({ kind: "network", failure: "timeout" });
    expect(result.durationMs).toBeGreaterThanOrEqual(295);
  });

  it("uses the shorter of the call's limit and the client's own", async () => {
    sim.inject(ID, faults.hang());
    const result = await client.cancelCert(ID, TEST_TOKEN, { timeoutMs: 200 });
    expect(result).toMatchObject({ kind: "network", failure: "timeout", message: "no complete answer within 200 ms" });
  });

  it("answers at once, sends nothing and leaves no stray error behind for an already-aborted signal", async () => {
    const stray: unknown[] = [];
    const record = (error: unknown) => stray.push(error);
    process.prependListener("uncaughtException", record);
    try {
      const signal = AbortSignal.abort();
      expect(await client.cancelCert(ID, TEST_TOKEN, { signal })).toMatchObject({
        kind: "network",
        failure: "timeout",
        message: "aborted",
      });
      // The destroyed request reports "socket hang up" on a later turn of the event loop.
      for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
      expect(stray).toEqual([]);
      expect(sim.stats.requests).toBe(0);
    } finally {
      process.off("uncaughtException", record);
    }
  });

  it("stops a call in flight when its signal aborts", async () => {
    sim.inject(ID, faults.hang());
    const controller = new AbortController();
    const pending = client.cancelCert(ID, TEST_TOKEN, { signal: controller.signal });
    await waitFor(() => sim.calls.length === 1);
    controller.abort();
    expect(await pending).toMatchObject({ kind: "network", failure: "timeout", message: "aborted" });
  });
});

describe("connection failures", () => {
  it("reports a reset as a connection failure", async () => {
    sim.inject(ID, faults.reset());
    const result = await client.cancelCert(ID, TEST_TOKEN);
    expect(result).toMatchObject({ kind: "network", failure: "connection" });
    expect((result as { message: string }).message).toMatch(/ECONNRESET/);
    expect(classifyAnswer(result, { tokenRefreshed: false, succeeded: cancelSucceeded(ID) })).toMatchObject({
      kind: "retry",
      reason: "connection",
    });
  });

  it("reports a refused connection as a connection failure", async () => {
    const closed = await startScmSimulator();
    const url = closed.url;
    await closed.close();
    const nowhere = createScmClient({ endpoint: url, timeoutMs: 2000 });
    clients.push(nowhere);
    const result = await nowhere.cancelCert(ID, TEST_TOKEN);
    expect(result).toMatchObject({ kind: "network", failure: "connection" });
    expect((result as { message: string }).message).toMatch(/^ECONNREFUSED: /);
  });

  it("recovers after a reset: the next call on the same client succeeds", async () => {
    sim.inject(ID, faults.reset());
    await client.cancelCert(ID, TEST_TOKEN);
    expect(asAnswer(await client.cancelCert(ID, TEST_TOKEN)).status).toBe(200);
  });
});

describe("keep-alive", () => {
  it("opens at most `concurrency` connections for 100 calls at concurrency 10", async () => {
    const ids = Array.from({ length: 100 }, (_, i) => `scs6${String(i).padStart(12, "0")}`);
    for (const id of ids) sim.addCertificate({ id, status: "CHECKING" });
    const statuses: number[] = [];
    let next = 0;
    const lane = async () => {
      while (next < ids.length) {
        const id = ids[next++]!;
        statuses.push(asAnswer(await client.cancelCert(id, TEST_TOKEN)).status);
      }
    };
    await Promise.all(Array.from({ length: 10 }, lane));
    expect(statuses).toEqual(ids.map(() => 200));
    expect(sim.stats.requests).toBe(100);
    expect(sim.stats.connectionsOpened).toBeGreaterThan(0);
    expect(sim.stats.connectionsOpened).toBeLessThanOrEqual(10);
  });

  it("reuses one connection for sequential calls", async () => {
    for (let i = 0; i < 20; i++) await client.getCertificate(ID, TEST_TOKEN);
    expect(sim.stats.connectionsOpened).toBe(1);
  });
});

describe("certificate ids", () => {
  it("go into the path as they are, which the simulator decodes to the same id", async () => {
    await client.cancelCert(ID, TEST_TOKEN);
    await client.getCertificate(ID, TEST_TOKEN);
    expect(sim.calls.map((c) => [c.method, c.path, c.certificateId])).toEqual([
      ["POST", `/v3/scm/certificates/${ID}/cancel-cert`, ID],
      ["GET", `/v3/scm/certificates/${ID}`, ID],
    ]);
  });

  it.each([
    "../../etc/passwd",
    "scs1000000000001/../x",
    "%2e%2e%2fcancel-cert",
    "scs100000000000\u0000",
    "scs10000000000011",
    "scs100000000001",
    " scs1000000000001",
    "scs10000000000é1",
    "scs1000000000?01",
    "scs100000000#001",
    "",
  ])("refuses %j with a TypeError before any request", async (bad) => {
    for (const call of [() => client.cancelCert(bad, TEST_TOKEN), () => client.getCertificate(bad, TEST_TOKEN)]) {
      await expect(async () => call()).rejects.toThrow(
        new TypeError("certificate_id must be exactly 16 characters A-Z, a-z, 0-9"),
      );
    }
    expect(sim.stats.requests).toBe(0);
    expect(sim.stats.connectionsOpened).toBe(0);
  });
});

describe("Retry-After", () => {
  const throttled = async (value: string | undefined) => {
    sim.inject(ID, faults.throttle(value));
    return asAnswer(await client.cancelCert(ID, TEST_TOKEN));
  };

  it.each([
    ["3", 3000],
    ["0", 0],
    ["2.5", 2500],
    [" 7 ", 7000],
    ["soon", undefined],
    ["", undefined],
  ])("reads %j as %j ms", async (value, expected) => {
    expect((await throttled(value)).retryAfterMs).toBe(expected);
  });

  it("is undefined when absent", async () => {
    expect((await throttled(undefined)).retryAfterMs).toBeUndefined();
  });

  it("reads an HTTP date as the time left until it, and a past date as 0", async () => {
    const future = new Date(Date.now() + 60_000).toUTCString();
    const left = (await throttled(future)).retryAfterMs!;
    expect(left).toBeGreaterThan(55_000);
    expect(left).toBeLessThanOrEqual(60_000);
    expect((await throttled("Wed, 21 Oct 2015 07:28:00 GMT")).retryAfterMs).toBe(0);
  });

  it("is passed to the retry decision of a throttled answer", async () => {
    const result = await throttled("4");
    expect(classifyAnswer(result, { tokenRefreshed: false, succeeded: cancelSucceeded(ID) })).toEqual({
      kind: "retry",
      reason: "throttled",
      retryAfterMs: 4000,
    });
  });
});

describe("the token", () => {
  it("is sent in X-Auth-Token only (the simulator accepts it)", async () => {
    await client.cancelCert(ID, TEST_TOKEN);
    expect(sim.calls[0]).toMatchObject({ tokenOk: true, path: `/v3/scm/certificates/${ID}/cancel-cert` });
    expect(sim.calls[0]!.path).not.toContain(TEST_TOKEN);
  });

  it("never appears in the TypeError node throws for a token it cannot put in a header", async () => {
    const unusable = `${TEST_TOKEN}\u0100`;
    const error = await client.cancelCert(ID, unusable).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TypeError);
    for (const text of [
      String(error),
      (error as Error).stack ?? "",
      describeError(error),
      inspect(error),
      JSON.stringify(error),
    ]) {
      expect(text).not.toContain(TEST_TOKEN);
    }
    expect(sim.stats.requests).toBe(0);
  });

  it("never appears in a network failure's message", async () => {
    sim.inject(ID, faults.reset());
    const result = await client.cancelCert(ID, TEST_TOKEN);
    expect(JSON.stringify(result)).not.toContain(TEST_TOKEN);
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
