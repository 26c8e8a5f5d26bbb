/**
 * A local simulator of Huawei Cloud SCM (and of the one IAM call the worker needs), for tests, the
 * local pipeline (`npm start`) and benchmarks.
 *
 * It is a real HTTP server (node:http, no framework) bound to 127.0.0.1 that follows Huawei's API page
 * for cancelling a certificate application: the `X-Auth-Token` check (or, for a request with an
 * `Authorization` header, the AK/SK signature check of `aksk-verifier.ts`), the 16-character certificate id,
 * the `{"error_code","error_msg"}` bodies. Every failure of the worker's outcome table can be
 * injected per certificate, for every SCM call, or for IAM (see {@link Fault} and {@link faults}),
 * and everything the client did is observable afterwards ({@link ScmSimulator.calls},
 * {@link ScmSimulator.stats}, {@link ScmSimulator.withdrawals}).
 *
 * Routes:
 * - `POST /v3/scm/certificates/{certificate_id}/cancel-cert`: withdraw an application (the seed API).
 * - `GET /v3/scm/certificates/{certificate_id}`: one certificate's details.
 * - `GET /v3/scm/certificates`: the listing (`limit`, `offset`, `status`, `content`, `sort_dir`, `sort_key`).
 * - `POST /v3/auth/tokens`: IAM password authentication; the token is the `X-Subject-Token` header.
 * - anything else: 404 `APIG.0101`, like the API gateway.
 *
 * Order of checks for an SCM call: the gateway rate limit, then `latencyMs`, then an injected fault,
 * then the token, the id format, existence (404), ownership (403), and the certificate's status.
 *
 * ```ts
 * const sim = await startScmSimulator({ tokens: [TOKEN] });
 * seedDemoScenario(sim);
 * sim.inject(DEMO.withdrawn, faults.unavailable(), faults.reset());
 * // ... call sim.url ...
 * expect(sim.withdrawals(DEMO.withdrawn)).toBe(1);
 * await sim.close();
 * ```
 *
 * @module
 */

import http from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { createHash, randomBytes } from "node:crypto";
import { setMaxListeners } from "node:events";
import { setTimeout as sleepFor } from "node:timers/promises";
import { DEMO } from "./demo-certificates.ts";
import type { AkSkCredentials } from "../lib/aksk-signer.ts";
import { verifyAkSk, type AkSkCheck } from "./aksk-verifier.ts";

// ---------------------------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------------------------

/** Every certificate status SCM's listing knows (the `status` query parameter, without `ALL`). */
export const CERTIFICATE_STATUSES = [
  "PAID",
  "ISSUED",
  "CHECKING",
  "CANCELCHECKING",
  "UNPASSED",
  "EXPIRED",
  "REVOKING",
  "REVOKED",
  "UPLOAD",
  "CHECKING_ORG",
  "ISSUING",
  "SUPPLEMENTCHECKING",
] as const;

/** The listing's documented `limit` values (anything else: 400 `SCM.0005`). */
export const LIST_LIMITS: readonly number[] = [10, 20, 50];
/** The listing's documented `sort_key` values. */
export const LIST_SORT_KEYS = ["certExpiredTime", "certStatus", "certUpdateTime"] as const;

/** A certificate's status, as SCM reports it. */
export type CertificateStatus = (typeof CERTIFICATE_STATUSES)[number];

/**
 * The statuses in which an application is under review: only these accept `cancel-cert` here
 * (the API page does not say which do; these are the likely ones). Any other status answers
 * 400 `SCM.0010`.
 */
export const REVIEW_STATUSES: readonly CertificateStatus[] = ["CHECKING", "CHECKING_ORG", "SUPPLEMENTCHECKING"];

/** A certificate held by the simulator. Field names follow SCM's listing and details answers. */
export interface SimCertificate {
  /** Exactly 16 characters `[A-Za-z0-9]`. */
  id: string;
  status: CertificateStatus;
  name: string;
  domain: string;
  /** When true, the token's user may not touch it: every call about it answers 403 `SCM.0003`, and the listing hides it. */
  forbidden: boolean;
  order_id: string;
  type: string;
  brand: string;
  sans: string;
  expire_time: string;
  validity_period: number;
  description: string;
  enterprise_project_id: string;
  /** Last change (ms since the epoch): the listing's `sort_key=certUpdateTime`. */
  updated_at: number;
  /** When true, business errors about it (`SCM.*` codes) come inside HTTP 500, as in SCM's older error table. */
  businessErrorsAs500: boolean;
}

/** What {@link ScmSimulator.addCertificate} needs: an id and a status; every other field has a default. */
export type CertificateInput = Pick<SimCertificate, "id" | "status"> & Partial<Omit<SimCertificate, "id" | "status">>;

const CERTIFICATE_ID = /^[A-Za-z0-9]{16}$/;

function makeCertificate(input: CertificateInput): SimCertificate {
  if (!CERTIFICATE_ID.test(input.id)) {
    throw new Error(
      `scm-simulator: certificate id must be exactly 16 characters [A-Za-z0-9], got ${JSON.stringify(input.id)}`,
    );
  }
  assertStatus(input.status);
  return {
    name: `cert-${input.id}`,
    domain: `${input.id.toLowerCase()}.example.com`,
    forbidden: false,
    order_id: `CS${input.id.slice(-13).padStart(13, "0")}`,
    type: "DV_SSL_CERT",
    brand: "GEOTRUST",
    sans: "",
    expire_time: "",
    validity_period: 12,
    description: "",
    enterprise_project_id: "0",
    updated_at: Date.now(),
    businessErrorsAs500: false,
    ...input,
  };
}

function assertStatus(status: string): asserts status is CertificateStatus {
  if (!(CERTIFICATE_STATUSES as readonly string[]).includes(status)) {
    throw new Error(`scm-simulator: unknown certificate status ${JSON.stringify(status)}`);
  }
}

/** The listing's view of a certificate. */
function summary(c: SimCertificate): Record<string, unknown> {
  return {
    id: c.id,
    name: c.name,
    domain: c.domain,
    sans: c.sans,
    type: c.type,
    brand: c.brand,
    status: c.status,
    expire_time: c.expire_time,
    validity_period: c.validity_period,
    domain_count: 1,
    wildcard_count: c.domain.startsWith("*.") ? 1 : 0,
    description: c.description,
    enterprise_project_id: c.enterprise_project_id,
  };
}

/** The details view (`GET /v3/scm/certificates/{id}`). `signature_algrithm` is SCM's own spelling. */
function details(c: SimCertificate): Record<string, unknown> {
  return {
    id: c.id,
    status: c.status,
    order_id: c.order_id,
    name: c.name,
    type: c.type,
    brand: c.brand,
    push_support: "OFF",
    revoke_reason: "",
    signature_algrithm: "SHA256WITHRSA",
    issue_time: "",
    not_before: "",
    not_after: c.expire_time,
    validity_period: c.validity_period,
    validation_method: "DNS",
    domain_type: c.domain.startsWith("*.") ? "WILDCARD" : "SINGLE_DOMAIN",
    domain: c.domain,
    sans: c.sans,
    domain_count: 1,
    wildcard_count: c.domain.startsWith("*.") ? 1 : 0,
    authentification: [],
    description: c.description,
    enterprise_project_id: c.enterprise_project_id,
  };
}

// ---------------------------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------------------------

/**
 * One injected failure, applied to one matching request (or to every one, see
 * {@link ScmSimulator.injectAlways}).
 *
 * Faults that replace the answer (`answer`, `reset`, `hang`, `huge`) leave the certificate alone
 * unless `afterEffect` is set, in which case the request is processed first (the withdrawal
 * happens, an IAM token is issued) and then the answer is lost or replaced: "the server did it, but
 * the client never heard". Faults that only slow the answer (`delay`, `drip`) always process it.
 */
export type Fault =
  /** Answer with this status, body (object → JSON, string → sent as-is, absent → empty) and headers. */
  | { kind: "answer"; status: number; body?: unknown; headers?: Record<string, string> }
  /** Destroy the connection (TCP RST) without answering: the client sees a socket error. */
  | { kind: "reset"; afterEffect?: boolean }
  /** Never answer; the socket stays open until the client gives up or the simulator closes. */
  | { kind: "hang"; afterEffect?: boolean }
  /** Answer normally, `ms` later (on top of `latencyMs`). */
  | { kind: "delay"; ms: number }
  /**
   * Send the normal answer's status and headers (with `Content-Length`) at once, then its body at
   * `bytesPerSecond`, padded with trailing spaces to `padTo` bytes if given (JSON stays valid).
   */
  | { kind: "drip"; bytesPerSecond: number; padTo?: number }
  /**
   * A huge body of exactly `bytes` bytes: status 200 → `{"cert_id","message":"success","padding":"xxx…"}`,
   * otherwise `{"error_code":"SCM.0500","error_msg":"xxx…"}`. With `chunked` no `Content-Length` is sent.
   */
  | { kind: "huge"; bytes: number; status?: number; chunked?: boolean; afterEffect?: boolean };

/** The name of a fault kind. */
export type FaultKind = Fault["kind"];

/** The kinds of request the simulator tells apart. `other` is any unknown route (404 `APIG.0101`). */
export type CallKind = "cancel" | "detail" | "list" | "iam" | "other";

/**
 * Which requests a fault applies to, in object form: all fields optional, all must match.
 * `{}` matches every SCM call; `{ call: "iam" }` matches IAM token requests.
 */
export interface FaultScope {
  /** Only calls about this certificate (cancel-cert and details). */
  certificateId?: string;
  /** Only this kind of call. */
  call?: Exclude<CallKind, "other">;
}

/**
 * Where a fault applies: a certificate id (its cancel-cert *and* details calls), `"*"` (every SCM
 * call: cancel-cert, details, listing), `"iam"` (IAM token requests), or a {@link FaultScope} to
 * narrow it, e.g. `{ certificateId: id, call: "detail" }`.
 */
export type FaultTarget = string | FaultScope;

function toScope(target: FaultTarget): FaultScope {
  if (typeof target !== "string") return target;
  if (target === "*") return {};
  if (target === "iam") return { call: "iam" };
  return { certificateId: target };
}

function scopeMatches(scope: FaultScope, kind: CallKind, certificateId: string | undefined): boolean {
  if (kind === "other") return false;
  if (kind === "iam" || scope.call === "iam") return scope.call === "iam" && kind === "iam";
  if (scope.call !== undefined && scope.call !== kind) return false;
  if (scope.certificateId !== undefined && scope.certificateId !== certificateId) return false;
  return true;
}

/**
 * The API gateway's throttling answer body (`APIG.0308`), stating the limit in force as Huawei's does
 * (or, with `"unstated"`, without the limit, as some gateways answer).
 */
export function throttleBody(
  limit: number | "unstated" = 20,
  time: "1 second" | "1 minute" = "1 second",
): { error_code: string; error_msg: string } {
  const stated = limit === "unstated" ? "" : `,limit:${limit},time:${time}`;
  return {
    error_code: "APIG.0308",
    error_msg: `The throttling threshold has been reached: policy user over ratelimit${stated}`,
  };
}

/**
 * 2xx answers that are not cancel-cert's documented success (`{"cert_id", "message"}` for the
 * certificate asked for), as a misconfigured proxy or a wrong endpoint could send them.
 */
export const ODD_SUCCESSES = ["html", "invalid-json", "error-code", "no-content", "wrong-cert-id"] as const;
export type OddSuccess = (typeof ODD_SUCCESSES)[number];

/** Builders for the common {@link Fault}s. Each returns a new fault object. */
export const faults = {
  /** Any answer: `faults.answer(400, { error_code: "SCM.0016", error_msg: "order exception" })`. */
  answer(status: number, body?: unknown, headers?: Record<string, string>): Fault {
    const fault: Fault = { kind: "answer", status };
    if (body !== undefined) fault.body = body;
    if (headers !== undefined) fault.headers = headers;
    return fault;
  },
  /** An SCM business error: `faults.scmError(500, "SCM.0016", "order exception")`. */
  scmError(status: number, errorCode: string, errorMsg = "error"): Fault {
    return { kind: "answer", status, body: { error_code: errorCode, error_msg: errorMsg } };
  },
  /** 500 `{"error_code":"SCM.0500","error_msg":"internal error"}`. */
  internalError(): Fault {
    return faults.scmError(500, "SCM.0500", "internal error");
  },
  /** 502 from the gateway: `APIG.0202 Backend unavailable.`, or an empty body with `withBody=false`. */
  badGateway(withBody = true): Fault {
    return withBody ? faults.scmError(502, "APIG.0202", "Backend unavailable.") : faults.answer(502);
  },
  /** 503 from a load balancer: a small HTML page (not JSON), or an empty body with `withBody=false`. */
  unavailable(withBody = true): Fault {
    return withBody
      ? faults.answer(503, "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>", {
          "content-type": "text/html",
        })
      : faults.answer(503);
  },
  /** 504 from the gateway: `APIG.0203 Backend timeout.`, or an empty body with `withBody=false`. */
  gatewayTimeout(withBody = true): Fault {
    return withBody ? faults.scmError(504, "APIG.0203", "Backend timeout.") : faults.answer(504);
  },
  /**
   * A 2xx that is not a withdrawal (see {@link ODD_SUCCESSES}): a 200 HTML page, a 200 with cut-off
   * JSON, a 200 `{"error_code":"SCM.0010"}`, a 204 with no body, or a 200 success naming another certificate.
   */
  oddSuccess(kind: OddSuccess): Fault {
    switch (kind) {
      case "html":
        return faults.answer(200, "<!DOCTYPE html><html><body><h1>Welcome</h1><p>Please sign in.</p></body></html>", {
          "content-type": "text/html",
        });
      case "invalid-json":
        return faults.answer(200, '{"cert_id":"scs', { "content-type": JSON_TYPE });
      case "error-code":
        return faults.answer(200, { error_code: "SCM.0010" });
      case "no-content":
        return faults.answer(204);
      case "wrong-cert-id":
        return faults.answer(200, { cert_id: "scs0000000000000", message: "success" });
    }
  },
  /**
   * 429 `APIG.0308` (limit 20), with `Retry-After` when given: seconds, or the header's text as sent
   * (an HTTP date, or something malformed).
   */
  throttle(retryAfter?: number | string): Fault {
    const headers = retryAfter === undefined ? undefined : { "retry-after": String(retryAfter) };
    return faults.answer(429, throttleBody(20), headers);
  },
  /** Destroy the connection without answering. */
  reset(options: { afterEffect?: boolean } = {}): Fault {
    return { kind: "reset", ...options };
  },
  /** Never answer. */
  hang(options: { afterEffect?: boolean } = {}): Fault {
    return { kind: "hang", ...options };
  },
  /** Answer normally after `ms`. */
  delay(ms: number): Fault {
    return { kind: "delay", ms };
  },
  /** Send the normal answer's body at `bytesPerSecond`. */
  drip(bytesPerSecond: number, options: { padTo?: number } = {}): Fault {
    return { kind: "drip", bytesPerSecond, ...options };
  },
  /** A huge body of `bytes` bytes (status 200 unless given). */
  huge(bytes: number, options: { status?: number; chunked?: boolean; afterEffect?: boolean } = {}): Fault {
    return { kind: "huge", bytes, ...options };
  },
} as const;

interface FaultEntry {
  scope: FaultScope;
  fault: Fault;
  persistent: boolean;
}

// ---------------------------------------------------------------------------------------------
// Observation
// ---------------------------------------------------------------------------------------------

/** One request the simulator received. The token itself is never stored (it is a secret). */
export interface SimCall {
  method: string;
  /** The request target as sent (path and query). */
  path: string;
  /** The certificate id from the path (URL-decoded), for cancel-cert and details calls. */
  certificateId?: string;
  kind: CallKind;
  /** The HTTP status answered; 0 while pending, and for `reset`/`hang` faults. */
  status: number;
  /** SCM calls: whether `X-Auth-Token` was an accepted token at arrival. Always false for IAM and unknown routes. */
  tokenOk: boolean;
  /**
   * Which accepted token was used (SCM calls) or issued (IAM calls): `static#<index in options.tokens>`,
   * `static#<n>` for {@link ScmSimulator.acceptToken}, `iam#<n>` for the n-th issued IAM token (from 1), or
   * `aksk#<access key>` for an AK/SK-signed call.
   */
  tokenRef?: string;
  /** The injected fault that shaped the answer, or `rate-limit` when the gateway limit throttled it. */
  fault?: FaultKind | "rate-limit";
  /** Arrival time, ms since the epoch. */
  at: number;
}

/** Counters; see {@link ScmSimulator.stats}. */
export interface SimStats {
  /** Every request received (all kinds). */
  requests: number;
  /** TCP connections accepted: with keep-alive, fewer than `requests`. */
  connectionsOpened: number;
  /** The most cancel-cert calls being handled at the same time. */
  maxInFlight: number;
  /** Cancel-cert calls being handled now (until their answer is sent or the connection closes). */
  inFlight: number;
  /** 429 answers sent: by the `rateLimitPerSecond` limit and by injected throttle faults. */
  throttled: number;
}

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

/** A user the IAM endpoint accepts (password method). */
export interface IamUser {
  /** The account (domain) name. */
  domain: string;
  /** The IAM user name. */
  user: string;
  password: string;
}

/** Options of {@link startScmSimulator}. All optional; the mutable ones can be changed later on the instance. */
export interface ScmSimulatorOptions {
  /** Port to bind on 127.0.0.1; 0 (default) picks a free one. */
  port?: number;
  /** Static tokens SCM accepts as `X-Auth-Token`; each must be at least 32 characters (the API's minimum). */
  tokens?: string[];
  /** Access keys whose AK/SK signatures SCM accepts (see `aksk-verifier.ts`). */
  accessKeys?: AkSkCredentials[];
  /** Certificates to start with. */
  certificates?: CertificateInput[];
  /** Users that `POST /v3/auth/tokens` accepts. */
  iamUsers?: IamUser[];
  /** Lifetime of issued IAM tokens, ms. Default 24 h. */
  iamTokenTtlMs?: number;
  /** Added to every SCM call (not IAM) before it is answered, ms. Default 0. */
  latencyMs?: number;
  /** Gateway limit: SCM calls accepted per sliding second; over it → 429 `APIG.0308` (no `Retry-After`). Default off. */
  rateLimitPerSecond?: number;
  /** The same per sliding minute (Huawei's policies come in both); the message then says `time:1 minute`. Default off. */
  rateLimitPerMinute?: number;
  /** Whether the listing's `offset` counts records (default) or pages of `limit` records (unverified in SCM). */
  listOffsetMode?: "records" | "pages";
  /** After a withdrawal, move the certificate from `CANCELCHECKING` to `PAID` after this many ms. Default: it stays. */
  settleMs?: number;
  /**
   * Answer every business error (`SCM.*` codes: 400, 403, 404) as HTTP 500, the shape of SCM's older
   * error table, instead of the current documents' 4xx. Per certificate: its `businessErrorsAs500` field.
   */
  businessErrorsAs500?: boolean;
}

// ---------------------------------------------------------------------------------------------
// The simulator
// ---------------------------------------------------------------------------------------------

const JSON_TYPE = "application/json;charset=UTF-8";
const MIN_TOKEN_LENGTH = 32;
const MAX_REQUEST_BODY = 1 << 20;
const MAX_HEADER_BYTES = 2_097_152 + 64 * 1024;
const DAY_MS = 24 * 60 * 60 * 1000;

interface Answer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

type TokenCheck = { ok: true; ref: string } | { ok: false; code: string; reason: string };

interface IssuedToken {
  ref: string;
  expiresAt: number;
  revoked: boolean;
}

function akskCheck(check: AkSkCheck): TokenCheck {
  return check.ok ? { ok: true, ref: `aksk#${check.accessKey}` } : check;
}

function scmError(status: number, errorCode: string, errorMsg: string): Answer {
  return { status, body: { error_code: errorCode, error_msg: errorMsg } };
}

function iamError(status: number, title: string, message: string): Answer {
  return { status, body: { error: { code: status, message, title } } };
}

/** Huawei IAM's timestamp format: ISO-8601 with microseconds, e.g. `2025-01-05T07:21:45.508000Z`. */
function iamTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

function serialize(answer: Answer): { headers: Record<string, string>; payload: Buffer } {
  const headers: Record<string, string> = {};
  let payload: Buffer;
  if (answer.body === undefined) {
    payload = Buffer.alloc(0);
  } else if (typeof answer.body === "string") {
    payload = Buffer.from(answer.body, "utf8");
    headers["content-type"] = "text/plain;charset=UTF-8";
  } else if (answer.body instanceof Uint8Array) {
    payload = Buffer.from(answer.body);
    headers["content-type"] = "application/octet-stream";
  } else {
    payload = Buffer.from(JSON.stringify(answer.body), "utf8");
    headers["content-type"] = JSON_TYPE;
  }
  for (const [name, value] of Object.entries(answer.headers ?? {})) headers[name.toLowerCase()] = value;
  return { headers, payload };
}

function route(method: string, pathname: string): { kind: CallKind; certificateId?: string } {
  if (pathname === "/v3/auth/tokens") return { kind: method === "POST" ? "iam" : "other" };
  if (pathname === "/v3/scm/certificates") return { kind: method === "GET" ? "list" : "other" };
  const match = /^\/v3\/scm\/certificates\/([^/]*)(\/cancel-cert)?$/.exec(pathname);
  if (!match) return { kind: "other" };
  let certificateId: string;
  try {
    certificateId = decodeURIComponent(match[1] ?? "");
  } catch {
    certificateId = match[1] ?? "";
  }
  if (match[2]) return { kind: method === "POST" ? "cancel" : "other", certificateId };
  return { kind: method === "GET" ? "detail" : "other", certificateId };
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_REQUEST_BODY) chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", () => resolve(Buffer.concat(chunks)));
    req.on("close", () => resolve(Buffer.concat(chunks)));
  });
}

function waitForDrain(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}

/** A 32-hex-character id derived from a name, like IAM's ids (stable across calls). */
function stableId(name: string): string {
  return createHash("sha256").update(name).digest("hex").slice(0, 32);
}

/** An SCM business error: a 4xx other than 401 (credentials are the gateway's, `APIGW.*`) with an `SCM.*` code. */
function isBusinessError(answer: Answer): boolean {
  const code = isRecord(answer.body) ? answer.body.error_code : undefined;
  const clientError = answer.status >= 400 && answer.status < 500 && answer.status !== 401;
  return clientError && typeof code === "string" && code.startsWith("SCM.");
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * A running SCM simulator. Create it with {@link startScmSimulator}; always {@link ScmSimulator.close} it.
 *
 * The public fields `latencyMs`, `rateLimitPerSecond`, `rateLimitPerMinute`, `listOffsetMode`, `settleMs`,
 * `iamTokenTtlMs` and `businessErrorsAs500` may be changed while it runs.
 */
export class ScmSimulator {
  /** Added to every SCM call, ms. */
  latencyMs: number;
  /** SCM calls accepted per sliding second (0 = no limit). */
  rateLimitPerSecond: number;
  /** SCM calls accepted per sliding minute (0 = no limit). */
  rateLimitPerMinute: number;
  /** Whether the listing's `offset` counts records or pages. */
  listOffsetMode: "records" | "pages";
  /** Ms after which a withdrawn certificate moves from `CANCELCHECKING` to `PAID`; undefined = never. */
  settleMs: number | undefined;
  /** Lifetime of newly issued IAM tokens, ms. */
  iamTokenTtlMs: number;
  /** Business errors (`SCM.*` codes) as HTTP 500 for every certificate and the listing. */
  businessErrorsAs500: boolean;

  readonly #server: http.Server;
  #url = "";
  readonly #sockets = new Set<Socket>();
  readonly #abort = new AbortController();
  #closing: Promise<void> | undefined;

  readonly #certificates = new Map<string, SimCertificate>();
  readonly #withdrawals = new Map<string, number>();
  readonly #settleTimers = new Set<NodeJS.Timeout>();
  readonly #staticTokens = new Map<string, string>();
  readonly #issuedTokens = new Map<string, IssuedToken>();
  readonly #accessKeys = new Map<string, AkSkCredentials>();
  readonly #iamUsers: IamUser[];
  #issuedCount = 0;
  #iamExchanges = 0;

  #faults: FaultEntry[] = [];
  #calls: SimCall[] = [];
  #stats: SimStats = { requests: 0, connectionsOpened: 0, maxInFlight: 0, inFlight: 0, throttled: 0 };
  #window: number[] = [];

  private constructor(options: ScmSimulatorOptions) {
    this.latencyMs = options.latencyMs ?? 0;
    this.rateLimitPerSecond = options.rateLimitPerSecond ?? 0;
    this.rateLimitPerMinute = options.rateLimitPerMinute ?? 0;
    this.listOffsetMode = options.listOffsetMode ?? "records";
    this.settleMs = options.settleMs;
    this.iamTokenTtlMs = options.iamTokenTtlMs ?? DAY_MS;
    this.businessErrorsAs500 = options.businessErrorsAs500 ?? false;
    this.#iamUsers = [...(options.iamUsers ?? [])];
    for (const token of options.tokens ?? []) this.acceptToken(token);
    for (const key of options.accessKeys ?? []) this.acceptAccessKey(key);
    for (const certificate of options.certificates ?? []) this.addCertificate(certificate);
    setMaxListeners(0, this.#abort.signal);

    // The API allows X-Auth-Token values up to 2,097,152 characters: raise node's 16 KiB header limit.
    this.#server = http.createServer({ maxHeaderSize: MAX_HEADER_BYTES }, (req, res) => {
      this.#handle(req, res).catch(() => res.destroy());
    });
    this.#server.on("connection", (socket: Socket) => {
      this.#stats.connectionsOpened++;
      this.#sockets.add(socket);
      socket.on("close", () => this.#sockets.delete(socket));
    });
  }

  /** Starts a simulator; prefer {@link startScmSimulator}. */
  static async start(options: ScmSimulatorOptions = {}): Promise<ScmSimulator> {
    const sim = new ScmSimulator(options);
    await new Promise<void>((resolve, reject) => {
      sim.#server.once("error", reject);
      sim.#server.listen(options.port ?? 0, "127.0.0.1", () => {
        sim.#server.off("error", reject);
        resolve();
      });
    });
    const { port } = sim.#server.address() as AddressInfo;
    sim.#url = `http://127.0.0.1:${port}`;
    return sim;
  }

  /** The base URL, `http://127.0.0.1:PORT` (no trailing slash): use it as `SCM_ENDPOINT`. */
  get url(): string {
    return this.#url;
  }

  /** Stops the server and destroys every open connection, hung ones included. Safe to call twice. */
  close(): Promise<void> {
    if (!this.#closing) {
      this.#abort.abort();
      for (const timer of this.#settleTimers) clearTimeout(timer);
      this.#settleTimers.clear();
      this.#closing = new Promise((resolve) => this.#server.close(() => resolve()));
      for (const socket of this.#sockets) socket.destroy();
    }
    return this.#closing;
  }

  // ---- certificates ----

  /** Adds (or replaces) a certificate. Throws for an id that is not 16 characters `[A-Za-z0-9]`. */
  addCertificate(input: CertificateInput): SimCertificate {
    const certificate = makeCertificate(input);
    this.#certificates.set(certificate.id, certificate);
    return { ...certificate };
  }

  /** Sets a known certificate's status. Throws for an unknown id or status. */
  setStatus(id: string, status: CertificateStatus): void {
    assertStatus(status);
    const certificate = this.#certificates.get(id);
    if (!certificate) throw new Error(`scm-simulator: unknown certificate ${id}`);
    certificate.status = status;
    certificate.updated_at = Date.now();
  }

  /** A copy of the certificate's current state, or undefined when unknown. */
  certificate(id: string): SimCertificate | undefined {
    const certificate = this.#certificates.get(id);
    return certificate ? { ...certificate } : undefined;
  }

  /** How many cancel-cert calls on this certificate answered 200 (a second withdrawal shows as 2). */
  withdrawals(id: string): number {
    return this.#withdrawals.get(id) ?? 0;
  }

  // ---- tokens ----

  /** Adds a static token SCM accepts (at least 32 characters); returns its `tokenRef` for {@link SimCall}. */
  acceptToken(token: string): string {
    if (token.length < MIN_TOKEN_LENGTH) {
      throw new Error(
        `scm-simulator: static tokens must be at least ${MIN_TOKEN_LENGTH} characters (the API's minimum)`,
      );
    }
    const existing = this.#staticTokens.get(token);
    if (existing) return existing;
    const ref = `static#${this.#staticTokens.size}`;
    this.#staticTokens.set(token, ref);
    return ref;
  }

  /** Accepts AK/SK signatures made with `key` (replacing an earlier key with the same access key). */
  acceptAccessKey(key: AkSkCredentials): void {
    this.#accessKeys.set(key.accessKey, { ...key });
  }

  /** Stops accepting an access key (a deleted or rotated key pair): SCM answers 401 for its signatures. */
  rejectAccessKey(accessKey: string): void {
    this.#accessKeys.delete(accessKey);
  }

  /** Stops accepting a static token (e.g. to simulate a rotated secret): SCM answers 401 for it. */
  rejectToken(token: string): void {
    this.#staticTokens.delete(token);
  }

  /** Revokes every IAM token issued so far: SCM answers 401 for them. Later exchanges work again. */
  revokeIamTokens(): void {
    for (const issued of this.#issuedTokens.values()) issued.revoked = true;
  }

  /** How many IAM tokens were issued (successful `POST /v3/auth/tokens`). */
  get iamExchanges(): number {
    return this.#iamExchanges;
  }

  // ---- faults ----

  /** Queues one-shot faults for `target`: each is used by one matching request, in order. */
  inject(target: FaultTarget, ...injected: Fault[]): void {
    const scope = toScope(target);
    for (const fault of injected) this.#faults.push({ scope, fault, persistent: false });
  }

  /**
   * Applies `fault` to every matching request until {@link ScmSimulator.clearFaults}. One-shot
   * faults queued for a request win over persistent ones.
   */
  injectAlways(target: FaultTarget, fault: Fault): void {
    this.#faults.push({ scope: toScope(target), fault, persistent: true });
  }

  /** Removes every fault, one-shot and persistent. */
  clearFaults(): void {
    this.#faults = [];
  }

  /** How many one-shot faults are still waiting to be used. */
  pendingFaults(): number {
    return this.#faults.filter((entry) => !entry.persistent).length;
  }

  // ---- observation ----

  /** Every request received, in arrival order (statuses filled in as answers are sent). */
  get calls(): readonly SimCall[] {
    return this.#calls;
  }

  /** A snapshot of the counters. */
  get stats(): SimStats {
    return { ...this.#stats };
  }

  /**
   * Clears calls, stats, withdrawal counts, the rate-limit window and faults. Certificates, tokens
   * and the IAM exchange count stay, unless `certificates: true` (removes all certificates).
   */
  reset(options: { certificates?: boolean } = {}): void {
    this.#calls = [];
    this.#faults = [];
    this.#window = [];
    this.#withdrawals.clear();
    this.#stats = {
      requests: 0,
      connectionsOpened: 0,
      maxInFlight: this.#stats.inFlight,
      inFlight: this.#stats.inFlight,
      throttled: 0,
    };
    if (options.certificates) this.#certificates.clear();
  }

  // ---- request handling ----

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.on("error", () => {});
    this.#stats.requests++;
    const method = req.method ?? "GET";
    const target = req.url ?? "/";
    const url = new URL(target, "http://127.0.0.1");
    const { kind, certificateId } = route(method, url.pathname);
    const call: SimCall = { method, path: target, kind, status: 0, tokenOk: false, at: Date.now() };
    if (certificateId !== undefined) call.certificateId = certificateId;
    this.#calls.push(call);

    if (kind === "cancel") {
      this.#stats.inFlight++;
      this.#stats.maxInFlight = Math.max(this.#stats.maxInFlight, this.#stats.inFlight);
      res.once("close", () => this.#stats.inFlight--);
    }

    const body = await readBody(req);
    if (kind === "other") {
      this.#send(
        res,
        call,
        scmError(404, "APIG.0101", "The API does not exist or has not been published in the environment"),
      );
      return;
    }

    let process: () => Answer;
    if (kind === "iam") {
      process = () => this.#iam(body, call);
    } else {
      // A request carrying an Authorization header is an AK/SK-signed one (Huawei's SDK sends no token).
      const token: TokenCheck =
        req.headers.authorization === undefined
          ? this.#checkToken(req.headers["x-auth-token"])
          : akskCheck(verifyAkSk({ method, target, headers: req.headers, body }, this.#accessKeys, Date.now()));
      call.tokenOk = token.ok;
      if (token.ok) call.tokenRef = token.ref;
      // The gateway counts a call when it arrives, before the backend's latency.
      const throttledBy = this.#throttledBy();
      if (this.latencyMs > 0 && !(await this.#sleep(this.latencyMs))) return;
      if (throttledBy) {
        call.fault = "rate-limit";
        this.#send(res, call, { status: 429, body: throttleBody(throttledBy.limit, throttledBy.time) });
        return;
      }
      process = () => this.#scm(kind, certificateId ?? "", token, url.searchParams);
    }

    const fault = this.#takeFault(kind, certificateId);
    if (!fault) {
      this.#send(res, call, process());
      return;
    }
    call.fault = fault.kind;
    switch (fault.kind) {
      case "answer":
        this.#send(res, call, fault);
        return;
      case "reset":
        if (fault.afterEffect) process();
        req.socket.resetAndDestroy();
        return;
      case "hang":
        if (fault.afterEffect) process();
        return;
      case "delay":
        if (await this.#sleep(fault.ms)) this.#send(res, call, process());
        return;
      case "drip":
        await this.#drip(res, call, process(), fault.bytesPerSecond, fault.padTo);
        return;
      case "huge":
        if (fault.afterEffect) process();
        await this.#huge(res, call, fault.bytes, fault.status ?? 200, fault.chunked ?? false, certificateId ?? "");
        return;
    }
  }

  #takeFault(kind: CallKind, certificateId: string | undefined): Fault | undefined {
    const index = this.#faults.findIndex((e) => !e.persistent && scopeMatches(e.scope, kind, certificateId));
    if (index >= 0) return this.#faults.splice(index, 1)[0]?.fault;
    return this.#faults.find((e) => e.persistent && scopeMatches(e.scope, kind, certificateId))?.fault;
  }

  /**
   * The gateway's sliding windows (one second, one minute) over the SCM calls it let through: the
   * policy this call exceeds, or undefined to let it through (and count it).
   */
  #throttledBy(): { limit: number; time: "1 second" | "1 minute" } | undefined {
    if (this.rateLimitPerSecond <= 0 && this.rateLimitPerMinute <= 0) return undefined;
    const now = Date.now();
    const keepMs = this.rateLimitPerMinute > 0 ? 60_000 : 1000;
    while (this.#window.length > 0 && (this.#window[0] ?? 0) <= now - keepMs) this.#window.shift();
    if (this.rateLimitPerMinute > 0 && this.#window.length >= this.rateLimitPerMinute)
      return { limit: this.rateLimitPerMinute, time: "1 minute" };
    if (this.rateLimitPerSecond > 0) {
      let lastSecond = 0;
      for (let i = this.#window.length - 1; i >= 0 && (this.#window[i] ?? 0) > now - 1000; i--) lastSecond++;
      if (lastSecond >= this.rateLimitPerSecond) return { limit: this.rateLimitPerSecond, time: "1 second" };
    }
    this.#window.push(now);
    return undefined;
  }

  #checkToken(header: string | string[] | undefined): TokenCheck {
    const token = Array.isArray(header) ? header[0] : header;
    if (!token) return { ok: false, code: "APIGW.0301", reason: "x-auth-token not found" };
    if (token.length < MIN_TOKEN_LENGTH) return { ok: false, code: "APIGW.0301", reason: "decrypt token fail" };
    const staticRef = this.#staticTokens.get(token);
    if (staticRef) return { ok: true, ref: staticRef };
    const issued = this.#issuedTokens.get(token);
    if (!issued) return { ok: false, code: "APIGW.0301", reason: "decrypt token fail" };
    if (issued.revoked) return { ok: false, code: "APIGW.0301", reason: "token has been revoked" };
    if (Date.now() >= issued.expiresAt) return { ok: false, code: "APIGW.0307", reason: "The token must be updated." };
    return { ok: true, ref: issued.ref };
  }

  /** Cancel-cert, details and listing, once past the gateway and the faults, in the business-error shape asked for. */
  #scm(kind: CallKind, id: string, token: TokenCheck, query: URLSearchParams): Answer {
    const answer = this.#scmAnswer(kind, id, token, query);
    const as500 = this.businessErrorsAs500 || this.#certificates.get(id)?.businessErrorsAs500 === true;
    return as500 && isBusinessError(answer) ? { ...answer, status: 500 } : answer;
  }

  /** Cancel-cert, details and listing as current documents answer them. Applies the withdrawal. */
  #scmAnswer(kind: CallKind, id: string, token: TokenCheck, query: URLSearchParams): Answer {
    if (!token.ok) {
      return scmError(401, token.code, `Incorrect IAM authentication information: ${token.reason}`);
    }
    if (kind === "list") return this.#list(query);
    if (!CERTIFICATE_ID.test(id)) return scmError(400, "SCM.0008", "abnormal certificate id");
    const certificate = this.#certificates.get(id);
    if (!certificate) return scmError(404, "SCM.0020", "certificate not found");
    if (certificate.forbidden) return scmError(403, "SCM.0003", "tenant has no privilege to operate this certificate");
    if (kind === "detail") return { status: 200, body: details(certificate) };

    if (!REVIEW_STATUSES.includes(certificate.status)) {
      return scmError(400, "SCM.0010", "The operation is not allowed for the certificate's current status");
    }
    certificate.status = "CANCELCHECKING";
    certificate.updated_at = Date.now();
    this.#withdrawals.set(id, this.withdrawals(id) + 1);
    if (this.settleMs !== undefined) this.#scheduleSettle(certificate, this.settleMs);
    return { status: 200, body: { cert_id: id, message: "success" } };
  }

  #scheduleSettle(certificate: SimCertificate, ms: number): void {
    const timer = setTimeout(() => {
      this.#settleTimers.delete(timer);
      if (certificate.status === "CANCELCHECKING") {
        certificate.status = "PAID";
        certificate.updated_at = Date.now();
      }
    }, ms);
    timer.unref();
    this.#settleTimers.add(timer);
  }

  #list(query: URLSearchParams): Answer {
    const bad = (name: string) => scmError(400, "SCM.0005", `incorrect request parameter: ${name}`);
    const integer = (name: string, fallback: number, min: number, max: number): number | undefined => {
      const raw = query.get(name);
      if (raw === null) return fallback;
      if (!/^\d+$/.test(raw)) return undefined;
      const value = Number(raw);
      return value >= min && value <= max ? value : undefined;
    };
    // Documented: limit 10, 20 or 50 only; offset 0..100.
    const limit = integer("limit", 10, 10, 50);
    if (limit === undefined || !LIST_LIMITS.includes(limit)) return bad("limit");
    const offset = integer("offset", 0, 0, 100);
    if (offset === undefined) return bad("offset");
    const status = query.get("status") ?? "ALL";
    if (status !== "ALL" && !(CERTIFICATE_STATUSES as readonly string[]).includes(status)) return bad("status");
    const sortDir = query.get("sort_dir");
    if (sortDir !== null && sortDir !== "ASC" && sortDir !== "DESC") return bad("sort_dir");
    const sortKey = query.get("sort_key");
    if (sortKey !== null && !(LIST_SORT_KEYS as readonly string[]).includes(sortKey)) return bad("sort_key");
    const content = (query.get("content") ?? "").toLowerCase();

    const matching = [...this.#certificates.values()].filter(
      (c) =>
        !c.forbidden &&
        (status === "ALL" || c.status === status) &&
        (content === "" || c.name.toLowerCase().includes(content) || c.domain.toLowerCase().includes(content)),
    );
    if (sortKey !== null) {
      const key = (c: SimCertificate): string | number =>
        sortKey === "certStatus" ? c.status : sortKey === "certExpiredTime" ? c.expire_time : c.updated_at;
      const direction = sortDir === "ASC" ? 1 : -1;
      matching.sort((a, b) => (key(a) < key(b) ? -direction : key(a) > key(b) ? direction : 0));
    }
    const start = this.listOffsetMode === "pages" ? offset * limit : offset;
    return {
      status: 200,
      body: { certificates: matching.slice(start, start + limit).map(summary), total_count: matching.length },
    };
  }

  /** `POST /v3/auth/tokens`: password method, domain or project scope. Issues a token on success. */
  #iam(raw: Buffer, call: SimCall): Answer {
    let request: unknown;
    try {
      request = JSON.parse(raw.toString("utf8"));
    } catch {
      return iamError(400, "Bad Request", "The request body is not valid JSON.");
    }
    const auth = isRecord(request) ? request.auth : undefined;
    const identity = isRecord(auth) ? auth.identity : undefined;
    const methods = isRecord(identity) ? identity.methods : undefined;
    const password = isRecord(identity) ? identity.password : undefined;
    const user = isRecord(password) ? password.user : undefined;
    const userDomain = isRecord(user) ? user.domain : undefined;
    if (
      !Array.isArray(methods) ||
      !methods.includes("password") ||
      !isRecord(user) ||
      typeof user.name !== "string" ||
      typeof user.password !== "string" ||
      !isRecord(userDomain) ||
      typeof userDomain.name !== "string"
    ) {
      return iamError(400, "Bad Request", "Invalid input for field 'identity'.");
    }
    const scope = isRecord(auth) ? auth.scope : undefined;
    const scopeDomain = isRecord(scope) ? scope.domain : undefined;
    const scopeProject = isRecord(scope) ? scope.project : undefined;
    if (scope !== undefined && !isRecord(scopeDomain) && !isRecord(scopeProject)) {
      return iamError(400, "Bad Request", "Invalid input for field 'scope'.");
    }

    const account = this.#iamUsers.find(
      (u) => u.domain === userDomain.name && u.user === user.name && u.password === user.password,
    );
    const domainMismatch =
      isRecord(scopeDomain) && scopeDomain.name !== undefined && scopeDomain.name !== account?.domain;
    if (!account || domainMismatch) return iamError(401, "Unauthorized", "The username or password is wrong.");

    const issuedAt = Date.now();
    const expiresAt = issuedAt + this.iamTokenTtlMs;
    const token = `MII${randomBytes(96).toString("base64url")}`;
    const ref = `iam#${++this.#issuedCount}`;
    this.#issuedTokens.set(token, { ref, expiresAt, revoked: false });
    this.#iamExchanges++;
    call.tokenRef = ref;

    const domain = { id: stableId(`domain:${account.domain}`), name: account.domain };
    const body: Record<string, unknown> = {
      expires_at: iamTime(expiresAt),
      issued_at: iamTime(issuedAt),
      methods: ["password"],
      user: {
        domain,
        id: stableId(`user:${account.domain}/${account.user}`),
        name: account.user,
        password_expires_at: "",
      },
      roles: [{ id: "0", name: "te_admin" }],
    };
    if (isRecord(scopeProject)) {
      const project = String(scopeProject.name ?? scopeProject.id ?? "");
      body.project = { domain, id: stableId(`project:${account.domain}/${project}`), name: project };
    } else {
      body.domain = domain;
    }
    return { status: 201, headers: { "x-subject-token": token }, body: { token: body } };
  }

  // ---- writing answers ----

  #send(res: ServerResponse, call: SimCall, answer: Answer): void {
    if (res.destroyed || res.headersSent) return;
    const { headers, payload } = serialize(answer);
    call.status = answer.status;
    if (answer.status === 429) this.#stats.throttled++;
    res.writeHead(answer.status, { ...headers, "content-length": String(payload.length) });
    res.end(payload);
  }

  async #drip(
    res: ServerResponse,
    call: SimCall,
    answer: Answer,
    bytesPerSecond: number,
    padTo?: number,
  ): Promise<void> {
    if (res.destroyed) return;
    const { headers, payload: body } = serialize(answer);
    const payload =
      padTo !== undefined && padTo > body.length ? Buffer.concat([body, Buffer.alloc(padTo - body.length, " ")]) : body;
    call.status = answer.status;
    if (answer.status === 429) this.#stats.throttled++;
    res.writeHead(answer.status, { ...headers, "content-length": String(payload.length) });
    res.flushHeaders();
    const rate = Math.max(1, bytesPerSecond);
    const tickMs = Math.max(50, Math.ceil(1000 / rate));
    const perTick = Math.max(1, Math.round((rate * tickMs) / 1000));
    for (let offset = 0; offset < payload.length; offset += perTick) {
      if (!(await this.#sleep(tickMs)) || res.destroyed) return;
      res.write(payload.subarray(offset, offset + perTick));
    }
    res.end();
  }

  async #huge(
    res: ServerResponse,
    call: SimCall,
    bytes: number,
    status: number,
    chunked: boolean,
    id: string,
  ): Promise<void> {
    if (res.destroyed) return;
    const [prefix, suffix] =
      status < 300
        ? [`{"cert_id":${JSON.stringify(id)},"message":"success","padding":"`, `"}`]
        : [`{"error_code":"SCM.0500","error_msg":"`, `"}`];
    const fill = Math.max(0, bytes - Buffer.byteLength(prefix) - Buffer.byteLength(suffix));
    const headers: Record<string, string> = { "content-type": JSON_TYPE };
    if (!chunked) headers["content-length"] = String(Buffer.byteLength(prefix) + fill + Buffer.byteLength(suffix));
    call.status = status;
    res.writeHead(status, headers);
    res.write(prefix);
    const block = Buffer.alloc(64 * 1024, "x");
    for (let left = fill; left > 0; left -= block.length) {
      if (res.destroyed) return;
      if (!res.write(left >= block.length ? block : block.subarray(0, left))) await waitForDrain(res);
    }
    if (!res.destroyed) res.end(suffix);
  }

  /** Sleeps `ms`; false when the simulator closed meanwhile (then the caller stops). */
  async #sleep(ms: number): Promise<boolean> {
    try {
      await sleepFor(ms, undefined, { signal: this.#abort.signal });
      return true;
    } catch {
      return false;
    }
  }
}

/**
 * Starts an SCM simulator on 127.0.0.1 (port 0 = any free port unless `options.port`).
 *
 * ```ts
 * const sim = await startScmSimulator({ tokens: ["x".repeat(40)], iamUsers: [{ domain: "acme", user: "ops", password: "pw" }] });
 * ```
 */
export function startScmSimulator(options: ScmSimulatorOptions = {}): Promise<ScmSimulator> {
  return ScmSimulator.start(options);
}

/**
 * Seeds the demo certificates of `local/demo-certificates.ts` so that each id produces the outcome
 * its comment describes. Call it on a fresh simulator (or after `sim.reset()`), since the one-shot
 * faults it queues are consumed by use:
 * - `withdrawn`: CHECKING → 200, then CANCELCHECKING.
 * - `alreadyWithdrawn`: PAID → 400 SCM.0010, details PAID.
 * - `rejected`: ISSUED → 400 SCM.0010, details ISSUED.
 * - `forbidden`: forbidden → 403 SCM.0003.
 * - `notFound`: not added → 404 SCM.0020.
 * - `transientThenWithdrawn`: CHECKING, first two calls 503, then 200.
 * - `alwaysFailing`: CHECKING, every call 500 SCM.0500 (persistent until `clearFaults()`).
 * - `throttledThenWithdrawn`: CHECKING, first call 429 APIG.0308 with `Retry-After: 1`, then 200.
 */
export function seedDemoScenario(sim: ScmSimulator): void {
  const review = (id: string, name: string) =>
    sim.addCertificate({
      id,
      status: "CHECKING",
      name: `demo-${name}`,
      domain: `${name.toLowerCase()}.demo.example.com`,
    });
  review(DEMO.withdrawn, "withdrawn");
  sim.addCertificate({
    id: DEMO.alreadyWithdrawn,
    status: "PAID",
    name: "demo-alreadyWithdrawn",
    domain: "alreadywithdrawn.demo.example.com",
  });
  sim.addCertificate({
    id: DEMO.rejected,
    status: "ISSUED",
    name: "demo-rejected",
    domain: "rejected.demo.example.com",
  });
  sim.addCertificate({
    id: DEMO.forbidden,
    status: "CHECKING",
    name: "demo-forbidden",
    domain: "forbidden.demo.example.com",
    forbidden: true,
  });
  review(DEMO.transientThenWithdrawn, "transientThenWithdrawn");
  sim.inject(DEMO.transientThenWithdrawn, faults.unavailable(), faults.unavailable());
  review(DEMO.alwaysFailing, "alwaysFailing");
  sim.injectAlways(DEMO.alwaysFailing, faults.internalError());
  review(DEMO.throttledThenWithdrawn, "throttledThenWithdrawn");
  sim.inject(DEMO.throttledThenWithdrawn, faults.throttle(1));
}
