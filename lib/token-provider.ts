/**
 * Where the SCM token comes from: a Secrets Manager secret, cached by a warm container.
 *
 * The secret's SecretString is one of:
 *   - the raw token (what IAM returned in `X-Subject-Token`),
 *   - `{"token": "..."}`,
 *   - `{"iam": {...}}`: IAM credentials that are exchanged for tokens (see `iam.ts`).
 *
 * One read (or exchange) in flight at a time per container; a 401 from SCM forces a fresh read that
 * bypasses every cache, shared by all the records that saw the same stale token.
 * No value read here is ever logged or put in an error message.
 */
import { GetSecretValueCommand, type GetSecretValueCommandOutput, type SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { TokenUnavailableError } from "./errors.ts";

export interface TokenProvider {
  /** The current token, from the cache when it is fresh. */
  getToken(): Promise<string>;
  /**
   * A token other than `staleToken`, read fresh (bypassing every cache) unless another caller already
   * replaced the stale one. Used after a 401.
   */
  refresh(staleToken: string): Promise<string>;
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

export type StoredSecret = { kind: "token"; token: string } | { kind: "iam"; credentials: IamCredentials };

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
    if (typeof record.iam === "object" && record.iam !== null) return { kind: "iam", credentials: checkIam(record.iam as Record<string, unknown>) };
    throw new TokenUnavailableError("secret_unusable", 'the secret is JSON without a "token" string or an "iam" object');
  }
  return { kind: "token", token: checkToken(text) };
}

function checkToken(token: string): string {
  const trimmed = token.trim();
  if (trimmed.length < MIN_TOKEN_LENGTH) {
    throw new TokenUnavailableError("secret_unusable", `the stored token is shorter than ${MIN_TOKEN_LENGTH} characters, so it cannot be an IAM token`);
  }
  // IAM tokens are printable ASCII; anything else cannot travel in an HTTP header (Node refuses it).
  if (!/^[\x21-\x7E]+$/.test(trimmed)) {
    throw new TokenUnavailableError("secret_unusable", "the stored token contains characters that cannot be sent in an HTTP header (spaces, control or non-ASCII characters)");
  }
  return trimmed;
}

function checkIam(iam: Record<string, unknown>): IamCredentials {
  const missing = ["domain", "user", "password"].filter((key) => typeof iam[key] !== "string" || iam[key] === "");
  if (missing.length > 0) throw new TokenUnavailableError("secret_unusable", `the "iam" secret lacks ${missing.join(", ")}`);
  const scope = iam.scope ?? "domain";
  const validScope = scope === "domain" || (typeof scope === "object" && scope !== null && typeof (scope as Record<string, unknown>).project === "string");
  if (!validScope) throw new TokenUnavailableError("secret_unusable", 'the "iam" secret\'s scope must be "domain" or {"project": "NAME"}');
  if (iam.endpoint !== undefined && typeof iam.endpoint !== "string") throw new TokenUnavailableError("secret_unusable", 'the "iam" secret\'s endpoint must be a URL string');
  return {
    domain: iam.domain as string,
    user: iam.user as string,
    password: iam.password as string,
    scope: scope as IamCredentials["scope"],
    ...(typeof iam.endpoint === "string" ? { endpoint: iam.endpoint } : {}),
  };
}

interface CacheEntry {
  token: string;
  /** Reuse until then (ms since epoch). */
  freshUntil: number;
}

export function createTokenProvider(options: TokenProviderOptions): TokenProvider {
  const now = options.now ?? Date.now;
  const margin = options.iamRefreshMarginMs ?? 3_600_000;
  let cache: CacheEntry | undefined;
  let inflight: Promise<CacheEntry> | undefined;

  const load = (): Promise<CacheEntry> => {
    if (inflight) return inflight;
    inflight = (async () => {
      const secret = parseSecret(await options.readSecret());
      if (secret.kind === "token") return { token: secret.token, freshUntil: now() + options.ttlMs };
      if (!options.exchangeIam) throw new TokenUnavailableError("secret_unusable", 'the secret holds IAM credentials but no IAM exchange is configured');
      const issued = await options.exchangeIam(secret.credentials);
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

  return {
    async getToken() {
      if (cache && now() < cache.freshUntil) return cache.token;
      return (await load()).token;
    },
    async refresh(staleToken) {
      if (cache && cache.token !== staleToken) return cache.token;
      if (cache?.token === staleToken) cache = undefined;
      return (await load()).token;
    },
  };
}

/** Reads a secret with the real Secrets Manager client; every call is a fresh `GetSecretValue`. */
export function secretsManagerReader(client: SecretsManagerClient, secretId: string): SecretReader {
  return async () => {
    let output: GetSecretValueCommandOutput;
    try {
      output = await client.send(new GetSecretValueCommand({ SecretId: secretId }));
    } catch (error) {
      const code = (error as { name?: string }).name === "ResourceNotFoundException" ? "secret_not_found" : "secret_fetch_failed";
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
  const e = error as { name?: string; message?: string; $fault?: string; $metadata?: { httpStatusCode?: number }; $response?: { statusCode?: number } };
  const status = e.$metadata?.httpStatusCode ?? e.$response?.statusCode;
  const name = e.name ?? "Error";
  if (e.$fault) return `${name}: ${e.message ?? ""}`.trim();
  return status === undefined ? name : `${name} (HTTP ${status})`;
}
