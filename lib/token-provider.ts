/**
 * Where the SCM credential comes from: a Secrets Manager secret, cached by a warm container.
 *
 * The secret's SecretString is one of:
 *   - the raw token (what IAM returned in `X-Subject-Token`),
 *   - `{"token": "..."}`,
 *   - `{"iam": {...}}`: IAM credentials that are exchanged for tokens (see `iam.ts`),
 *   - `{"aksk": {"access_key", "secret_key", "domain_id"?}}`: an access key pair; no token exists, every
 *     SCM request is signed instead (see `aksk-signer.ts`).
 * What the provider yields ({@link ScmAuth}) is therefore a token or a request signer; the SCM client
 * turns either into headers, and the worker only passes it along (and back, after a 401).
 *
 * One read (or exchange) in flight at a time per container; a 401 from SCM forces a fresh read that
 * bypasses every cache, shared by all the records that saw the same stale token.
 * No value read here is ever logged or put in an error message, and every secret value is registered
 * with the scrubber (`redact.ts`) as it is read, so an echo of it from elsewhere is redacted too.
 */
import {
  GetSecretValueCommand,
  type GetSecretValueCommandOutput,
  type SecretsManagerClient,
} from "@aws-sdk/client-secrets-manager";
import { createAkSkSigner, type AkSkCredentials, type RequestSigner } from "./aksk-signer.ts";
import { withDeadline } from "./deadline.ts";
import { TokenUnavailableError, type DeadlineSubject } from "./errors.ts";
import { registerSecret } from "./redact.ts";

/** How SCM requests are authenticated: an IAM token (`X-Auth-Token`), or an AK/SK signer. */
export type ScmAuth = string | RequestSigner;

export interface TokenProvider {
  /**
   * The current credential, from the cache when it is fresh. With a `signal` (the invocation's deadline),
   * the caller stops waiting when it aborts: `DeadlineError` naming the step that hung
   * (`secrets_manager` or `iam`); the shared read goes on, bounded by its own time limits.
   */
  getToken(signal?: AbortSignal): Promise<ScmAuth>;
  /**
   * A credential other than `staleToken`, read fresh (bypassing every cache) unless another caller
   * already replaced the stale one. Used after a 401.
   */
  refresh(staleToken: ScmAuth, signal?: AbortSignal): Promise<ScmAuth>;
}

/** The token itself, for the scrubber; a signer holds no token (its secret key is registered when read). */
export function tokenOf(auth: ScmAuth): string | undefined {
  return typeof auth === "string" ? auth : undefined;
}

/** Reads the secret's current value, bypassing any cache. */
export type SecretReader = () => Promise<string>;

export interface IamCredentials {
  domain: string;
  user: string;
  password: string;
  scope: "domain" | { project: string };
  endpoint?: string;
}

export type StoredSecret =
  | { kind: "token"; token: string }
  | { kind: "iam"; credentials: IamCredentials }
  | { kind: "aksk"; credentials: AkSkCredentials };

export interface IssuedToken {
  token: string;
  /** When IAM says it expires (ms since epoch). */
  expiresAt: number;
}

/** Exchanges IAM credentials for a token (implemented in `iam.ts`). */
export type IamExchange = (credentials: IamCredentials) => Promise<IssuedToken>;

export interface TokenProviderOptions {
  readSecret: SecretReader;
  /** How long a raw token read from the secret is reused. 0 = read for every batch. */
  ttlMs: number;
  /** For `{"iam": ...}` secrets. */
  exchangeIam?: IamExchange;
  /** IAM tokens are replaced this long before they expire. */
  iamRefreshMarginMs?: number;
  now?: () => number;
}

/** The minimum length IAM tokens have (API page: X-Auth-Token 32 to 2,097,152 characters). */
const MIN_TOKEN_LENGTH = 32;

export function parseSecret(secretString: string | undefined): StoredSecret {
  const text = secretString?.trim() ?? "";
  if (text === "") throw new TokenUnavailableError("secret_empty", "the secret is empty");
  if (text.startsWith("{")) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new TokenUnavailableError("secret_unusable", 'the secret starts with "{" but is not valid JSON');
    }
    const record = json as Record<string, unknown>;
    if (typeof record.token === "string") return { kind: "token", token: checkToken(record.token) };
    if (typeof record.iam === "object" && record.iam !== null)
      return { kind: "iam", credentials: checkIam(record.iam as Record<string, unknown>) };
    if (typeof record.aksk === "object" && record.aksk !== null) {
      return { kind: "aksk", credentials: checkAkSk(record.aksk as Record<string, unknown>) };
    }
    throw new TokenUnavailableError(
      "secret_unusable",
      'the secret is JSON without a "token" string, an "iam" object or an "aksk" object',
    );
  }
  return { kind: "token", token: checkToken(text) };
}

function checkToken(token: string): string {
  const trimmed = token.trim();
  if (trimmed.length < MIN_TOKEN_LENGTH) {
    throw new TokenUnavailableError(
      "secret_unusable",
      `the stored token is shorter than ${MIN_TOKEN_LENGTH} characters, so it cannot be an IAM token`,
    );
  }
  // IAM tokens are printable ASCII; anything else cannot travel in an HTTP header (Node refuses it).
  if (!/^[\x21-\x7E]+$/.test(trimmed)) {
    throw new TokenUnavailableError(
      "secret_unusable",
      "the stored token contains characters that cannot be sent in an HTTP header (spaces, control or non-ASCII characters)",
    );
  }
  return trimmed;
}

function checkIam(iam: Record<string, unknown>): IamCredentials {
  const missing = ["domain", "user", "password"].filter((key) => typeof iam[key] !== "string" || iam[key] === "");
  if (missing.length > 0)
    throw new TokenUnavailableError("secret_unusable", `the "iam" secret lacks ${missing.join(", ")}`);
  const scope = iam.scope ?? "domain";
  const validScope =
    scope === "domain" ||
    (typeof scope === "object" && scope !== null && typeof (scope as Record<string, unknown>).project === "string");
  if (!validScope)
    throw new TokenUnavailableError(
      "secret_unusable",
      'the "iam" secret\'s scope must be "domain" or {"project": "NAME"}',
    );
  if (iam.endpoint !== undefined && typeof iam.endpoint !== "string")
    throw new TokenUnavailableError("secret_unusable", 'the "iam" secret\'s endpoint must be a URL string');
  return {
    domain: iam.domain as string,
    user: iam.user as string,
    password: iam.password as string,
    scope: scope as IamCredentials["scope"],
    ...(typeof iam.endpoint === "string" ? { endpoint: iam.endpoint } : {}),
  };
}

/** The values of a secret that must never be printed (user and domain names are not secrets). */
export function secretValues(secret: StoredSecret): string[] {
  if (secret.kind === "token") return [secret.token];
  return secret.kind === "iam" ? [secret.credentials.password] : [secret.credentials.secretKey];
}

/** Header-safe: printable ASCII without spaces (Huawei AKs are 20, SKs 40 characters; not enforced). */
const HEADER_SAFE = /^[\x21-\x7E]+$/;

function checkAkSk(aksk: Record<string, unknown>): AkSkCredentials {
  const missing = ["access_key", "secret_key"].filter((key) => typeof aksk[key] !== "string" || aksk[key] === "");
  if (missing.length > 0) {
    throw new TokenUnavailableError("secret_unusable", `the "aksk" secret lacks ${missing.join(", ")}`);
  }
  const bad = ["access_key", "secret_key"].filter((key) => !HEADER_SAFE.test(aksk[key] as string));
  const domainId = aksk.domain_id;
  if (domainId !== undefined && (typeof domainId !== "string" || !/^[A-Za-z0-9-]+$/.test(domainId)))
    bad.push("domain_id");
  if (bad.length > 0) {
    const rule = "must be printable ASCII without spaces (domain_id: letters, digits, -)";
    throw new TokenUnavailableError("secret_unusable", `the "aksk" secret's ${bad.join(", ")} ${rule}`);
  }
  return {
    accessKey: aksk.access_key as string,
    secretKey: aksk.secret_key as string,
    ...(typeof domainId === "string" && domainId !== "" ? { domainId } : {}),
  };
}

interface CacheEntry {
  token: ScmAuth;
  /** Reuse until then (ms since epoch). */
  freshUntil: number;
}

export function createTokenProvider(options: TokenProviderOptions): TokenProvider {
  const now = options.now ?? Date.now;
  const margin = options.iamRefreshMarginMs ?? 3_600_000;
  let cache: CacheEntry | undefined;
  let inflight: Promise<CacheEntry> | undefined;
  /** What the read in flight is waiting for, to name it when a caller's deadline comes first. */
  let step: DeadlineSubject = "secrets_manager";

  const load = (): Promise<CacheEntry> => {
    if (inflight) return inflight;
    inflight = (async () => {
      step = "secrets_manager";
      const secret = parseSecret(await options.readSecret());
      registerSecret(...secretValues(secret));
      if (secret.kind === "token") return { token: secret.token, freshUntil: now() + options.ttlMs };
      // A key pair needs no exchange: re-read it as often as a raw token (a rotated key is picked up then).
      if (secret.kind === "aksk") {
        return { token: createAkSkSigner(secret.credentials), freshUntil: now() + options.ttlMs };
      }
      if (!options.exchangeIam)
        throw new TokenUnavailableError(
          "secret_unusable",
          "the secret holds IAM credentials but no IAM exchange is configured",
        );
      step = "iam";
      const issued = await options.exchangeIam(secret.credentials);
      registerSecret(issued.token);
      // Reuse an IAM token until `margin` before it expires. One that lives no longer than the margin
      // (issued short-lived) is reused for half its life instead, so it is still replaced before it dies.
      const life = Math.max(0, issued.expiresAt - now());
      return { token: issued.token, freshUntil: now() + (life > margin ? life - margin : life / 2) };
    })().then(
      (entry) => {
        cache = entry;
        inflight = undefined;
        return entry;
      },
      (error: unknown) => {
        inflight = undefined;
        throw error;
      },
    );
    return inflight;
  };

  const wait = async (signal: AbortSignal | undefined) => (signal ? withDeadline(() => step, signal, load) : load());

  return {
    async getToken(signal) {
      if (cache && now() < cache.freshUntil) return cache.token;
      return (await wait(signal)).token;
    },
    async refresh(staleToken, signal) {
      if (cache && cache.token !== staleToken) return cache.token;
      if (cache?.token === staleToken) cache = undefined;
      return (await wait(signal)).token;
    },
  };
}

/**
 * Secrets Manager reads give up after this long (every attempt of the SDK's together), so a read that
 * hangs ends even when no invocation is waiting for it any more; the next invocation then reads again.
 */
export const SECRET_READ_TIMEOUT_MS = 10_000;

/** Reads a secret with the real Secrets Manager client; every call is a fresh `GetSecretValue`. */
export function secretsManagerReader(
  client: SecretsManagerClient,
  secretId: string,
  timeoutMs = SECRET_READ_TIMEOUT_MS,
): SecretReader {
  return async () => {
    let output: GetSecretValueCommandOutput;
    try {
      const command = new GetSecretValueCommand({ SecretId: secretId });
      output = await client.send(command, { abortSignal: AbortSignal.timeout(timeoutMs) });
    } catch (error) {
      const code =
        (error as { name?: string }).name === "ResourceNotFoundException" ? "secret_not_found" : "secret_fetch_failed";
      throw new TokenUnavailableError(code, `could not read secret ${secretId}: ${describeSecretsError(error)}`);
    }
    if (output.SecretString !== undefined) return output.SecretString;
    if (output.SecretBinary !== undefined) return Buffer.from(output.SecretBinary).toString("utf8");
    return "";
  };
}

/**
 * A Secrets Manager failure, described without risking the secret: modelled AWS errors (with a
 * `$fault`) keep their message (e.g. which role lacks which permission); anything else, such as a
 * parse error that may quote the start of the answer, is reduced to its name and HTTP status.
 * The error is not kept as `cause` for the same reason.
 */
function describeSecretsError(error: unknown): string {
  const e = error as {
    name?: string;
    message?: string;
    $fault?: string;
    $metadata?: { httpStatusCode?: number };
    $response?: { statusCode?: number };
  };
  const status = e.$metadata?.httpStatusCode ?? e.$response?.statusCode;
  const name = e.name ?? "Error";
  if (e.$fault) return `${name}: ${e.message ?? ""}`.trim();
  return status === undefined ? name : `${name} (HTTP ${status})`;
}
