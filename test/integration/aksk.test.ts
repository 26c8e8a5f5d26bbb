/**
 * AK/SK end to end: the real handler reads `{"aksk": ...}` from the local Secrets Manager endpoint and
 * signs every SCM call; the sweep lists with signed calls; the simulator verifies each signature the way
 * Huawei's gateway does (401 `APIGW.0301` for a wrong key, a skewed `X-Sdk-Date`, a tampered request).
 */
import http from "node:http";
import type { Context, SQSBatchResponse, SQSEvent } from "aws-lambda";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { createAkSkSigner, signRequest, type AkSkCredentials } from "../../lib/aksk-signer.ts";
import { createScmClient, type ScmAnswer, type ScmClient } from "../../lib/scm-client.ts";
import { DEMO } from "../../local/demo-certificates.ts";
import { seedDemoScenario } from "../../local/scm-simulator.ts";
import { lambdaContext, sqsEvent, sqsRecord } from "../support/lambda.ts";
import { capturedOutput } from "../support/secret-guard.ts";
import { findSecretFragment, TEST_AKSK } from "../support/secrets.ts";
import { SECRET_ID, startStack, type Stack } from "../support/stack.ts";

type Handler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;

const SECRET = JSON.stringify({
  aksk: { access_key: TEST_AKSK.accessKey, secret_key: TEST_AKSK.secretKey, domain_id: TEST_AKSK.domainId },
});
const MINUTE = 60_000;

let stack: Stack;
let scm: ScmClient;
const savedEnv = { ...process.env };

beforeAll(async () => {
  stack = await startStack({ simulator: { accessKeys: [TEST_AKSK] } });
  scm = createScmClient({ endpoint: stack.sim.url, timeoutMs: 5000 });
});
afterAll(async () => {
  process.env = savedEnv;
  scm.close();
  await stack.close();
});
beforeEach(() => {
  stack.sim.reset({ certificates: true });
  seedDemoScenario(stack.sim);
  stack.secrets.setSecret(SECRET_ID, SECRET);
});

const signer = (overrides: Partial<AkSkCredentials> = {}, skewMs = 0) =>
  createAkSkSigner({ ...TEST_AKSK, ...overrides }, () => Date.now() + skewMs);
const errorOf = (result: Awaited<ReturnType<ScmClient["cancelCert"]>>) => {
  expect(result.kind).toBe("answer");
  const answer = result as ScmAnswer;
  return { status: answer.status, code: answer.errorCode, msg: answer.errorMsg };
};

describe("the simulator's signature check", () => {
  it("accepts signed cancel-cert, details and listing calls (no X-Auth-Token sent)", async () => {
    expect(errorOf(await scm.cancelCert(DEMO.withdrawn, signer())).status).toBe(200);
    expect(errorOf(await scm.getCertificate(DEMO.withdrawn, signer())).status).toBe(200);
    const list = await scm.listCertificates(
      { status: "CHECKING", limit: 50, offset: 0, content: "demo example" },
      signer(),
    );
    expect(errorOf(list).status).toBe(200);
    expect(stack.sim.withdrawals(DEMO.withdrawn)).toBe(1);
    expect(stack.sim.calls.map((c) => c.tokenRef)).toEqual(Array(3).fill(`aksk#${TEST_AKSK.accessKey}`));
  });

  it.each<[string, () => ReturnType<typeof signer>, string]>([
    ["a wrong secret key", () => signer({ secretKey: `${TEST_AKSK.secretKey}x` }), "verify aksk signature fail"],
    ["an unknown access key", () => signer({ accessKey: "HPUAUNKNOWNACCESSKEY" }), "the access key does not exist"],
    ["an X-Sdk-Date 16 minutes behind", () => signer({}, -16 * MINUTE), "more than 15 minutes"],
    ["an X-Sdk-Date 16 minutes ahead", () => signer({}, 16 * MINUTE), "more than 15 minutes"],
    ["no X-Domain-Id for a key of an account", () => signer({ domainId: undefined }), "x-domain-id"],
    ["another account's X-Domain-Id", () => signer({ domainId: "ffffffffffffffffffffffffffffffff" }), "x-domain-id"],
  ])("refuses %s with 401 APIGW.0301 and withdraws nothing", async (_name, make, reason) => {
    const { status, code, msg } = errorOf(await scm.cancelCert(DEMO.withdrawn, make()));
    expect({ status, code }).toEqual({ status: 401, code: "APIGW.0301" });
    expect(msg).toContain(reason);
    expect(stack.sim.withdrawals(DEMO.withdrawn)).toBe(0);
  });

  it("accepts an X-Sdk-Date 14 minutes off", async () => {
    expect(errorOf(await scm.getCertificate(DEMO.withdrawn, signer({}, -14 * MINUTE))).status).toBe(200);
  });

  it.each([
    [
      "path",
      "/v3/scm/certificates/scs1000000000001/cancel-cert",
      "/v3/scm/certificates/scs1000000000002/cancel-cert",
      "{}",
    ],
    ["query", "/v3/scm/certificates?limit=10", "/v3/scm/certificates?limit=50", ""],
    [
      "body",
      "/v3/scm/certificates/scs1000000000001/cancel-cert",
      "/v3/scm/certificates/scs1000000000001/cancel-cert",
      '{"x":1}',
    ],
  ])("refuses a request whose %s was changed after signing", async (_name, signedPath, sentPath, sentBody) => {
    const method = sentBody === "" ? "GET" : "POST";
    const url = new URL(signedPath, stack.sim.url);
    const headers: Record<string, string> =
      method === "POST" ? { "Content-Type": "application/json;charset=UTF-8" } : {};
    const signed = signRequest(
      { method, url, headers, body: method === "POST" ? "{}" : undefined },
      TEST_AKSK,
      new Date(),
    );
    const answer = await send(new URL(sentPath, stack.sim.url), method, { ...headers, ...signed }, sentBody);
    expect(answer.status).toBe(401);
    expect(JSON.parse(answer.body)).toMatchObject({
      error_code: "APIGW.0301",
      error_msg: expect.stringContaining("verify aksk signature fail"),
    });
  });
});

describe("the handler with an AK/SK secret", () => {
  it("withdraws with signed calls, without any token exchange, and never prints the secret key", async () => {
    process.env = { ...savedEnv, ...stack.env, LOG_LEVEL: "debug" };
    vi.resetModules();
    const { handler } = (await import("../../handlers/withdraw.ts")) as unknown as { handler: Handler };
    const records = [
      sqsRecord({ certificate_id: DEMO.withdrawn }),
      sqsRecord({ certificate_id: DEMO.alreadyWithdrawn }),
    ];
    const response = await handler(sqsEvent(...records), lambdaContext());
    expect(response.batchItemFailures).toEqual([]);
    expect(stack.sim.withdrawals(DEMO.withdrawn)).toBe(1);
    expect(stack.sim.iamExchanges).toBe(0);
    expect(stack.sim.calls.length).toBeGreaterThan(0);
    for (const call of stack.sim.calls) expect(call.tokenRef).toBe(`aksk#${TEST_AKSK.accessKey}`);
    expect(findSecretFragment(capturedOutput(), [TEST_AKSK.secretKey])).toBeUndefined();
  });

  it("re-reads a rotated key pair after a 401 and goes on", async () => {
    process.env = { ...savedEnv, ...stack.env };
    vi.resetModules();
    const { handler } = (await import("../../handlers/withdraw.ts")) as unknown as { handler: Handler };
    await handler(sqsEvent(sqsRecord({ certificate_id: DEMO.withdrawn })), lambdaContext());
    // The key is rotated: the old pair is refused, the secret holds the new one.
    const rotated = { ...TEST_AKSK, accessKey: "HPUAROTATEDACCESSKEY", secretKey: `${TEST_AKSK.secretKey}-rotated` };
    stack.sim.rejectAccessKey(TEST_AKSK.accessKey);
    stack.sim.acceptAccessKey(rotated);
    stack.secrets.setSecret(
      SECRET_ID,
      JSON.stringify({
        aksk: { access_key: rotated.accessKey, secret_key: rotated.secretKey, domain_id: rotated.domainId },
      }),
    );
    try {
      const response = await handler(sqsEvent(sqsRecord({ certificate_id: DEMO.alreadyWithdrawn })), lambdaContext());
      expect(response.batchItemFailures).toEqual([]);
      const last = stack.sim.calls.filter((c) => c.kind === "cancel").slice(-2);
      expect(last.map((c) => [c.status, c.tokenRef ?? null])).toEqual([
        [401, null],
        [expect.any(Number), `aksk#${rotated.accessKey}`],
      ]);
    } finally {
      stack.sim.rejectAccessKey(rotated.accessKey);
      stack.sim.acceptAccessKey(TEST_AKSK);
    }
  });
});

function send(
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      url,
      { method, headers: { ...headers, ...(body ? { "Content-Length": Buffer.byteLength(body) } : {}) } },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (c: Buffer) => chunks.push(c));
        response.on("end", () =>
          resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }),
        );
      },
    );
    request.on("error", reject);
    request.end(body || undefined);
  });
}
