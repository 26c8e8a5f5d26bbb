/**
 * The SCM HTTP client: `cancel-cert`, certificate details and the certificate list.
 *
 * - Over the shared transport (`http-transport.ts`): keep-alive, at most `maxSockets` per host (one per
 *   record in flight), one time limit per call covering connecting, silence and a slow drip alike.
 * - At most `maxBodyBytes` of an answer are read; SCM's documented bodies are a few hundred bytes.
 * - It never throws for an HTTP status or a network failure: it returns what happened, and
 *   `classify.ts` decides what that means. The token goes into one header and nowhere else; with an
 *   AK/SK credential the request is signed instead (`aksk-signer.ts`: `X-Sdk-Date`, `Authorization`).
 *
 * API: https://support.huaweicloud.com/intl/en-us/api-scm/CancelCertificateRequest.html
 */
import { canonicalQuery } from "./aksk-signer.ts";
import { createHttpTransport, parseJsonBody, type HttpAnswer, type HttpFailure } from "./http-transport.ts";
import { CERTIFICATE_ID_PATTERN } from "./message.ts";
import { redact } from "./redact.ts";
import { tokenOf, type ScmAuth } from "./token-provider.ts";

export type ScmAnswer = {
  kind: "answer";
  status: number;
  /** The parsed JSON body, or undefined when it was empty, not JSON, or over the size cap. */
  body: unknown;
  errorCode: string | undefined;
  errorMsg: string | undefined;
  /**
   * The start of the body as received (at most {@link EXCERPT_LENGTH} characters, control characters
   * as spaces, the token cut out), for logs about an answer nobody expected, also when the body was too
   * large to read. Undefined for an empty body.
   */
  excerpt?: string;
  /** From a `Retry-After` header (seconds or HTTP date), in milliseconds. */
  retryAfterMs: number | undefined;
  durationMs: number;
};

/** The transport's failure as it is: its message never contains request headers, so never the token. */
export type ScmNetworkFailure = HttpFailure;

export type ScmResult = ScmAnswer | ScmNetworkFailure;

export interface CallOptions {
  /** Overrides the client's default time limit for this call (used to stay inside the Lambda deadline). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface ScmClient {
  cancelCert(certificateId: string, token: ScmAuth, options?: CallOptions): Promise<ScmResult>;
  getCertificate(certificateId: string, token: ScmAuth, options?: CallOptions): Promise<ScmResult>;
  listCertificates(
    query: Record<string, string | number | undefined>,
    token: ScmAuth,
    options?: CallOptions,
  ): Promise<ScmResult>;
  /** Closes idle keep-alive sockets. */
  close(): void;
}

export interface ScmClientOptions {
  endpoint: string;
  timeoutMs: number;
  maxSockets?: number;
  maxBodyBytes?: number;
  now?: () => number;
}

const DEFAULT_MAX_BODY_BYTES = 64 * 1024;

export function createScmClient(options: ScmClientOptions): ScmClient {
  const base = new URL(options.endpoint);
  const basePath = base.pathname.replace(/\/+$/, "");
  const transport = createHttpTransport({
    maxSockets: options.maxSockets ?? 10,
    maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    ...(options.now ? { now: options.now } : {}),
  });

  type Method = "GET" | "POST";
  const send = async (
    method: Method,
    path: string,
    token: ScmAuth,
    callOptions: CallOptions = {},
  ): Promise<ScmResult> => {
    const body = method === "POST" ? "{}" : undefined;
    const url = new URL(basePath + path, base);
    const headers = {
      Accept: "application/json",
      ...(body === undefined ? {} : { "Content-Type": "application/json;charset=UTF-8" }),
    };
    const auth = typeof token === "string" ? { "X-Auth-Token": token } : token.sign({ method, url, headers, body });
    const result = await transport.send({
      url,
      method,
      headers: { ...headers, ...auth },
      body,
      timeoutMs: Math.min(callOptions.timeoutMs ?? options.timeoutMs, options.timeoutMs),
      ...(callOptions.signal ? { signal: callOptions.signal } : {}),
    });
    return result.kind === "network" ? result : toAnswer(result, tokenOf(token));
  };

  const idPath = (certificateId: string) => {
    // The worker validates ids first; this guard keeps any other caller from building a path from junk.
    if (!CERTIFICATE_ID_PATTERN.test(certificateId))
      throw new TypeError("certificate_id must be exactly 16 characters A-Z, a-z, 0-9");
    return `/v3/scm/certificates/${encodeURIComponent(certificateId)}`;
  };

  return {
    cancelCert: (id, token, o) => send("POST", `${idPath(id)}/cancel-cert`, token, o),
    getCertificate: (id, token, o) => send("GET", idPath(id), token, o),
    listCertificates: (query, token, o) => {
      const params: Record<string, string> = {};
      for (const [key, value] of Object.entries(query)) if (value !== undefined) params[key] = String(value);
      // In the canonical form AK/SK signs (RFC 3986, sorted), so what is sent is what is signed.
      const qs = canonicalQuery(params);
      return send("GET", `/v3/scm/certificates${qs ? `?${qs}` : ""}`, token, o);
    },
    close: () => transport.close(),
  };
}

function toAnswer(answer: HttpAnswer, token: string | undefined): ScmAnswer {
  const body = parseJsonBody(answer.text);
  const record = typeof body === "object" && body !== null ? (body as Record<string, unknown>) : {};
  const retryAfter = answer.headers["retry-after"];
  const quoted = answer.text || answer.head;
  return {
    kind: "answer",
    status: answer.status,
    body,
    errorCode: typeof record.error_code === "string" ? record.error_code : undefined,
    errorMsg: typeof record.error_msg === "string" ? record.error_msg : undefined,
    excerpt: quoted ? excerptOf(quoted, token) : undefined,
    retryAfterMs: parseRetryAfter(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter),
    durationMs: answer.durationMs,
  };
}

/** How much of an unexpected body the logs and the DLQ quote. */
export const EXCERPT_LENGTH = 200;

/**
 * The start of a body, safe to log: secrets (the token, in any form the scrubber knows) are cut out of
 * the whole text first, so no prefix of one survives the cut; then control characters become spaces.
 */
export function excerptOf(text: string, token?: string): string {
  const clean = redact(text, token)
    .replace(/[\0-\x1f\x7f]+/g, " ")
    .trim();
  return clean.length > EXCERPT_LENGTH ? `${clean.slice(0, EXCERPT_LENGTH)}…` : clean;
}

/** `Retry-After` as milliseconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3). */
export function parseRetryAfter(value: string | undefined, nowMs: number = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - nowMs);
}
