/**
 * The IAM token exchange behind the `{"iam": {...}}` secret: stored credentials in, an SCM
 * `X-Auth-Token` out, so nobody has to rotate a 24-hour token by hand.
 *
 * `POST {endpoint}/v3/auth/tokens?nocatalog=true` with the password method; the token is the
 * `X-Subject-Token` response header and `token.expires_at` (ISO-8601 with microseconds) says when it
 * dies. API: https://support.huaweicloud.com/intl/en-us/api-iam/iam_30_0001.html
 *
 * - Over the shared transport (`http-transport.ts`, like `scm-client.ts`): keep-alive, one time limit
 *   per request (connecting, silence and a slow drip alike), and at most `MAX_BODY_BYTES` of an answer read.
 * - A connection error is retried once at once: a keep-alive socket that IAM closed while the
 *   container was frozen fails that way, and an extra token is harmless (a new one revokes nothing).
 * - Every failure is a `TokenUnavailableError`: `iam_unreachable` (network, time limit, 429, 5xx, an
 *   answer without a usable token) or `iam_rejected` (401/403: the stored credentials are wrong;
 *   other 4xx: the request built from the secret is refused). `secret_unusable` for a bad endpoint.
 * - After `iam_rejected`, the same credentials are not sent again for `rejectionHoldMs`: retrying a
 *   wrong password on every invocation could lock the IAM user (Huawei's account lockout policy may
 *   lock users after repeated failed logins; unverified for API logins). A changed secret is tried at once.
 * - The password and the tokens never reach an error message; user and domain names (not secrets) do,
 *   so the message says which credentials to fix.
 */
import { createHash } from "node:crypto";
import { isAcceptableEndpoint } from "./config.ts";
import { TokenUnavailableError } from "./errors.ts";
import { createHttpTransport, parseJsonBody } from "./http-transport.ts";
import { redact } from "./redact.ts";
import type { IamCredentials, IamExchange, IssuedToken } from "./token-provider.ts";

/** What one HTTP exchange with IAM gave: an answer (any status) or a network failure. Never throws. */
export type IamHttpResult =
  | { kind: "answer"; status: number; subjectToken: string | undefined; body: unknown }
  | { kind: "network"; failure: "timeout" | "connection"; message: string };

/** Sends the token request; the default is the shared `lib/http-transport.ts` (tests may pass their own). */
export type IamTransport = (url: URL, body: string, timeoutMs: number) => Promise<IamHttpResult>;

export interface IamExchangeOptions {
  /** Used when the secret names no `endpoint` (`IAM_ENDPOINT`, already validated by the config). */
  endpoint: string;
  /** One request's time limit (`IAM_TIMEOUT_MS`). */
  timeoutMs: number;
  /** The secret's name, for error messages (never its value). */
  secretId?: string;
  /** How long rejected credentials are not sent again. Default 60 s. */
  rejectionHoldMs?: number;
  transport?: IamTransport & { close?: () => void };
  now?: () => number;
}

export interface IamExchanger {
  exchange: IamExchange;
  /** Closes idle keep-alive sockets. */
  close(): void;
}

/** Same minimum as a stored token (API page: X-Auth-Token is 32 to 2,097,152 characters). */
const MIN_TOKEN_LENGTH = 32;
/** Without the catalog (`nocatalog=true`) the body is a few KB of user, roles and scope. */
const MAX_BODY_BYTES = 256 * 1024;
/** Huawei tokens can be long (PKI, up to 2,097,152 characters); node's default header limit is 16 KiB. */
const MAX_HEADER_BYTES = 2_097_152 + 64 * 1024;
const DEFAULT_REJECTION_HOLD_MS = 60_000;
/** Cut IAM's own error text to this length in messages. */
const MAX_IAM_MESSAGE = 200;

/** The request body of the password method, scoped to the domain or to one project (by name). */
export function buildTokenRequest(credentials: IamCredentials): { auth: Record<string, unknown> } {
  return {
    auth: {
      identity: {
        methods: ["password"],
        password: {
          user: { name: credentials.user, password: credentials.password, domain: { name: credentials.domain } },
        },
      },
      scope:
        credentials.scope === "domain"
          ? { domain: { name: credentials.domain } }
          : { project: { name: credentials.scope.project } },
    },
  };
}

/**
 * The token URL for a base endpoint: `https://iam.myhuaweicloud.com` → `.../v3/auth/tokens?nocatalog=true`.
 * A base that already ends in `/v3` or `/v3/auth/tokens` (copied from the API page) is accepted too.
 * Throws `secret_unusable` (naming `what`) for anything `isAcceptableEndpoint` refuses.
 */
export function tokenUrl(endpoint: string, what = "the IAM endpoint"): URL {
  if (!isAcceptableEndpoint(endpoint)) {
    throw new TokenUnavailableError(
      "secret_unusable",
      `${what} must be an https:// URL (http:// only for loopback hosts), without credentials, query or fragment (got ${describeEndpoint(endpoint)})`,
    );
  }
  const url = new URL(endpoint);
  const base = url.pathname.replace(/\/+$/, "").replace(/\/v3(\/auth\/tokens)?$/, "");
  url.pathname = `${base}/v3/auth/tokens`;
  url.search = "?nocatalog=true";
  return url;
}

/** An endpoint for a message: scheme, host and path only, so credentials in a bad URL are never echoed. */
function describeEndpoint(value: string): string {
  try {
    const url = new URL(value);
    const extras = [
      url.username || url.password ? "credentials" : "",
      url.search ? "a query" : "",
      url.hash ? "a fragment" : "",
    ].filter(Boolean);
    return `${JSON.stringify(`${url.protocol}//${url.host}${url.pathname === "/" ? "" : url.pathname}`)}${extras.length > 0 ? ` with ${extras.join(" and ")}` : ""}`;
  } catch {
    return "something that is not a URL";
  }
}

const IAM_TIME = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/;

/**
 * IAM's timestamps as ms since the epoch: ISO-8601 with any number of fractional digits (Huawei sends
 * microseconds, `2025-01-05T07:21:45.508000Z`), `Z` or an offset. Undefined for anything else.
 */
export function parseIamTime(value: unknown): number | undefined {
  if (typeof value !== "string") return undefined;
  const match = IAM_TIME.exec(value.trim());
  if (!match) return undefined;
  // Date.parse is only specified for exactly three fractional digits: normalise to that.
  const millis = (match[2] ?? "").padEnd(3, "0").slice(0, 3);
  const ms = Date.parse(`${match[1]}.${millis}${match[3]}`);
  return Number.isNaN(ms) ? undefined : ms;
}

/** What the error messages need to say where and for whom, without any secret. */
export interface AnswerContext {
  /** Origin of the IAM endpoint asked. */
  endpoint: string;
  secretId: string | undefined;
  credentials: IamCredentials;
  now: number;
}

/** Turns IAM's answer into a token, or the precise `TokenUnavailableError`. Pure. */
export function interpretTokenAnswer(result: IamHttpResult, context: AnswerContext): IssuedToken {
  const where = `IAM at ${context.endpoint}`;
  if (result.kind === "network") {
    const what = result.failure === "timeout" ? `gave ${result.message}` : `could not be reached: ${result.message}`;
    return fail("iam_unreachable", `${where} ${what}`);
  }
  const { status } = result;
  const said = iamMessage(result.body, context.credentials.password);
  const httpStatus = `HTTP ${status}${said ? ` ${JSON.stringify(said)}` : ""}`;
  const secret = context.secretId === undefined ? "the secret" : `secret ${context.secretId}`;
  const who = `user ${JSON.stringify(context.credentials.user)} in domain ${JSON.stringify(context.credentials.domain)}`;

  if (status === 401 || status === 403) {
    return fail(
      "iam_rejected",
      `IAM rejected the credentials stored in ${secret} (${httpStatus}, ${who}): fix the secret; the batch is left on the queue`,
    );
  }
  if (status === 408 || status === 429 || status >= 500) {
    return fail("iam_unreachable", `${where} answered ${httpStatus}`);
  }
  if (status < 200 || status >= 300) {
    return fail(
      "iam_rejected",
      `${where} refused the token request built from ${secret} (${httpStatus}, ${who}): check its domain, user, scope and endpoint`,
    );
  }

  const token = result.subjectToken?.trim() ?? "";
  if (token.length < MIN_TOKEN_LENGTH || /[\s\0]/.test(token)) {
    return fail("iam_unreachable", `${where} answered HTTP ${status} without a usable X-Subject-Token header`);
  }
  const tokenBody = (result.body as { token?: { expires_at?: unknown } } | undefined)?.token;
  const expiresAt = parseIamTime(tokenBody?.expires_at);
  if (expiresAt === undefined) {
    const got =
      typeof tokenBody?.expires_at === "string" ? ` (got ${JSON.stringify(tokenBody.expires_at.slice(0, 40))})` : "";
    return fail("iam_unreachable", `${where} answered HTTP ${status} without a readable token.expires_at${got}`);
  }
  if (expiresAt <= context.now) {
    return fail(
      "iam_unreachable",
      `${where} issued a token that expired at ${new Date(expiresAt).toISOString()}, before this machine's time ${new Date(context.now).toISOString()}: check the clock`,
    );
  }
  return { token, expiresAt };
}

function fail(code: "iam_unreachable" | "iam_rejected", message: string): never {
  throw new TokenUnavailableError(code, message);
}

/** IAM's own error text (`{"error":{"message"}}`, or the gateway's `error_code`/`error_msg`), cut and scrubbed. */
function iamMessage(body: unknown, password: string): string | undefined {
  if (typeof body !== "object" || body === null) return undefined;
  const record = body as { error?: { message?: unknown }; error_code?: unknown; error_msg?: unknown };
  const parts = [
    typeof record.error_code === "string" ? record.error_code : "",
    typeof record.error?.message === "string"
      ? record.error.message
      : typeof record.error_msg === "string"
        ? record.error_msg
        : "",
  ].filter(Boolean);
  if (parts.length === 0) return undefined;
  // Nothing suggests IAM echoes a password, but its text is not ours: never let one through, in any form.
  const text = redact(parts.join(" ").replace(/[\0-\x1f\x7f]+/g, " "), password);
  return text.length > MAX_IAM_MESSAGE ? `${text.slice(0, MAX_IAM_MESSAGE)}...` : text;
}

/** Creates the exchange `createTokenProvider` calls; one per container. */
export function createIamExchange(options: IamExchangeOptions): IamExchanger {
  const transport = options.transport ?? createIamTransport();
  const now = options.now ?? Date.now;
  const holdMs = options.rejectionHoldMs ?? DEFAULT_REJECTION_HOLD_MS;
  let rejected: { fingerprint: string; until: number; error: TokenUnavailableError } | undefined;

  const exchange: IamExchange = async (credentials) => {
    const url =
      credentials.endpoint === undefined
        ? tokenUrl(options.endpoint, "IAM_ENDPOINT")
        : tokenUrl(credentials.endpoint, 'the "iam" secret\'s endpoint');
    // A hash, so the password is not kept in memory longer than the exchange needs it.
    const fingerprint = createHash("sha256")
      .update(JSON.stringify([credentials.domain, credentials.user, credentials.password, credentials.scope, url.href]))
      .digest("hex");
    if (rejected && rejected.fingerprint === fingerprint && now() < rejected.until) throw rejected.error;

    const body = JSON.stringify(buildTokenRequest(credentials));
    let result = await transport(url, body, options.timeoutMs);
    if (result.kind === "network" && result.failure === "connection")
      result = await transport(url, body, options.timeoutMs);
    try {
      const issued = interpretTokenAnswer(result, {
        endpoint: url.origin,
        secretId: options.secretId,
        credentials,
        now: now(),
      });
      rejected = undefined;
      return issued;
    } catch (error) {
      if (error instanceof TokenUnavailableError && error.code === "iam_rejected")
        rejected = { fingerprint, until: now() + holdMs, error };
      throw error;
    }
  };

  return { exchange, close: () => transport.close?.() };
}

/** The real transport: the shared HTTP transport (keep-alive, one time limit per request, bounded body). */
export function createIamTransport(): IamTransport & { close: () => void } {
  // Exchanges are rare (about one per container per day, plus one per 401), so two sockets are plenty.
  const transport = createHttpTransport({
    maxSockets: 2,
    maxBodyBytes: MAX_BODY_BYTES,
    maxHeaderBytes: MAX_HEADER_BYTES,
  });
  const send = async (url: URL, body: string, timeoutMs: number): Promise<IamHttpResult> => {
    const result = await transport.send({
      url,
      method: "POST",
      headers: { "Content-Type": "application/json;charset=UTF-8", Accept: "application/json" },
      body,
      timeoutMs,
    });
    if (result.kind === "network") return { kind: "network", failure: result.failure, message: result.message };
    const header = result.headers["x-subject-token"];
    // An oversized body still has its status and token header; it just has no readable expiry.
    const subjectToken = Array.isArray(header) ? header[0] : header;
    return { kind: "answer", status: result.status, subjectToken, body: parseJsonBody(result.text) };
  };
  return Object.assign(send, { close: () => transport.close() });
}
