/**
 * The `{"iam": {...}}` secret through the real handler: the worker exchanges the stored credentials
 * with the simulator's IAM endpoint, caches the token until the margin, re-exchanges after a 401, and
 * leaves the whole batch on the queue when IAM is down or rejects the credentials.
 *
 * IAM requests go through a small recording proxy in front of the simulator, so every token IAM
 * issues is registered with the secret guard (which then fails the file if one is ever printed).
 */
import type { SQSBatchResponse, SQSEvent } from "aws-lambda";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { DEMO } from "../../local/demo-certificates.ts";
import { faults, seedDemoScenario, type Fault } from "../../local/scm-simulator.ts";
import { lambdaContext, sqsEvent, sqsRecord } from "../support/lambda.ts";
import { capturedOutput } from "../support/secret-guard.ts";
import { allSecrets, IAM_PASSWORD, runtimeSecrets } from "../support/secrets.ts";
import { attributesOf, SECRET_ID, startStack, type Stack } from "../support/stack.ts";
import { coldStartWithdraw, restoreEnv, type WithdrawHandler as Handler } from "../support/withdraw-handler.ts";

const DAY_MS = 24 * 60 * 60 * 1000;
const IAM_USER = { domain: "acme", user: "scm-bot", password: IAM_PASSWORD };
/** A password IAM does not accept; a secret too, so the guard checks it never appears either. */
const WRONG_PASSWORD = "Wr0ng-But-Still-Secret-Passw0rd!";
runtimeSecrets.add(WRONG_PASSWORD);

let stack: Stack;
let iam: { url: string; close(): Promise<void> };

/** A pass-through proxy to the simulator's IAM endpoint that registers every issued token as a secret. */
async function startTokenRecorder(target: string) {
  const sockets = new Set<import("node:net").Socket>();
  const server = http.createServer((req, res) => {
    const upstream = http.request(
      `${target}${req.url ?? "/"}`,
      { method: req.method, headers: req.headers },
      (answer) => {
        const token = answer.headers["x-subject-token"];
        if (typeof token === "string") runtimeSecrets.add(token);
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    // The simulator reset or hung: do the same to the worker.
    upstream.on("error", () => req.socket.destroy());
    res.on("close", () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}

/** The secret's value: IAM credentials, by default pointing at the recording proxy. */
const iamSecret = (overrides: Record<string, unknown> = {}) =>
  JSON.stringify({
    iam: {
      domain: IAM_USER.domain,
      user: IAM_USER.user,
      password: IAM_USER.password,
      scope: "domain",
      endpoint: iam.url,
      ...overrides,
    },
  });

/** Imports the handler as a new container would (fresh module state: token cache, clients). */
const coldStart = (env: Record<string, string> = {}) => coldStartWithdraw({ ...stack.env, ...env });

/** Runs one invocation and returns its response and the JSON log lines it printed. */
async function invoke(handler: Handler, event: SQSEvent) {
  const from = capturedOutput().length;
  const response = await handler(event, lambdaContext());
  const logs = capturedOutput()
    .slice(from)
    .split("\n")
    .flatMap((line) => {
      try {
        return line.startsWith("{") ? [JSON.parse(line) as Record<string, unknown>] : [];
      } catch {
        return [];
      }
    });
  return { response, logs, errors: logs.filter((l) => l.level === "error") };
}

const job = (certificateId: string) => ({ certificate_id: certificateId, source: "manual" });
const failedIds = (response: SQSBatchResponse) => response.batchItemFailures.map((f) => f.itemIdentifier).sort();
const iamCalls = () => stack.sim.calls.filter((c) => c.kind === "iam");
const cancelCalls = () => stack.sim.calls.filter((c) => c.kind === "cancel");

/** `count` fresh certificates under review, and one record for each. */
function certificates(prefix: string, count: number) {
  const ids = Array.from({ length: count }, (_, i) => `${prefix}${String(i).padStart(16 - prefix.length, "0")}`);
  for (const id of ids) stack.sim.addCertificate({ id, status: "CHECKING" });
  return { ids, records: ids.map((id) => sqsRecord(job(id))) };
}

beforeAll(async () => {
  stack = await startStack({ simulator: { iamUsers: [IAM_USER] } });
  iam = await startTokenRecorder(stack.sim.url);
});
afterAll(async () => {
  restoreEnv();
  await iam.close();
  await stack.close();
});
beforeEach(async () => {
  stack.sim.reset({ certificates: true });
  stack.sim.iamTokenTtlMs = DAY_MS;
  seedDemoScenario(stack.sim);
  stack.secrets.recover();
  stack.secrets.setSecret(SECRET_ID, iamSecret());
  await stack.drainDlq();
});

describe("a secret holding IAM credentials", () => {
  it("is exchanged once for a cold batch of 10 concurrent records, and the token is reused while warm", async () => {
    const handler = await coldStart();
    const exchanges = stack.sim.iamExchanges;
    const { ids, records } = certificates("scs4", 10);

    const { response } = await invoke(handler, sqsEvent(...records));
    expect(response.batchItemFailures).toEqual([]);
    for (const id of ids) expect(stack.sim.withdrawals(id)).toBe(1);
    expect(stack.sim.iamExchanges - exchanges).toBe(1);
    expect(iamCalls().map((c) => [c.method, c.path, c.status])).toEqual([
      ["POST", "/v3/auth/tokens?nocatalog=true", 201],
    ]);
    // Every SCM call carried the token IAM just issued.
    expect(new Set(cancelCalls().map((c) => c.tokenRef))).toEqual(new Set([iamCalls()[0]!.tokenRef]));

    const reads = stack.secrets.reads(SECRET_ID);
    const more = certificates("scs5", 3);
    expect((await invoke(handler, sqsEvent(...more.records))).response.batchItemFailures).toEqual([]);
    expect(stack.sim.iamExchanges - exchanges).toBe(1);
    expect(stack.secrets.reads(SECRET_ID)).toBe(reads);
  });

  it("makes one exchange for two batches arriving at once in a cold container", async () => {
    const handler = await coldStart();
    const exchanges = stack.sim.iamExchanges;
    const a = certificates("scs6", 5);
    const b = certificates("scs7", 5);
    const responses = await Promise.all([
      handler(sqsEvent(...a.records), lambdaContext()),
      handler(sqsEvent(...b.records), lambdaContext()),
    ]);
    expect(responses.flatMap((r) => r.batchItemFailures)).toEqual([]);
    expect(stack.sim.iamExchanges - exchanges).toBe(1);
  });

  it("uses IAM_ENDPOINT when the secret names no endpoint", async () => {
    stack.secrets.setSecret(SECRET_ID, iamSecret({ endpoint: undefined }));
    const handler = await coldStart({ IAM_ENDPOINT: iam.url });
    const { response } = await invoke(handler, sqsEvent(sqsRecord(job(DEMO.withdrawn))));
    expect(response.batchItemFailures).toEqual([]);
    expect(iamCalls()).toHaveLength(1);
    expect(stack.sim.withdrawals(DEMO.withdrawn)).toBe(1);
  });

  it("exchanges a project-scoped secret", async () => {
    stack.secrets.setSecret(SECRET_ID, iamSecret({ scope: { project: "ap-southeast-1" } }));
    const handler = await coldStart();
    const { response } = await invoke(handler, sqsEvent(sqsRecord(job(DEMO.withdrawn))));
    expect(response.batchItemFailures).toEqual([]);
    expect(stack.sim.withdrawals(DEMO.withdrawn)).toBe(1);
  });

  it("refuses to send the credentials to a plain-http endpoint that is not loopback, leaving the batch", async () => {
    stack.secrets.setSecret(SECRET_ID, iamSecret({ endpoint: "http://iam.example.com" }));
    const handler = await coldStart();
    const record = sqsRecord(job(DEMO.withdrawn));
    const { response, errors } = await invoke(handler, sqsEvent(record));
    expect(failedIds(response)).toEqual([record.messageId]);
    expect(stack.sim.calls).toEqual([]);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ event: "token_unavailable", code: "secret_unusable" });
    expect(errors[0]!.error).toContain(
      `the "iam" secret's endpoint must be an https:// URL (http:// only for loopback hosts)`,
    );
  });
});

describe("token expiry", () => {
  it("replaces a cached token once it is past the refresh margin, before SCM ever refuses it", async () => {
    // Tokens live 4 s and are replaced 2 s before they expire: reused for 2 s.
    stack.sim.iamTokenTtlMs = 4000;
    const handler = await coldStart({ IAM_TOKEN_REFRESH_MARGIN_MS: "2000" });
    const exchanges = stack.sim.iamExchanges;
    expect((await invoke(handler, sqsEvent(sqsRecord(job(DEMO.withdrawn))))).response.batchItemFailures).toEqual([]);
    const first = iamCalls()[0]!;

    // Waiting for the clock, not asserting on it: the token is now past its margin.
    await sleep(Math.max(0, first.at + 2100 - Date.now()));
    const { id } = { id: certificates("scs8", 1).ids[0]! };
    const { response } = await invoke(handler, sqsEvent(sqsRecord(job(id))));
    expect(response.batchItemFailures).toEqual([]);
    expect(stack.sim.iamExchanges - exchanges).toBe(2);
    const second = iamCalls()[1]!;
    expect(second.tokenRef).not.toBe(first.tokenRef);
    expect(cancelCalls().map((c) => [c.certificateId, c.tokenRef, c.status])).toEqual([
      [DEMO.withdrawn, first.tokenRef, 200],
      [id, second.tokenRef, 200],
    ]);
  });
});

describe("revocation", () => {
  it("re-reads the secret and re-exchanges once after a 401, and the records then succeed", async () => {
    const handler = await coldStart();
    await invoke(handler, sqsEvent(sqsRecord(job(DEMO.withdrawn)))); // warm: a token is cached
    const exchanges = stack.sim.iamExchanges;
    const reads = stack.secrets.reads(SECRET_ID);
    stack.sim.revokeIamTokens();

    const { ids, records } = certificates("scs9", 10);
    const { response, logs } = await invoke(handler, sqsEvent(...records));
    expect(response.batchItemFailures).toEqual([]);
    for (const id of ids) expect(stack.sim.withdrawals(id)).toBe(1);
    expect(stack.sim.iamExchanges - exchanges).toBe(1);
    expect(stack.secrets.reads(SECRET_ID) - reads).toBe(1);
    const refused = cancelCalls().filter((c) => c.status === 401);
    expect(refused.length).toBeGreaterThanOrEqual(1);
    expect(logs.filter((l) => l.event === "token_rejected")).toHaveLength(refused.length);
    expect(await stack.drainDlq()).toEqual([]);
  });

  it("dead-letters as unauthorized when SCM refuses the re-exchanged token too, with no token in the DLQ", async () => {
    const handler = await coldStart({ LOG_LEVEL: "debug" });
    const unauthorized = faults.scmError(
      401,
      "APIGW.0301",
      "Incorrect IAM authentication information: token has been revoked",
    );
    stack.sim.inject(DEMO.withdrawn, unauthorized, unauthorized);
    const exchanges = stack.sim.iamExchanges;
    const record = sqsRecord(job(DEMO.withdrawn));
    const { response } = await invoke(handler, sqsEvent(record));
    expect(response.batchItemFailures).toEqual([]);
    expect(stack.sim.iamExchanges - exchanges).toBe(2); // the cold one and the one after the 401
    const [letter, ...rest] = await stack.drainDlq();
    expect(rest).toEqual([]);
    expect(attributesOf(letter!)).toMatchObject({
      failure_reason: "unauthorized",
      http_status: "401",
      error_code: "APIGW.0301",
    });
    const dumped = JSON.stringify(letter);
    for (const secret of allSecrets())
      expect(dumped.includes(secret), "a secret in the dead-letter message").toBe(false);
  });
});

describe("an IAM outage", () => {
  it.each<[string, Fault, Record<string, string>, number]>([
    ["a 500", faults.internalError(), {}, 1],
    ["a 503", faults.unavailable(), {}, 1],
    ["reset connections (retried once)", faults.reset(), {}, 2],
    ["no answer within IAM_TIMEOUT_MS", faults.hang(), { IAM_TIMEOUT_MS: "300" }, 1],
  ])(
    "with %s leaves every valid record for redelivery, dead-letters only the invalid body and calls no SCM",
    async (_name, fault, env, attempts) => {
      const handler = await coldStart(env);
      stack.sim.injectAlways("iam", fault);
      const records = [sqsRecord(job(DEMO.withdrawn)), sqsRecord(job(DEMO.forbidden)), sqsRecord("not json")];
      const { response, errors } = await invoke(handler, sqsEvent(...records));
      expect(failedIds(response)).toEqual(
        records
          .slice(0, 2)
          .map((r) => r.messageId)
          .sort(),
      );
      expect(iamCalls()).toHaveLength(attempts);
      expect(cancelCalls()).toEqual([]);
      expect((await stack.drainDlq()).map((l) => attributesOf(l).failure_reason)).toEqual(["invalid_message"]);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatchObject({ event: "token_unavailable", code: "iam_unreachable", records: 2 });
      expect(errors[0]!.error).toMatch(/^TokenUnavailableError iam_unreachable: IAM at http:\/\/127\.0\.0\.1:\d+ /);

      // IAM is back: the next delivery works at once (an outage is not held against the credentials).
      stack.sim.clearFaults();
      expect((await invoke(handler, sqsEvent(records[0]!))).response.batchItemFailures).toEqual([]);
    },
  );

  it("during a re-exchange after a 401 leaves the records for redelivery", async () => {
    const handler = await coldStart();
    await invoke(handler, sqsEvent(sqsRecord(job(DEMO.withdrawn))));
    stack.sim.revokeIamTokens();
    stack.sim.injectAlways("iam", faults.badGateway());
    const { records } = certificates("scsA", 3);
    const { response } = await invoke(handler, sqsEvent(...records));
    expect(failedIds(response)).toEqual(records.map((r) => r.messageId).sort());
    expect(await stack.drainDlq()).toEqual([]);
  });
});

describe("rejected credentials", () => {
  it("leave the whole batch on the queue with one clear error line per invocation, and the fixed secret works at once", async () => {
    stack.secrets.setSecret(SECRET_ID, iamSecret({ password: WRONG_PASSWORD }));
    const handler = await coldStart({ LOG_LEVEL: "debug" });
    const records = [sqsRecord(job(DEMO.withdrawn)), sqsRecord(job(DEMO.notFound))];

    for (let invocation = 0; invocation < 2; invocation++) {
      const { response, errors, logs } = await invoke(handler, sqsEvent(...records));
      expect(failedIds(response)).toEqual(records.map((r) => r.messageId).sort());
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatchObject({ event: "token_unavailable", code: "iam_rejected", records: 2 });
      expect(errors[0]!.error).toBe(
        `TokenUnavailableError iam_rejected: IAM rejected the credentials stored in secret ${SECRET_ID} (HTTP 401 "The username or password is wrong.", user "scm-bot" in domain "acme"): fix the secret; the batch is left on the queue`,
      );
      expect(JSON.stringify(logs)).not.toContain(WRONG_PASSWORD);
    }
    // The second invocation did not send the same wrong password again (an IAM user can get locked).
    expect(iamCalls()).toHaveLength(1);
    expect(cancelCalls()).toEqual([]);
    expect(await stack.drainDlq()).toEqual([]);

    stack.secrets.setSecret(SECRET_ID, iamSecret());
    const { response } = await invoke(handler, sqsEvent(records[0]!));
    expect(response.batchItemFailures).toEqual([]);
    expect(iamCalls().map((c) => c.status)).toEqual([401, 201]);
  });

  it("treat a 403 from IAM the same way", async () => {
    const handler = await coldStart();
    stack.sim.inject(
      "iam",
      faults.answer(403, { error: { code: 403, message: "The user is disabled.", title: "Forbidden" } }),
    );
    const record = sqsRecord(job(DEMO.withdrawn));
    const { response, errors } = await invoke(handler, sqsEvent(record));
    expect(failedIds(response)).toEqual([record.messageId]);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.error).toContain(
      `IAM rejected the credentials stored in secret ${SECRET_ID} (HTTP 403 "The user is disabled."`,
    );
    expect(await stack.drainDlq()).toEqual([]);
  });
});

describe("secrets in the output", () => {
  it("no password or IAM token was printed by anything above", () => {
    const output = capturedOutput();
    expect(runtimeSecrets.size).toBeGreaterThan(5); // the recorder saw the tokens IAM issued
    for (const secret of [IAM_PASSWORD, WRONG_PASSWORD, ...runtimeSecrets])
      expect(output.includes(secret), "a secret in stdout/stderr").toBe(false);
    // Belt and braces: nothing shaped like a simulator-issued token (MII + 128 base64url characters).
    expect(output).not.toMatch(/MII[A-Za-z0-9_-]{100,}/);
  });
});
