/**
 * The AK/SK signer against Huawei's own: the same requests are signed by lib/aksk-signer.ts and by
 * the SDK's AKSKSigner (`@huaweicloud/huaweicloud-sdk-core`, a devDependency used only here as the
 * oracle), and the Authorization headers must be identical.
 */
import { AKSKSigner } from "@huaweicloud/huaweicloud-sdk-core/auth/AKSKSigner.js";
import { GlobalCredentials } from "@huaweicloud/huaweicloud-sdk-core/auth/GlobalCredentials.js";
import { describe, expect, it } from "vitest";
import {
  canonicalQuery,
  parseAuthorization,
  parseSdkDate,
  sdkDate,
  signRequest,
  type AkSkCredentials,
} from "../../lib/aksk-signer.ts";

const CREDENTIALS: AkSkCredentials = {
  accessKey: "HPUAEXAMPLEACCESSKEY",
  secretKey: "ExampleSecretKey0123456789abcdefghijklmno",
  domainId: "0970dd7a1300f5672ff2c003c60ae115",
};
const DATE = new Date("2026-11-30T16:04:05.678Z");
const JSON_TYPE = { "Content-Type": "application/json;charset=UTF-8" };

interface Case {
  method: "GET" | "POST";
  endpoint: string;
  path: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  /** The JSON body (the SDK hashes JSON.stringify of it). */
  data?: Record<string, unknown>;
}

function ours(c: Case, credentials: AkSkCredentials = CREDENTIALS): string {
  const url = new URL(`${c.endpoint}${c.path}${c.query ? `?${canonicalQuery(c.query)}` : ""}`);
  const body = c.data === undefined ? undefined : JSON.stringify(c.data);
  return signRequest({ method: c.method, url, headers: c.headers ?? {}, body }, credentials, DATE).Authorization!;
}

function sdk(c: Case, credentials: AkSkCredentials = CREDENTIALS): string {
  const global = new GlobalCredentials().withAk(credentials.accessKey).withSk(credentials.secretKey);
  const headers: Record<string, string> = { ...(c.headers ?? {}), "X-Sdk-Date": sdkDate(DATE) };
  if (credentials.domainId) headers["X-Domain-Id"] = credentials.domainId;
  const request = {
    endpoint: `${c.endpoint}${c.path}`,
    method: c.method,
    headers,
    queryParams: c.query ?? {},
    data: c.data,
  };
  return (AKSKSigner.sign(request as never, global) as Record<string, string>).Authorization!;
}

const SCM = "https://scm.ap-southeast-1.myhuaweicloud.com";

describe("signRequest, compared with Huawei's SDK AKSKSigner", () => {
  it.each<[string, Case]>([
    [
      "cancel-cert (POST, JSON body {})",
      {
        method: "POST",
        endpoint: SCM,
        path: "/v3/scm/certificates/scs1481110651012/cancel-cert",
        headers: JSON_TYPE,
        data: {},
      },
    ],
    [
      "a non-empty body",
      {
        method: "POST",
        endpoint: SCM,
        path: "/v3/scm/certificates/scs1481110651012/cancel-cert",
        headers: JSON_TYPE,
        data: { reason: "a b/c", n: 1 },
      },
    ],
    ["details (GET, empty body)", { method: "GET", endpoint: SCM, path: "/v3/scm/certificates/scs1481110651012" }],
    ["a path with a trailing slash", { method: "GET", endpoint: SCM, path: "/v3/scm/certificates/" }],
    ["a path without a trailing slash", { method: "GET", endpoint: SCM, path: "/v3/scm/certificates" }],
    [
      "the listing's query string",
      {
        method: "GET",
        endpoint: SCM,
        path: "/v3/scm/certificates",
        query: { status: "CHECKING", limit: "50", offset: "0", sort_key: "certUpdateTime", sort_dir: "ASC" },
      },
    ],
    [
      "a query needing encoding",
      {
        method: "GET",
        endpoint: SCM,
        path: "/v3/scm/certificates",
        query: { content: "shop example.com/*", z: "~a-b_c.d", a: "ü€" },
      },
    ],
    [
      "an endpoint with a port",
      { method: "GET", endpoint: "http://127.0.0.1:4580", path: "/v3/scm/certificates", query: { limit: "10" } },
    ],
    [
      "an Accept header",
      {
        method: "GET",
        endpoint: SCM,
        path: "/v3/scm/certificates/scs1481110651012",
        headers: { Accept: "application/json" },
      },
    ],
  ])("%s", (_name, c) => {
    const signed = ours(c);
    expect(signed).toBe(sdk(c));
    expect(signed).toMatch(
      /^SDK-HMAC-SHA256 Access=HPUAEXAMPLEACCESSKEY, SignedHeaders=[a-z;-]+, Signature=[0-9a-f]{64}$/,
    );
  });

  it("matches without a domain id too (no X-Domain-Id is sent or signed)", () => {
    const c: Case = { method: "GET", endpoint: SCM, path: "/v3/scm/certificates", query: { limit: "10" } };
    const { domainId: _, ...noDomain } = CREDENTIALS;
    expect(ours(c, noDomain)).toBe(sdk(c, noDomain));
    expect(parseAuthorization(ours(c, noDomain))?.signedHeaders).toEqual(["host", "x-sdk-date"]);
  });

  it("adds Host, X-Sdk-Date and X-Domain-Id, and signs them", () => {
    const added = signRequest(
      { method: "GET", url: new URL(`${SCM}/v3/scm/certificates`), headers: {}, body: undefined },
      CREDENTIALS,
      DATE,
    );
    expect(added).toMatchObject({
      Host: "scm.ap-southeast-1.myhuaweicloud.com",
      "X-Sdk-Date": "20261130T160405Z",
      "X-Domain-Id": CREDENTIALS.domainId,
    });
    expect(parseAuthorization(added.Authorization)?.signedHeaders).toEqual(["host", "x-domain-id", "x-sdk-date"]);
  });

  it("changes the signature when the key, the path, the query, the body or the time changes", () => {
    const base: Case = {
      method: "POST",
      endpoint: SCM,
      path: "/v3/scm/certificates/scs1481110651012/cancel-cert",
      headers: JSON_TYPE,
      data: {},
    };
    const signature = ours(base);
    expect(ours(base, { ...CREDENTIALS, secretKey: `${CREDENTIALS.secretKey}x` })).not.toBe(signature);
    expect(ours({ ...base, path: "/v3/scm/certificates/scs1481110651013/cancel-cert" })).not.toBe(signature);
    expect(ours({ ...base, query: { a: "1" } })).not.toBe(signature);
    expect(ours({ ...base, data: { a: 1 } })).not.toBe(signature);
  });
});

describe("X-Sdk-Date", () => {
  it("formats and parses YYYYMMDDTHHMMSSZ, refusing anything else", () => {
    expect(sdkDate(DATE)).toBe("20261130T160405Z");
    expect(parseSdkDate("20261130T160405Z")).toBe(Date.UTC(2026, 10, 30, 16, 4, 5));
    for (const bad of ["2026-11-30T16:04:05Z", "20261330T160405Z", "20261130T160405", ""])
      expect(parseSdkDate(bad)).toBeUndefined();
  });
});
