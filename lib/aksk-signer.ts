/**
 * Huawei Cloud AK/SK request signing (`SDK-HMAC-SHA256`), as Huawei's own SDK does it
 * (`@huaweicloud/huaweicloud-sdk-core`, `auth/AKSKSigner`; the tests compare against it):
 *
 *   canonical request = METHOD \n canonical URI \n canonical query \n canonical headers \n signed headers
 *                       \n hex(sha256(body))
 *   string to sign    = "SDK-HMAC-SHA256" \n X-Sdk-Date \n hex(sha256(canonical request))
 *   Authorization     = "SDK-HMAC-SHA256 Access=<AK>, SignedHeaders=<h1;h2>, Signature=<hex>"
 *                       (hex = hex hmac-sha256(SK, string to sign))
 *
 * - Canonical URI: each path segment percent-encoded (RFC 3986 unreserved characters kept), with a
 *   trailing `/` appended when missing.
 * - Canonical query: parameters sorted by name, names and values encoded the same way.
 * - Signed headers: `host`, `x-sdk-date`, and every header the caller passes (for SCM, a global service,
 *   `X-Domain-Id` too, as the SDK's GlobalCredentials sends it), lower-case, sorted.
 *
 * The gateway refuses a signature whose `X-Sdk-Date` is more than 15 minutes from its clock.
 * node:crypto only: nothing here may pull in the SDK (it is a devDependency, for tests).
 * Docs: https://support.huaweicloud.com/intl/en-us/devg-apisign/api-sign-algorithm.html
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";

export const SIGNING_ALGORITHM = "SDK-HMAC-SHA256";
/** How far `X-Sdk-Date` may be from the gateway's clock (Huawei APIG: 15 minutes). */
export const MAX_CLOCK_SKEW_MS = 15 * 60_000;

export interface AkSkCredentials {
  accessKey: string;
  secretKey: string;
  /** The account (domain) id, sent as `X-Domain-Id`: global services such as SCM expect it with AK/SK. */
  domainId?: string;
}

/** What is signed: the request as it will be sent. */
export interface SignableRequest {
  method: string;
  /** The full URL: host, path and query are signed. */
  url: URL;
  /** Headers to send and sign (besides those the signer adds). */
  headers: Readonly<Record<string, string>>;
  body: string | undefined;
}

/** An SCM credential that signs each request (the token provider yields one for `{"aksk": ...}` secrets). */
export interface RequestSigner {
  /** The headers to add to `request`: `Host`, `X-Sdk-Date`, `X-Domain-Id` when known, `Authorization`. */
  sign(request: SignableRequest): Record<string, string>;
}

export function createAkSkSigner(credentials: AkSkCredentials, now: () => number = Date.now): RequestSigner {
  return { sign: (request) => signRequest(request, credentials, new Date(now())) };
}

export function signRequest(
  request: SignableRequest,
  credentials: AkSkCredentials,
  date: Date,
): Record<string, string> {
  const added: Record<string, string> = {
    Host: request.url.host,
    "X-Sdk-Date": sdkDate(date),
    ...(credentials.domainId ? { "X-Domain-Id": credentials.domainId } : {}),
  };
  const headers = { ...request.headers, ...added };
  const signedHeaders = Object.keys(headers)
    .map((name) => name.toLowerCase())
    .sort();
  const signature = computeSignature(request, headers, signedHeaders, added["X-Sdk-Date"]!, credentials.secretKey);
  const fields = [
    `Access=${credentials.accessKey}`,
    `SignedHeaders=${signedHeaders.join(";")}`,
    `Signature=${signature}`,
  ];
  added.Authorization = `${SIGNING_ALGORITHM} ${fields.join(", ")}`;
  return added;
}

/** The hex signature of a request over `signedHeaders` (lower-case names, sorted); the verifier uses it too. */
export function computeSignature(
  request: Pick<SignableRequest, "method" | "url" | "body">,
  headers: Readonly<Record<string, string | undefined>>,
  signedHeaders: readonly string[],
  sdkDateValue: string,
  secretKey: string,
): string {
  const lower = new Map(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value ?? ""]));
  const canonical = [
    request.method.toUpperCase(),
    canonicalUri(request.url.pathname),
    canonicalQuery(request.url.searchParams),
    signedHeaders.map((name) => `${name}:${lower.get(name) ?? ""}\n`).join(""),
    signedHeaders.join(";"),
    sha256Hex(request.body ?? ""),
  ].join("\n");
  const stringToSign = [SIGNING_ALGORITHM, sdkDateValue, sha256Hex(canonical)].join("\n");
  return createHmac("sha256", secretKey).update(stringToSign).digest("hex");
}

/** `YYYYMMDDTHHMMSSZ` (UTC), the `X-Sdk-Date` format. */
export function sdkDate(date: Date): string {
  return date
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}Z$/, "Z");
}

/** Parses `X-Sdk-Date` (ms since epoch), or undefined when it is not `YYYYMMDDTHHMMSSZ`. */
export function parseSdkDate(value: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1).map(Number);
  const ms = Date.UTC(year!, month! - 1, day, hour, minute, second);
  return sdkDate(new Date(ms)) === value ? ms : undefined;
}

/** The parts of an `Authorization: SDK-HMAC-SHA256 Access=..., SignedHeaders=..., Signature=...` header. */
export function parseAuthorization(
  value: string | undefined,
): { accessKey: string; signedHeaders: string[]; signature: string } | undefined {
  const m = AUTHORIZATION.exec(value ?? "");
  return m ? { accessKey: m[1]!, signedHeaders: m[2]!.split(";"), signature: m[3]! } : undefined;
}

const AUTHORIZATION = /^SDK-HMAC-SHA256\s+Access=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]+)$/;

/** Constant-time comparison of two hex signatures. */
export function sameSignature(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/** A query string in the canonical form (sorted, RFC 3986): clients send it so, and what is signed is what is sent. */
export function canonicalQuery(params: URLSearchParams | Record<string, string>): string {
  const pairs = params instanceof URLSearchParams ? [...params] : Object.entries(params);
  return pairs
    .map(([name, value]) => [encode(name), encode(value)] as const)
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([name, value]) => `${name}=${value}`)
    .join("&");
}

function canonicalUri(pathname: string): string {
  const path = pathname
    .split("/")
    .map((segment) => encode(safeDecode(segment)))
    .join("/");
  return path.endsWith("/") ? path : `${path}/`;
}

/** RFC 3986 percent-encoding: only `A-Z a-z 0-9 - _ . ~` stay as they are (the SDK's `noEscape` table). */
function encode(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
