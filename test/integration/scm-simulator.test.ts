/**
 * The SCM simulator, over real HTTP (node's fetch and node:http): the API page's rules, every
 * fault kind, the IAM endpoint, the listing, the counters and the demo scenario.
 */
import http from "node:http";
import { afterEach, describe, expect, test } from "vitest";
import { DEMO } from "../../local/demo-certificates.ts";
import { faults, ODD_SUCCESSES, seedDemoScenario, startScmSimulator } from "../../local/scm-simulator.ts";
import type { ScmSimulator, ScmSimulatorOptions } from "../../local/scm-simulator.ts";

const TOKEN = `${"T".repeat(20)}0123456789abcdefghij`; // 40 characters
const ID = "scs1481110651012";
const JSON_TYPE = "application/json;charset=UTF-8";

let sims: ScmSimulator[] = [];

async function start(options: ScmSimulatorOptions = {}): Promise<ScmSimulator> {
  const sim = await startScmSimulator({ tokens: [TOKEN], ...options });
  sims.push(sim);
  return sim;
}

/** Polls `condition` every 5 ms, for at most 2 s. */
async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 2000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in 2 s");
    await new Promise((r) => setTimeout(r, 5));
  }
}

afterEach(async () => {
  await Promise.all(sims.map((sim) => sim.close()));
  sims = [];
});

function cancel(sim: ScmSimulator, id: string, init: { token?: string | null; signal?: AbortSignal } = {}) {
  const headers: Record<string, string> = {};
  const token = init.token === undefined ? TOKEN : init.token;
  if (token !== null) headers["X-Auth-Token"] = token;
  return fetch(`${sim.url}/v3/scm/certificates/${id}/cancel-cert`, {
    method: "POST",
    headers,
    ...(init.signal ? { signal: init.signal } : {}),
  });
}

function get(sim: ScmSimulator, path: string, token = TOKEN) {
  return fetch(`${sim.url}${path}`, { headers: { "X-Auth-Token": token } });
}

function iamBody(user: string, password: string, scope: object = { domain: { name: "acme" } }) {
  return JSON.stringify({
    auth: {
      identity: { methods: ["password"], password: { user: { name: user, password, domain: { name: "acme" } } } },
      scope,
    },
  });
}

function exchange(sim: ScmSimulator, user = "ops", password = "s3cret", scope?: object) {
  return fetch(`${sim.url}/v3/auth/tokens?nocatalog=true`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: iamBody(user, password, scope),
  });
}

/** A GET with node:http and the given agent; resolves with the status once the body is read. */
function httpGet(url: string, agent: http.Agent | false): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent, headers: { "X-Auth-Token": TOKEN } }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      })
      .on("error", reject);
  });
}

describe("cancel-cert follows the API page", () => {
  test("a missing, short or unknown token gets 401 APIGW.0301, before anything else", async () => {
    const sim = await start({ certificates: [{ id: ID, status: "CHECKING" }] });
    for (const token of [null, "short-token", "U".repeat(40)]) {
      const res = await cancel(sim, ID, { token });
      expect(res.status).toBe(401);
      expect(res.headers.get("content-type")).toBe(JSON_TYPE);
      const body = (await res.json()) as { error_code: string; error_msg: string };
      expect(body.error_code).toBe("APIGW.0301");
      expect(body.error_msg).toMatch(/^Incorrect IAM authentication information: /);
    }
    // even with a bad id, the token is checked first
    expect((await cancel(sim, "bad", { token: null })).status).toBe(401);
    expect(sim.certificate(ID)?.status).toBe("CHECKING");
    expect(sim.calls.map((c) => c.tokenOk)).toEqual([false, false, false, false]);
  });

  test("the certificate id must be exactly 16 characters [A-Za-z0-9]", async () => {
    const sim = await start();
    for (const id of [
      "scs148111065101",
      "scs14811106510123",
      "scs148111065101%21",
      "..%2F..%2Fetc%2Fpasswd",
      "scs1481110651_12",
    ]) {
      const res = await cancel(sim, id);
      expect(res.status, id).toBe(400);
      expect(await res.json()).toEqual({ error_code: "SCM.0008", error_msg: "abnormal certificate id" });
    }
    expect(sim.calls[3]?.certificateId).toBe("../../etc/passwd");
  });

  test("under review → 200 {cert_id, message} and CANCELCHECKING; a second call → SCM.0010", async () => {
    const sim = await start({ certificates: [{ id: ID, status: "CHECKING" }] });
    const res = await cancel(sim, ID);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe(JSON_TYPE);
    expect(await res.json()).toEqual({ cert_id: ID, message: "success" });
    expect(sim.certificate(ID)?.status).toBe("CANCELCHECKING");
    expect(sim.withdrawals(ID)).toBe(1);

    const again = await cancel(sim, ID);
    expect(again.status).toBe(400);
    expect(((await again.json()) as { error_code: string }).error_code).toBe("SCM.0010");

    // put it back under review: a second successful withdrawal is observable
    sim.setStatus(ID, "SUPPLEMENTCHECKING");
    expect((await cancel(sim, ID)).status).toBe(200);
    expect(sim.withdrawals(ID)).toBe(2);
    expect(sim.calls.map((c) => [c.kind, c.status, c.tokenRef])).toEqual([
      ["cancel", 200, "static#0"],
      ["cancel", 400, "static#0"],
      ["cancel", 200, "static#0"],
    ]);
  });

  test("every review state can be withdrawn; every other status answers 400 SCM.0010", async () => {
    const sim = await start();
    const review = ["CHECKING", "CHECKING_ORG", "SUPPLEMENTCHECKING"] as const;
    const others = [
      "PAID",
      "ISSUED",
      "CANCELCHECKING",
      "UNPASSED",
      "EXPIRED",
      "REVOKING",
      "REVOKED",
      "UPLOAD",
      "ISSUING",
    ] as const;
    const all = [...review, ...others];
    for (const [i, status] of all.entries()) sim.addCertificate({ id: `scs${String(i).padStart(13, "0")}`, status });
    const statuses = await Promise.all(
      all.map((_, i) => cancel(sim, `scs${String(i).padStart(13, "0")}`).then((r) => r.status)),
    );
    expect(statuses).toEqual([200, 200, 200, ...others.map(() => 400)]);
    const res = await cancel(sim, `scs${String(review.length).padStart(13, "0")}`);
    expect(await res.json()).toEqual({
      error_code: "SCM.0010",
      error_msg: "The operation is not allowed for the certificate's current status",
    });
  });

  test("forbidden → 403 SCM.0003, unknown → 404 SCM.0020, for cancel-cert and details", async () => {
    const sim = await start({ certificates: [{ id: ID, status: "CHECKING", forbidden: true }] });
    for (const res of [await cancel(sim, ID), await get(sim, `/v3/scm/certificates/${ID}`)]) {
      expect(res.status).toBe(403);
      expect(((await res.json()) as { error_code: string }).error_code).toBe("SCM.0003");
    }
    for (const res of [await cancel(sim, DEMO.notFound), await get(sim, `/v3/scm/certificates/${DEMO.notFound}`)]) {
      expect(res.status).toBe(404);
      expect(((await res.json()) as { error_code: string }).error_code).toBe("SCM.0020");
    }
    expect(sim.certificate(ID)?.status).toBe("CHECKING");
  });

  test("businessErrorsAs500: every SCM.* business error comes inside a 500, globally or per certificate; 401 stays", async () => {
    const sim = await start({
      businessErrorsAs500: true,
      certificates: [
        { id: ID, status: "ISSUED" },
        { id: DEMO.forbidden, status: "CHECKING", forbidden: true },
      ],
    });
    const codeOf = async (res: Response) => [res.status, ((await res.json()) as { error_code: string }).error_code];
    expect(await codeOf(await cancel(sim, ID))).toEqual([500, "SCM.0010"]);
    expect(await codeOf(await cancel(sim, DEMO.forbidden))).toEqual([500, "SCM.0003"]);
    expect(await codeOf(await cancel(sim, DEMO.notFound))).toEqual([500, "SCM.0020"]);
    expect(await codeOf(await get(sim, "/v3/scm/certificates?limit=7"))).toEqual([500, "SCM.0005"]);
    expect(await codeOf(await cancel(sim, ID, { token: "x".repeat(40) }))).toEqual([401, "APIGW.0301"]);
    expect(await codeOf(await get(sim, "/v3/scm/nothing"))).toEqual([404, "APIG.0101"]);

    sim.businessErrorsAs500 = false;
    sim.addCertificate({ id: DEMO.rejected, status: "ISSUED", businessErrorsAs500: true });
    expect(await codeOf(await cancel(sim, DEMO.rejected))).toEqual([500, "SCM.0010"]);
    expect(await codeOf(await cancel(sim, ID))).toEqual([400, "SCM.0010"]);
    expect(sim.certificate(ID)?.status).toBe("ISSUED");
  });

  test("details show the certificate; unknown routes get the gateway's 404", async () => {
    const sim = await start({ certificates: [{ id: ID, status: "ISSUED", name: "shop", domain: "shop.example.com" }] });
    const res = await get(sim, `/v3/scm/certificates/${ID}`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      id: ID,
      status: "ISSUED",
      name: "shop",
      domain: "shop.example.com",
      type: "DV_SSL_CERT",
    });
    expect((await get(sim, `/v3/scm/certificates/${ID}`, "x".repeat(31))).status).toBe(401);
    const other = await get(sim, `/v3/scm/certificates/${ID}/cancel-cert`); // GET, not POST
    expect(other.status).toBe(404);
    expect(((await other.json()) as { error_code: string }).error_code).toBe("APIG.0101");
    expect(sim.calls.map((c) => c.kind)).toEqual(["detail", "detail", "other"]);
  });

  test("settleMs moves a withdrawn certificate to PAID", async () => {
    const sim = await start({ certificates: [{ id: ID, status: "CHECKING" }], settleMs: 150 });
    expect((await cancel(sim, ID)).status).toBe(200);
    expect(sim.certificate(ID)?.status).toBe("CANCELCHECKING");
    await until(() => sim.certificate(ID)?.status === "PAID");
  });

  test("a static token of fewer than 32 characters is refused at start; tokens can be rotated", async () => {
    await expect(startScmSimulator({ tokens: ["too-short"] })).rejects.toThrow(/32/);
    const sim = await start({ certificates: [{ id: ID, status: "CHECKING" }] });
    const rotated = "R".repeat(32);
    expect(sim.acceptToken(rotated)).toBe("static#1");
    sim.rejectToken(TOKEN);
    expect((await cancel(sim, ID)).status).toBe(401);
    expect((await cancel(sim, ID, { token: rotated })).status).toBe(200);
    expect(sim.calls.at(-1)?.tokenRef).toBe("static#1");
    // tokens may be far longer than node's default 16 KiB header limit (the API allows 2 MiB)
    const long = "L".repeat(100_000);
    sim.acceptToken(long);
    sim.setStatus(ID, "CHECKING");
    expect((await cancel(sim, ID, { token: long })).status).toBe(200);
  });
});

describe("fault injection", () => {
  test("answer faults are consumed in order, one per request, then the real answer comes", async () => {
    const sim = await start({ certificates: [{ id: ID, status: "CHECKING" }] });
    sim.inject(
      ID,
      faults.internalError(),
      faults.badGateway(),
      faults.unavailable(false),
      faults.gatewayTimeout(),
      faults.scmError(400, "SCM.0016", "order exception"),
    );
    expect(sim.pendingFaults()).toBe(5);
    const seen: [number, string][] = [];
    for (let i = 0; i < 6; i++) {
      const res = await cancel(sim, ID);
      seen.push([res.status, await res.text()]);
    }
    expect(seen).toEqual([
      [500, '{"error_code":"SCM.0500","error_msg":"internal error"}'],
      [502, '{"error_code":"APIG.0202","error_msg":"Backend unavailable."}'],
      [503, ""],
      [504, '{"error_code":"APIG.0203","error_msg":"Backend timeout."}'],
      [400, '{"error_code":"SCM.0016","error_msg":"order exception"}'],
      [200, `{"cert_id":"${ID}","message":"success"}`],
    ]);
    expect(sim.withdrawals(ID)).toBe(1);
    expect(sim.calls.map((c) => c.fault)).toEqual(["answer", "answer", "answer", "answer", "answer", undefined]);
  });

  test("targets: a certificate id, '*', and a narrowed scope", async () => {
    const other = "scs0000000000009";
    const sim = await start({
      certificates: [
        { id: ID, status: "CHECKING" },
        { id: other, status: "ISSUED" },
      ],
    });
    sim.inject({ certificateId: ID, call: "detail" }, faults.internalError());
    sim.inject(other, faults.internalError());
    sim.inject("*", faults.badGateway());
    expect((await cancel(sim, ID)).status).toBe(502); // only '*' matches a cancel of ID
    expect((await get(sim, `/v3/scm/certificates/${ID}`)).status).toBe(500);
    expect((await get(sim, `/v3/scm/certificates/${other}`)).status).toBe(500);
    expect((await get(sim, `/v3/scm/certificates/${other}`)).status).toBe(200);
    expect(sim.pendingFaults()).toBe(0);
  });

  test("persistent faults last until clearFaults(); one-shot faults win over them", async () => {
    const sim = await start({ certificates: [{ id: ID, status: "CHECKING" }] });
    sim.injectAlways(ID, faults.internalError());
    sim.inject(ID, faults.unavailable());
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await cancel(sim, ID)).status);
    expect(statuses).toEqual([503, 500, 500, 500]);
    sim.clearFaults();
    expect((await cancel(sim, ID)).status).toBe(200);
  });

  test("throttle: 429 APIG.0308 with Retry-After", async () => {
    const sim = await start({ certificates: [{ id: ID, status: "CHECKING" }] });
    sim.inject(ID, faults.throttle(2), faults.throttle());
    const first = await cancel(sim, ID);
    expect(first.status).toBe(429);
    expect(first.headers.get("retry-after")).toBe("2");
    expect(await first.json()).toEqual({
      error_code: "APIG.0308",
      error_msg: "The throttling threshold has been reached: policy user over ratelimit,limit:20,time:1 second",
    });
    const second = await cancel(sim, ID);
    expect(second.status).toBe(429);
    expect(second.headers.get("retry-after")).toBeNull();
    expect(sim.stats.throttled).toBe(2);
    expect(sim.certificate(ID)?.status).toBe("CHECKING");
  });

  test("reset: the client gets a socket error; afterEffect withdraws first", async () => {
    const sim = await start({ certificates: [{ id: ID, status: "CHECKING" }] });
    sim.inject(ID, faults.reset(), faults.reset({ afterEffect: true }));
    await expect(cancel(sim, ID)).rejects.toThrow(TypeError);
    expect(sim.certificate(ID)?.status).toBe("CHECKING");
    await expect(cancel(sim, ID)).rejects.toThrow(TypeError);
    expect(sim.certificate(ID)?.status).toBe("CANCELCHECKING");
    expect(sim.withdrawals(ID)).toBe(1);
    expect(sim.calls.map((c) => [c.status, c.fault])).toEqual([
      [0, "reset"],
      [0, "reset"],
    ]);
  });

  test("hang: no answer until the client aborts; close() ends hung connections", async () => {
    const sim = await start({ certificates: [{ id: ID, status: "CHECKING" }] });
    sim.inject(ID, faults.hang(), faults.hang());
    const started = Date.now();
    await expect(cancel(sim, ID, { signal: AbortSignal.timeout(150) })).rejects.toThrow(/abort|timeout/i);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    await until(() => sim.stats.inFlight === 0);

    const hung = cancel(sim, ID).then(
      () => "answered",
      () => "failed",
    );
    await until(() => sim.stats.inFlight === 1);
    const closing = Date.now();
    await sim.close();
    expect(await hung).toBe("failed");
    expect(Date.now() - closing).toBeLessThan(1000);
    expect(sim.certificate(ID)?.status).toBe("CHECKING");
  });

  test("delay: the normal answer, later", async () => {
    const sim = await start({ certificates: [{ id: ID, status: "CHECKING" }] });
    sim.inject(ID, faults.delay(120));
    const started = Date.now();
    const res = await cancel(sim, ID);
    expect(Date.now() - started).toBeGreaterThanOrEqual(110);
    expect(res.status).toBe(200);
    expect(sim.withdrawals(ID)).toBe(1);
  });

  test("drip: headers at once, the body slowly (a client timeout cuts it)", async () => {
    const sim = await start({
      certificates: [
        { id: ID, status: "CHECKING" },
        { id: DEMO.withdrawn, status: "CHECKING" },
      ],
    });
    sim.inject(ID, faults.drip(10));
    // 10 bytes/s: the ~50-byte body needs ~5 s, so getting the status before the 400 ms timeout
    // proves the headers came at once; reading the body is then cut by the timeout.
    const res = await cancel(sim, ID, { signal: AbortSignal.timeout(400) });
    expect(res.status).toBe(200);
    expect(Number(res.headers.get("content-length"))).toBe(`{"cert_id":"${ID}","message":"success"}`.length);
    await expect(res.text()).rejects.toThrow(/abort|timeout/i);

    sim.inject(DEMO.withdrawn, faults.drip(400, { padTo: 120 }));
    const t0 = Date.now();
    const ok = await cancel(sim, DEMO.withdrawn);
    const text = await ok.text();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(text).toHaveLength(120);
    expect(JSON.parse(text)).toEqual({ cert_id: DEMO.withdrawn, message: "success" });
  });

  test("huge: a multi-megabyte body, with Content-Length or chunked", async () => {
    const sim = await start({ certificates: [{ id: ID, status: "CHECKING" }] });
    const bytes = 3 * 1024 * 1024;
    sim.inject(ID, faults.huge(bytes), faults.huge(bytes, { status: 500, chunked: true }));
    const ok = await cancel(sim, ID);
    expect(ok.status).toBe(200);
    expect(ok.headers.get("content-length")).toBe(String(bytes));
    const okText = await ok.text();
    expect(okText).toHaveLength(bytes);
    expect(JSON.parse(okText)).toMatchObject({ cert_id: ID, message: "success" });
    expect(sim.withdrawals(ID)).toBe(0); // replaced, not processed

    const failed = await cancel(sim, ID);
    expect(failed.status).toBe(500);
    expect(failed.headers.get("content-length")).toBeNull();
    const body = (await failed.json()) as { error_code: string; error_msg: string };
    expect(body.error_code).toBe("SCM.0500");
    expect(body.error_msg.length).toBeGreaterThan(bytes - 100);
  });

  test("oddSuccess: each 2xx that is not cancel-cert's success, without withdrawing", async () => {
    const sim = await start({ certificates: [{ id: ID, status: "CHECKING" }] });
    for (const kind of ODD_SUCCESSES) sim.inject(ID, faults.oddSuccess(kind));
    const seen: [number, string][] = [];
    for (const _kind of ODD_SUCCESSES) {
      const res = await cancel(sim, ID);
      seen.push([res.status, await res.text()]);
    }
    expect(seen).toEqual([
      [200, expect.stringMatching(/^<!DOCTYPE html>/)],
      [200, '{"cert_id":"scs'],
      [200, '{"error_code":"SCM.0010"}'],
      [204, ""],
      [200, '{"cert_id":"scs0000000000000","message":"success"}'],
    ]);
    expect(sim.withdrawals(ID)).toBe(0);
    expect(sim.certificate(ID)?.status).toBe("CHECKING");
  });

  test("IAM faults target 'iam' only", async () => {
    const sim = await start({
      iamUsers: [{ domain: "acme", user: "ops", password: "s3cret" }],
      certificates: [{ id: ID, status: "CHECKING" }],
    });
    sim.inject("iam", faults.unavailable());
    sim.injectAlways("*", faults.internalError());
    expect((await exchange(sim)).status).toBe(503);
    expect((await exchange(sim)).status).toBe(201);
    expect((await cancel(sim, ID)).status).toBe(500);
    expect(sim.iamExchanges).toBe(1);
  });
});

describe("gateway rate limit and latency", () => {
  test("over rateLimitPerMinute → 429 whose message states the per-minute limit", async () => {
    const sim = await start({
      rateLimitPerSecond: 10,
      rateLimitPerMinute: 4,
      certificates: [{ id: ID, status: "ISSUED" }],
    });
    const answers = [];
    for (let i = 0; i < 6; i++) answers.push(await get(sim, `/v3/scm/certificates/${ID}`));
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 200, 429, 429]);
    expect(await answers[4]!.json()).toEqual({
      error_code: "APIG.0308",
      error_msg: "The throttling threshold has been reached: policy user over ratelimit,limit:4,time:1 minute",
    });
  });

  test("over rateLimitPerSecond → 429 APIG.0308, counted; the next second passes again", async () => {
    const sim = await start({ rateLimitPerSecond: 3, certificates: [{ id: ID, status: "ISSUED" }] });
    const answers = await Promise.all(Array.from({ length: 5 }, () => get(sim, `/v3/scm/certificates/${ID}`)));
    const statuses = answers.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    const throttled = answers.find((r) => r.status === 429)!;
    expect(((await throttled.json()) as { error_msg: string }).error_msg).toContain("limit:3,time:1 second");
    expect(sim.stats.throttled).toBe(2);
    expect(sim.calls.filter((c) => c.fault === "rate-limit")).toHaveLength(2);
    await new Promise((r) => setTimeout(r, 1010));
    expect((await get(sim, `/v3/scm/certificates/${ID}`)).status).toBe(200);
  });

  test("latencyMs is added to SCM calls, maxInFlight sees parallel cancel-cert calls", async () => {
    const ids = Array.from({ length: 6 }, (_, i) => `scs${String(i).padStart(13, "0")}`);
    const sim = await start({ latencyMs: 100, certificates: ids.map((id) => ({ id, status: "CHECKING" as const })) });
    const started = Date.now();
    const statuses = await Promise.all(ids.map((id) => cancel(sim, id).then((r) => r.status)));
    expect(statuses).toEqual(ids.map(() => 200));
    expect(Date.now() - started).toBeGreaterThanOrEqual(95);
    expect(sim.stats).toMatchObject({ maxInFlight: 6, inFlight: 0, requests: 6 });
  });
});

describe("connections", () => {
  test("connectionsOpened: one with a keep-alive agent, one per request without", async () => {
    const sim = await start({ certificates: [{ id: ID, status: "ISSUED" }] });
    const url = `${sim.url}/v3/scm/certificates/${ID}`;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; i < 3; i++) expect(await httpGet(url, agent)).toBe(200);
    } finally {
      agent.destroy();
    }
    expect(sim.stats.connectionsOpened).toBe(1);
    sim.reset();
    for (let i = 0; i < 3; i++) expect(await httpGet(url, false)).toBe(200);
    expect(sim.stats).toMatchObject({ connectionsOpened: 3, requests: 3 });
  });
});

describe("IAM tokens", () => {
  const iamUsers = [{ domain: "acme", user: "ops", password: "s3cret" }];

  test("valid credentials → 201, X-Subject-Token, expires_at; SCM accepts it; it is never recorded", async () => {
    const sim = await start({ tokens: [], iamUsers, certificates: [{ id: ID, status: "CHECKING" }] });
    const before = Date.now();
    const res = await exchange(sim);
    expect(res.status).toBe(201);
    const token = res.headers.get("x-subject-token") ?? "";
    expect(token.length).toBeGreaterThanOrEqual(64);
    const body = (await res.json()) as {
      token: { expires_at: string; issued_at: string; methods: string[]; user: Record<string, unknown> };
    };
    expect(body.token.methods).toEqual(["password"]);
    expect(body.token.user).toMatchObject({ name: "ops", domain: { name: "acme" } });
    expect(JSON.stringify(body)).not.toContain("s3cret");
    const expiresAt = Date.parse(body.token.expires_at);
    expect(expiresAt - before).toBeGreaterThanOrEqual(24 * 3600 * 1000 - 1000);
    expect(expiresAt - before).toBeLessThanOrEqual(24 * 3600 * 1000 + 1000);
    expect(Date.parse(body.token.issued_at)).toBeGreaterThanOrEqual(before - 1);

    expect((await cancel(sim, ID, { token })).status).toBe(200);
    expect(sim.iamExchanges).toBe(1);
    expect(sim.calls.map((c) => [c.kind, c.tokenRef])).toEqual([
      ["iam", "iam#1"],
      ["cancel", "iam#1"],
    ]);
    expect(JSON.stringify(sim.calls)).not.toContain(token);
  });

  test("project scope is accepted; bad credentials → 401 in IAM's own error shape; bad body → 400", async () => {
    const sim = await start({ iamUsers });
    expect((await exchange(sim, "ops", "s3cret", { project: { name: "ap-southeast-1" } })).status).toBe(201);
    const wrong = await exchange(sim, "ops", "wrong");
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get("x-subject-token")).toBeNull();
    expect(await wrong.json()).toEqual({
      error: { code: 401, message: "The username or password is wrong.", title: "Unauthorized" },
    });
    expect((await exchange(sim, "nobody", "s3cret")).status).toBe(401);
    const garbage = await fetch(`${sim.url}/v3/auth/tokens`, { method: "POST", body: "not json" });
    expect(garbage.status).toBe(400);
    expect(sim.iamExchanges).toBe(1);
  });

  test("revokeIamTokens() → SCM answers 401 for issued tokens; a new exchange works", async () => {
    const sim = await start({ iamUsers, certificates: [{ id: ID, status: "ISSUED" }] });
    const token = (await exchange(sim)).headers.get("x-subject-token") ?? "";
    expect((await get(sim, `/v3/scm/certificates/${ID}`, token)).status).toBe(200);
    sim.revokeIamTokens();
    const revoked = await get(sim, `/v3/scm/certificates/${ID}`, token);
    expect(revoked.status).toBe(401);
    expect(((await revoked.json()) as { error_code: string }).error_code).toBe("APIGW.0301");
    expect((await get(sim, `/v3/scm/certificates/${ID}`)).status).toBe(200); // static tokens are unaffected
    const fresh = (await exchange(sim)).headers.get("x-subject-token") ?? "";
    expect((await get(sim, `/v3/scm/certificates/${ID}`, fresh)).status).toBe(200);
    expect(sim.iamExchanges).toBe(2);
  });

  test("tokens expire after iamTokenTtlMs", async () => {
    const sim = await start({ iamUsers, iamTokenTtlMs: 200, certificates: [{ id: ID, status: "ISSUED" }] });
    const res = await exchange(sim);
    const token = res.headers.get("x-subject-token") ?? "";
    const body = (await res.json()) as { token: { expires_at: string; issued_at: string } };
    expect(Date.parse(body.token.expires_at) - Date.parse(body.token.issued_at)).toBe(200);
    expect((await get(sim, `/v3/scm/certificates/${ID}`, token)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 250));
    const expired = await get(sim, `/v3/scm/certificates/${ID}`, token);
    expect(expired.status).toBe(401);
    expect(((await expired.json()) as { error_msg: string }).error_msg).toContain("must be updated");
  });
});

describe("listing", () => {
  async function listing(sim: ScmSimulator, query: string) {
    const res = await get(sim, `/v3/scm/certificates${query}`);
    return {
      status: res.status,
      body: (await res.json()) as {
        certificates?: { id: string; status: string }[];
        total_count?: number;
        error_code?: string;
      },
    };
  }

  async function seeded(options: ScmSimulatorOptions = {}) {
    const sim = await start(options);
    for (let i = 0; i < 25; i++) {
      sim.addCertificate({
        id: `scs${String(i).padStart(13, "0")}`,
        status: i % 5 === 0 ? "CHECKING" : "ISSUED",
        name: i < 3 ? `shop-${i}` : `cert-${i}`,
        domain: i === 3 ? "www.shop.example.com" : `host${i}.example.com`,
      });
    }
    sim.addCertificate({ id: "scs9999999999999", status: "CHECKING", forbidden: true });
    return sim;
  }

  test("limit and offset defaults and bounds", async () => {
    const sim = await seeded();
    const first = await listing(sim, "");
    expect(first.status).toBe(200);
    expect(first.body.total_count).toBe(25); // the forbidden one is not the user's
    expect(first.body.certificates?.map((c) => c.id)).toEqual(
      Array.from({ length: 10 }, (_, i) => `scs${String(i).padStart(13, "0")}`),
    );
    expect((await listing(sim, "?limit=50&offset=20")).body.certificates).toHaveLength(5);
    expect((await listing(sim, "?limit=10&offset=100")).body).toEqual({ certificates: [], total_count: 25 });
    expect((await listing(sim, "?limit=20")).body.certificates).toHaveLength(20);
    for (const query of [
      "?limit=9",
      "?limit=51",
      "?limit=15",
      "?limit=30",
      "?sort_dir=asc",
      "?sort_key=certExpiredTime&sort_dir=",
      "?limit=abc",
      "?offset=101",
      "?offset=-1",
      "?status=NOPE",
      "?sort_dir=UP",
      "?sort_key=name",
    ]) {
      const res = await listing(sim, query);
      expect(res.status, query).toBe(400);
      expect(res.body.error_code, query).toBe("SCM.0005");
    }
  });

  test("offset counts records, or pages with listOffsetMode 'pages'", async () => {
    const sim = await seeded();
    expect((await listing(sim, "?offset=1")).body.certificates?.[0]?.id).toBe("scs0000000000001");
    sim.listOffsetMode = "pages";
    const page = await listing(sim, "?offset=1");
    expect(page.body.certificates?.[0]?.id).toBe("scs0000000000010");
    expect((await listing(sim, "?offset=2")).body.certificates).toHaveLength(5);
  });

  test("status and content filters, sorting, and the token rule", async () => {
    const sim = await seeded();
    const checking = await listing(sim, "?status=CHECKING&limit=50");
    expect(checking.body.total_count).toBe(5);
    expect(checking.body.certificates?.every((c) => c.status === "CHECKING")).toBe(true);
    const shop = await listing(sim, "?content=SHOP");
    expect(shop.body.certificates?.map((c) => c.id)).toEqual([
      "scs0000000000000",
      "scs0000000000001",
      "scs0000000000002",
      "scs0000000000003",
    ]);
    const sorted = await listing(sim, "?sort_key=certStatus&sort_dir=ASC&limit=50");
    expect(sorted.body.certificates?.[0]?.status).toBe("CHECKING");
    expect((await listing(sim, "?status=ALL&sort_dir=DESC&sort_key=certUpdateTime")).status).toBe(200);
    expect((await get(sim, "/v3/scm/certificates", "x".repeat(40))).status).toBe(401);
    expect(sim.calls.every((c) => c.kind === "list")).toBe(true);
  });
});

describe("observation", () => {
  test("calls record kind, status and token validity; reset() clears them but keeps certificates", async () => {
    const sim = await start({ certificates: [{ id: ID, status: "CHECKING" }] });
    await cancel(sim, ID, { token: "W".repeat(40) });
    await cancel(sim, ID);
    await get(sim, `/v3/scm/certificates/${ID}`);
    expect(
      sim.calls.map(({ method, kind, status, tokenOk, certificateId }) => ({
        method,
        kind,
        status,
        tokenOk,
        certificateId,
      })),
    ).toEqual([
      { method: "POST", kind: "cancel", status: 401, tokenOk: false, certificateId: ID },
      { method: "POST", kind: "cancel", status: 200, tokenOk: true, certificateId: ID },
      { method: "GET", kind: "detail", status: 200, tokenOk: true, certificateId: ID },
    ]);
    expect(sim.calls[0]?.path).toBe(`/v3/scm/certificates/${ID}/cancel-cert`);
    expect(typeof sim.calls[0]?.at).toBe("number");
    expect(JSON.stringify(sim.calls)).not.toContain(TOKEN);
    sim.inject("*", faults.internalError());
    sim.reset();
    expect(sim.calls).toHaveLength(0);
    expect(sim.stats).toMatchObject({ requests: 0, throttled: 0, maxInFlight: 0 });
    expect(sim.withdrawals(ID)).toBe(0);
    expect(sim.pendingFaults()).toBe(0);
    expect(sim.certificate(ID)?.status).toBe("CANCELCHECKING");
    sim.reset({ certificates: true });
    expect(sim.certificate(ID)).toBeUndefined();
  });
});

describe("demo scenario", () => {
  test("each demo id produces the outcome its comment describes", async () => {
    const sim = await start();
    seedDemoScenario(sim);
    const statusOf = async (id: string) => (await cancel(sim, id)).status;
    const detailOf = async (id: string) =>
      ((await (await get(sim, `/v3/scm/certificates/${id}`)).json()) as { status: string }).status;

    expect(await statusOf(DEMO.withdrawn)).toBe(200);
    expect(await detailOf(DEMO.withdrawn)).toBe("CANCELCHECKING");
    expect(await statusOf(DEMO.alreadyWithdrawn)).toBe(400);
    expect(await detailOf(DEMO.alreadyWithdrawn)).toBe("PAID");
    expect(await statusOf(DEMO.rejected)).toBe(400);
    expect(await detailOf(DEMO.rejected)).toBe("ISSUED");
    expect(await statusOf(DEMO.forbidden)).toBe(403);
    expect(await statusOf(DEMO.notFound)).toBe(404);
    expect([
      await statusOf(DEMO.transientThenWithdrawn),
      await statusOf(DEMO.transientThenWithdrawn),
      await statusOf(DEMO.transientThenWithdrawn),
    ]).toEqual([503, 503, 200]);
    expect([
      await statusOf(DEMO.alwaysFailing),
      await statusOf(DEMO.alwaysFailing),
      await statusOf(DEMO.alwaysFailing),
    ]).toEqual([500, 500, 500]);
    const throttled = await cancel(sim, DEMO.throttledThenWithdrawn);
    expect([throttled.status, throttled.headers.get("retry-after")]).toEqual([429, "1"]);
    expect(await statusOf(DEMO.throttledThenWithdrawn)).toBe(200);

    expect(sim.withdrawals(DEMO.withdrawn)).toBe(1);
    expect(sim.withdrawals(DEMO.transientThenWithdrawn)).toBe(1);
    expect(sim.withdrawals(DEMO.throttledThenWithdrawn)).toBe(1);
    expect(sim.withdrawals(DEMO.alwaysFailing)).toBe(0);
    expect(sim.pendingFaults()).toBe(0);
  });
});
