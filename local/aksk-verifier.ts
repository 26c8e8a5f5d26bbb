/**
 * The simulator's AK/SK check, as Huawei's API gateway does it: the `Authorization` header names an
 * access key the gateway knows, `X-Sdk-Date` is signed and within 15 minutes of the gateway's clock,
 * and the signature recomputed over the request as received (method, path, query, the signed headers,
 * the body) is the one sent. Any failure is a 401 `APIGW.0301` ("Incorrect IAM authentication
 * information: ..."), the gateway's answer to bad credentials whatever the service.
 *
 * Global services (SCM is one) take the account from `X-Domain-Id`: a key registered with a domain id
 * is refused without that header, or with another account's id.
 */
import type { IncomingHttpHeaders } from "node:http";
import {
  computeSignature,
  MAX_CLOCK_SKEW_MS,
  parseAuthorization,
  parseSdkDate,
  sameSignature,
  type AkSkCredentials,
} from "../lib/aksk-signer.ts";

export type AkSkCheck = { ok: true; accessKey: string } | { ok: false; code: "APIGW.0301"; reason: string };

export interface ReceivedRequest {
  method: string;
  /** The request target as received (path and query). */
  target: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export function verifyAkSk(
  request: ReceivedRequest,
  keys: ReadonlyMap<string, AkSkCredentials>,
  now: number,
): AkSkCheck {
  const fail = (reason: string): AkSkCheck => ({ ok: false, code: "APIGW.0301", reason });
  const authorization = parseAuthorization(header(request.headers, "authorization"));
  if (!authorization) return fail("the Authorization header is not SDK-HMAC-SHA256 Access=..., SignedHeaders=..., ...");
  const key = keys.get(authorization.accessKey);
  if (!key) return fail("the access key does not exist");
  if (!authorization.signedHeaders.includes("x-sdk-date")) return fail("x-sdk-date is not signed");
  const date = header(request.headers, "x-sdk-date") ?? "";
  const at = parseSdkDate(date);
  if (at === undefined) return fail("x-sdk-date is not YYYYMMDDTHHMMSSZ");
  if (Math.abs(now - at) > MAX_CLOCK_SKEW_MS) return fail("x-sdk-date is more than 15 minutes from the server's time");
  if (key.domainId !== undefined && header(request.headers, "x-domain-id") !== key.domainId) {
    return fail("x-domain-id is missing or names another account");
  }

  const headers: Record<string, string | undefined> = {};
  for (const name of authorization.signedHeaders) headers[name] = header(request.headers, name);
  const url = new URL(request.target, `http://${header(request.headers, "host") ?? "localhost"}`);
  const signed = { method: request.method, url, body: request.body.toString("utf8") };
  const expected = computeSignature(signed, headers, authorization.signedHeaders, date, key.secretKey);
  if (!sameSignature(expected, authorization.signature)) return fail("verify aksk signature fail");
  return { ok: true, accessKey: key.accessKey };
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(",") : value;
}
