import { describe, expect, it } from "vitest";
import { TokenUnavailableError } from "../../lib/errors.ts";
import type { RequestSigner } from "../../lib/aksk-signer.ts";
import { createTokenProvider, parseSecret } from "../../lib/token-provider.ts";

const TOKEN_A = "A".repeat(40);
const TOKEN_B = "B".repeat(40);

function fakeSecret(values: string[]) {
  let reads = 0;
  return {
    read: async () => {
      const value = values[Math.min(reads, values.length - 1)]!;
      reads += 1;
      return value;
    },
    reads: () => reads,
  };
}

describe("parseSecret", () => {
  it("reads a raw token, trimming whitespace", () => {
    expect(parseSecret(` ${TOKEN_A}\n`)).toEqual({ kind: "token", token: TOKEN_A });
  });
  it('reads {"token": ...}', () => {
    expect(parseSecret(JSON.stringify({ token: TOKEN_A }))).toEqual({ kind: "token", token: TOKEN_A });
  });
  it('reads {"iam": ...} with the domain scope by default', () => {
    expect(parseSecret(JSON.stringify({ iam: { domain: "d", user: "u", password: "p" } }))).toEqual({
      kind: "iam",
      credentials: { domain: "d", user: "u", password: "p", scope: "domain" },
    });
  });
  it('reads {"aksk": ...}, with or without a domain_id', () => {
    const aksk = {
      access_key: "HPUAEXAMPLEAK",
      secret_key: "example/secret+key",
      domain_id: "0970dd7a1300f5672ff2c003c60ae115",
    };
    expect(parseSecret(JSON.stringify({ aksk }))).toEqual({
      kind: "aksk",
      credentials: {
        accessKey: "HPUAEXAMPLEAK",
        secretKey: "example/secret+key",
        domainId: "0970dd7a1300f5672ff2c003c60ae115",
      },
    });
    expect(parseSecret(JSON.stringify({ aksk: { ...aksk, domain_id: undefined } }))).toEqual({
      kind: "aksk",
      credentials: { accessKey: "HPUAEXAMPLEAK", secretKey: "example/secret+key" },
    });
  });
  it.each([
    ["AK/SK without a secret_key", '{"aksk":{"access_key":"HPUAEXAMPLEAK"}}', 'the "aksk" secret lacks secret_key'],
    [
      "AK/SK with a space in the secret_key",
      '{"aksk":{"access_key":"HPUAEXAMPLEAK","secret_key":"has a space-0123"}}',
      "secret_key must be printable ASCII",
    ],
    [
      "AK/SK with a domain_id that is not an id",
      '{"aksk":{"access_key":"HPUAEXAMPLEAK","secret_key":"s3cr3t-0123456","domain_id":"a b"}}',
      "domain_id",
    ],
  ])("refuses %s, naming the field and not its value", (_name, secret, text) => {
    try {
      parseSecret(secret);
      throw new Error("expected an error");
    } catch (error) {
      expect((error as TokenUnavailableError).code).toBe("secret_unusable");
      expect((error as Error).message).toContain(text);
      for (const value of ["has a space", "s3cr3t"]) expect((error as Error).message).not.toContain(value);
    }
  });
  it.each([
    ["empty", "", "secret_empty"],
    ["blank", "  \n", "secret_empty"],
    ["too short to be a token", "abc", "secret_unusable"],
    ["broken JSON", '{"token": ', "secret_unusable"],
    ["JSON without a token", '{"value":"x"}', "secret_unusable"],
    ["IAM without a password", '{"iam":{"domain":"d","user":"u"}}', "secret_unusable"],
  ])("refuses a secret that is %s, without echoing it", (_name, secret, code) => {
    try {
      parseSecret(secret);
      throw new Error("expected an error");
    } catch (error) {
      expect(error).toBeInstanceOf(TokenUnavailableError);
      expect((error as TokenUnavailableError).code).toBe(code);
      if (secret.trim().length > 3) expect((error as Error).message).not.toContain(secret.trim());
    }
  });
});

describe("createTokenProvider", () => {
  it("reuses the token for the TTL, then reads again", async () => {
    let now = 0;
    const secret = fakeSecret([TOKEN_A, TOKEN_B]);
    const tokens = createTokenProvider({ readSecret: secret.read, ttlMs: 1000, now: () => now });
    expect(await tokens.getToken()).toBe(TOKEN_A);
    now = 999;
    expect(await tokens.getToken()).toBe(TOKEN_A);
    expect(secret.reads()).toBe(1);
    now = 1000;
    expect(await tokens.getToken()).toBe(TOKEN_B);
    expect(secret.reads()).toBe(2);
  });

  it("keeps one read in flight for concurrent callers", async () => {
    let release!: () => void;
    let reads = 0;
    const tokens = createTokenProvider({
      readSecret: () => {
        reads += 1;
        return new Promise((resolve) => (release = () => resolve(TOKEN_A)));
      },
      ttlMs: 60_000,
    });
    const all = Promise.all(Array.from({ length: 10 }, () => tokens.getToken()));
    release();
    expect(await all).toEqual(Array(10).fill(TOKEN_A));
    expect(reads).toBe(1);
  });

  it("re-reads after a 401 even inside the TTL, once for all holders of the stale token", async () => {
    const secret = fakeSecret([TOKEN_A, TOKEN_B]);
    const tokens = createTokenProvider({ readSecret: secret.read, ttlMs: 60_000 });
    const stale = await tokens.getToken();
    const fresh = await Promise.all([tokens.refresh(stale), tokens.refresh(stale), tokens.refresh(stale)]);
    expect(fresh).toEqual([TOKEN_B, TOKEN_B, TOKEN_B]);
    expect(secret.reads()).toBe(2);
    // A late caller with the old token gets the new one without another read.
    expect(await tokens.refresh(stale)).toBe(TOKEN_B);
    expect(secret.reads()).toBe(2);
  });

  it("does not cache a failure", async () => {
    let fail = true;
    const tokens = createTokenProvider({
      readSecret: async () => {
        if (fail) throw new TokenUnavailableError("secret_fetch_failed", "down");
        return TOKEN_A;
      },
      ttlMs: 60_000,
    });
    await expect(tokens.getToken()).rejects.toThrow("down");
    fail = false;
    expect(await tokens.getToken()).toBe(TOKEN_A);
  });

  it("exchanges IAM credentials and keeps the token until the margin before expiry", async () => {
    let now = 0;
    let exchanges = 0;
    const tokens = createTokenProvider({
      readSecret: async () => JSON.stringify({ iam: { domain: "d", user: "u", password: "p" } }),
      ttlMs: 60_000,
      iamRefreshMarginMs: 3_600_000,
      exchangeIam: async () => ({ token: `T${++exchanges}`.padEnd(40, "x"), expiresAt: now + 24 * 3_600_000 }),
      now: () => now,
    });
    const first = await tokens.getToken();
    now = 22 * 3_600_000;
    expect(await tokens.getToken()).toBe(first);
    now = 23 * 3_600_000;
    expect(await tokens.getToken()).not.toBe(first);
    expect(exchanges).toBe(2);
  });
});

describe("an AK/SK secret", () => {
  it("yields a request signer (no token exchange), re-read after the TTL and after a 401", async () => {
    let now = 0;
    const secret = fakeSecret([
      JSON.stringify({ aksk: { access_key: "HPUAEXAMPLEAK", secret_key: "example-secret-key-1" } }),
    ]);
    const tokens = createTokenProvider({ readSecret: secret.read, ttlMs: 1000, now: () => now });
    const signer = await tokens.getToken();
    expect(typeof signer).toBe("object");
    expect(await tokens.getToken()).toBe(signer);
    const headers = (signer as RequestSigner).sign({
      method: "GET",
      url: new URL("https://scm.example.com/v3/scm/certificates"),
      headers: {},
      body: undefined,
    });
    expect(headers.Authorization).toMatch(
      /^SDK-HMAC-SHA256 Access=HPUAEXAMPLEAK, SignedHeaders=host;x-sdk-date, Signature=[0-9a-f]{64}$/,
    );
    const refreshed = await tokens.refresh(signer);
    expect(refreshed).not.toBe(signer);
    expect(secret.reads()).toBe(2);
    now = 1000;
    await tokens.getToken();
    expect(secret.reads()).toBe(3);
  });
});

describe("secret hygiene", () => {
  it.each([
    ["a non-ASCII character", `${TOKEN_A}é`],
    ["a control character", `${TOKEN_A}\u0007x`],
    ["an inner space", `${TOKEN_A} ${TOKEN_B}`],
  ])("refuses a stored token with %s (it could not be sent as a header)", (_name, token) => {
    expect(() => parseSecret(token)).toThrow(TokenUnavailableError);
    expect(() => parseSecret(JSON.stringify({ token }))).toThrow(/cannot be sent in an HTTP header/);
  });

  it("does not quote the Secrets Manager answer when it cannot be parsed", async () => {
    const { secretsManagerReader } = await import("../../lib/token-provider.ts");
    const leaked = "MIIsecretPrefix";
    const client = {
      send: async () => {
        const error = new Error(`Unexpected token 'M', "${leaked}"... is not valid JSON`);
        error.name = "SyntaxError";
        Object.assign(error, { $response: { statusCode: 200 } });
        throw error;
      },
    };
    const read = secretsManagerReader(client as never, "scm-withdraw/token");
    const error = (await read().catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(TokenUnavailableError);
    expect(error.message).toContain("SyntaxError");
    expect(error.message).not.toContain(leaked);
  });

  it("keeps the service's explanation for modelled AWS errors", async () => {
    const { secretsManagerReader } = await import("../../lib/token-provider.ts");
    const client = {
      send: async () => {
        const error = new Error(
          "User: arn:aws:sts::1:assumed-role/x is not authorized to perform: secretsmanager:GetSecretValue",
        );
        error.name = "AccessDeniedException";
        Object.assign(error, { $fault: "client", $metadata: { httpStatusCode: 400 } });
        throw error;
      },
    };
    const error = (await secretsManagerReader(client as never, "s")().catch((e: unknown) => e)) as Error;
    expect(error.message).toContain("not authorized to perform");
  });
});
