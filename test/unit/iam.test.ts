import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../lib/config.ts";
import { TokenUnavailableError } from "../../lib/errors.ts";
import {
  buildTokenRequest,
  createIamExchange,
  interpretTokenAnswer,
  parseIamTime,
  tokenUrl,
  type IamHttpResult,
} from "../../lib/iam.ts";
import { createTokenProvider, type IamCredentials } from "../../lib/token-provider.ts";
import { IAM_PASSWORD } from "../support/secrets.ts";

const HOUR = 3_600_000;
const T0 = Date.parse("2025-01-04T07:21:45.508Z");
const CREDENTIALS: IamCredentials = { domain: "acme", user: "scm-bot", password: IAM_PASSWORD, scope: "domain" };
const ISSUED = "MIIissued-token-0123456789abcdefghijklmnopqrstuvwxyz";

/** IAM's success answer: the token in the header, the expiry in Huawei's microsecond format. */
const issued = (token = ISSUED, expiresAt = "2025-01-05T07:21:45.508000Z"): IamHttpResult => ({
  kind: "answer",
  status: 201,
  subjectToken: token,
  body: { token: { expires_at: expiresAt, issued_at: "2025-01-04T07:21:45.508000Z", methods: ["password"] } },
});
const iamError = (status: number, message: string): IamHttpResult => ({
  kind: "answer",
  status,
  subjectToken: undefined,
  body: { error: { code: status, message, title: "x" } },
});
const context = {
  endpoint: "https://iam.myhuaweicloud.com",
  secretId: "scm-withdraw/token",
  credentials: CREDENTIALS,
  now: T0,
};

function errorOf(run: () => unknown): TokenUnavailableError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(TokenUnavailableError);
    return error as TokenUnavailableError;
  }
  throw new Error("expected a TokenUnavailableError");
}

async function rejectionOf(promise: Promise<unknown>): Promise<TokenUnavailableError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TokenUnavailableError);
  return error as TokenUnavailableError;
}

/** A scripted transport: answers in order (the last one repeats), records every request. */
function fakeTransport(...answers: IamHttpResult[]) {
  const requests: { url: string; body: unknown; timeoutMs: number }[] = [];
  const transport = async (url: URL, body: string, timeoutMs: number) => {
    requests.push({ url: url.href, body: JSON.parse(body), timeoutMs });
    return answers[Math.min(requests.length - 1, answers.length - 1)]!;
  };
  return { transport, requests };
}

describe("buildTokenRequest", () => {
  it("asks for a domain-scoped token with the password method", () => {
    expect(buildTokenRequest(CREDENTIALS)).toEqual({
      auth: {
        identity: {
          methods: ["password"],
          password: { user: { name: "scm-bot", password: IAM_PASSWORD, domain: { name: "acme" } } },
        },
        scope: { domain: { name: "acme" } },
      },
    });
  });

  it("asks for a project-scoped token by project name", () => {
    expect(buildTokenRequest({ ...CREDENTIALS, scope: { project: "ap-southeast-1" } }).auth.scope).toEqual({
      project: { name: "ap-southeast-1" },
    });
  });
});

describe("tokenUrl", () => {
  it.each([
    ["https://iam.myhuaweicloud.com", "https://iam.myhuaweicloud.com/v3/auth/tokens?nocatalog=true"],
    [
      "https://iam.ap-southeast-1.myhuaweicloud.com/",
      "https://iam.ap-southeast-1.myhuaweicloud.com/v3/auth/tokens?nocatalog=true",
    ],
    ["https://iam.myhuaweicloud.com/v3", "https://iam.myhuaweicloud.com/v3/auth/tokens?nocatalog=true"],
    ["https://iam.myhuaweicloud.com/v3/auth/tokens", "https://iam.myhuaweicloud.com/v3/auth/tokens?nocatalog=true"],
    ["https://gateway.example.com/iam/", "https://gateway.example.com/iam/v3/auth/tokens?nocatalog=true"],
    ["http://127.0.0.1:4580", "http://127.0.0.1:4580/v3/auth/tokens?nocatalog=true"],
  ])("turns %s into the token URL", (endpoint, url) => {
    expect(tokenUrl(endpoint).href).toBe(url);
  });

  it.each([
    ["plain http to a remote host", "http://iam.myhuaweicloud.com", '(got "http://iam.myhuaweicloud.com")'],
    ["a query", "https://iam.myhuaweicloud.com?nocatalog=true", '(got "https://iam.myhuaweicloud.com" with a query)'],
    ["not a URL", "iam.myhuaweicloud.com", "(got something that is not a URL)"],
  ])("refuses %s as secret_unusable, saying what it got", (_name, endpoint, got) => {
    const error = errorOf(() => tokenUrl(endpoint, 'the "iam" secret\'s endpoint'));
    expect(error.code).toBe("secret_unusable");
    expect(error.message).toBe(
      `the "iam" secret's endpoint must be an https:// URL (http:// only for loopback hosts), without credentials, query or fragment ${got}`,
    );
  });

  it("never echoes credentials written into the endpoint", () => {
    const error = errorOf(() => tokenUrl(`https://scm-bot:${encodeURIComponent(IAM_PASSWORD)}@iam.myhuaweicloud.com`));
    expect(error.message).toContain('(got "https://iam.myhuaweicloud.com" with credentials)');
    expect(error.message).not.toContain(encodeURIComponent(IAM_PASSWORD));
    expect(error.message).not.toContain("scm-bot");
  });
});

describe("parseIamTime", () => {
  it.each([
    ["2025-01-05T07:21:45.508000Z", Date.UTC(2025, 0, 5, 7, 21, 45, 508)], // Huawei: microseconds
    ["2025-01-05T07:21:45.508999Z", Date.UTC(2025, 0, 5, 7, 21, 45, 508)], // truncated, never rounded up
    ["2025-01-05T07:21:45.508Z", Date.UTC(2025, 0, 5, 7, 21, 45, 508)],
    ["2025-01-05T07:21:45.5Z", Date.UTC(2025, 0, 5, 7, 21, 45, 500)],
    ["2025-01-05T07:21:45Z", Date.UTC(2025, 0, 5, 7, 21, 45)],
    ["2025-01-05T07:21:45.123456789Z", Date.UTC(2025, 0, 5, 7, 21, 45, 123)],
    ["2025-01-05T15:21:45.508000+08:00", Date.UTC(2025, 0, 5, 7, 21, 45, 508)],
  ])("reads %s", (text, ms) => {
    expect(parseIamTime(text)).toBe(ms);
  });

  it.each([
    undefined,
    null,
    1736061705508,
    "",
    "tomorrow",
    "2025-01-05",
    "2025-01-05 07:21:45Z",
    "2025-01-05T07:21:45",
    "2025-13-45T07:21:45Z",
  ])("gives undefined for %j", (value) => {
    expect(parseIamTime(value)).toBeUndefined();
  });
});

describe("interpretTokenAnswer", () => {
  it("takes the token from X-Subject-Token and the expiry from token.expires_at", () => {
    expect(interpretTokenAnswer(issued(), context)).toEqual({
      token: ISSUED,
      expiresAt: Date.UTC(2025, 0, 5, 7, 21, 45, 508),
    });
  });

  it.each([401, 403])("says plainly that IAM rejected the stored credentials on %i (iam_rejected)", (status) => {
    const error = errorOf(() => interpretTokenAnswer(iamError(status, "The username or password is wrong."), context));
    expect(error.code).toBe("iam_rejected");
    expect(error.message).toBe(
      `IAM rejected the credentials stored in secret scm-withdraw/token (HTTP ${status} "The username or password is wrong.", user "scm-bot" in domain "acme"): fix the secret; the batch is left on the queue`,
    );
  });

  it.each([400, 404])("treats %i as a refused request (iam_rejected) that names what to check", (status) => {
    const error = errorOf(() => interpretTokenAnswer(iamError(status, "Invalid input for field 'scope'."), context));
    expect(error.code).toBe("iam_rejected");
    expect(error.message).toContain(`HTTP ${status}`);
    expect(error.message).toContain("check its domain, user, scope and endpoint");
  });

  it.each([408, 429, 500, 502, 503, 504])("treats %i as iam_unreachable", (status) => {
    const error = errorOf(() =>
      interpretTokenAnswer({ kind: "answer", status, subjectToken: undefined, body: undefined }, context),
    );
    expect(error.code).toBe("iam_unreachable");
    expect(error.message).toBe(`IAM at https://iam.myhuaweicloud.com answered HTTP ${status}`);
  });

  it.each([
    [
      { kind: "network", failure: "connection", message: "ECONNREFUSED: connect ECONNREFUSED 10.0.0.1:443" },
      "could not be reached: ECONNREFUSED",
    ],
    [
      { kind: "network", failure: "timeout", message: "no complete answer within 5000 ms" },
      "gave no complete answer within 5000 ms",
    ],
  ] as const)("treats a network failure as iam_unreachable", (result, text) => {
    const error = errorOf(() => interpretTokenAnswer(result, context));
    expect(error.code).toBe("iam_unreachable");
    expect(error.message).toContain(text);
  });

  it.each([
    [
      "no X-Subject-Token",
      { ...issued(), subjectToken: undefined } as IamHttpResult,
      "without a usable X-Subject-Token header",
    ],
    ["a token too short to be one", issued("short"), "without a usable X-Subject-Token header"],
    ["no expires_at", { ...issued(), body: { token: {} } } as IamHttpResult, "without a readable token.expires_at"],
    ["an unreadable expires_at", issued(ISSUED, "in a day"), 'without a readable token.expires_at (got "in a day")'],
    [
      "a body that is not JSON",
      { ...issued(), body: undefined } as IamHttpResult,
      "without a readable token.expires_at",
    ],
    ["a token that already expired", issued(ISSUED, "2025-01-04T07:21:45.000000Z"), "check the clock"],
  ])("refuses a 201 with %s (iam_unreachable)", (_name, result, text) => {
    const error = errorOf(() => interpretTokenAnswer(result, context));
    expect(error.code).toBe("iam_unreachable");
    expect(error.message).toContain(text);
    expect(error.message).not.toContain(ISSUED);
  });

  it("never lets the password through, even if IAM echoed it", () => {
    const error = errorOf(() => interpretTokenAnswer(iamError(401, `password ${IAM_PASSWORD} is wrong`), context));
    expect(error.message).toContain('"password [redacted] is wrong"');
    expect(error.message).not.toContain(IAM_PASSWORD);
  });

  it("cuts IAM's error text and strips control characters", () => {
    const error = errorOf(() => interpretTokenAnswer(iamError(500, `line\nbreak ${"x".repeat(500)}`), context));
    expect(error.message).not.toContain("\n");
    expect(error.message.length).toBeLessThan(320);
  });
});

describe("createIamExchange", () => {
  it("posts the request to the secret's endpoint, or else to IAM_ENDPOINT", async () => {
    const { transport, requests } = fakeTransport(issued());
    const { exchange } = createIamExchange({
      endpoint: "https://iam.myhuaweicloud.com",
      timeoutMs: 1234,
      transport,
      now: () => T0,
    });
    await exchange(CREDENTIALS);
    await exchange({ ...CREDENTIALS, endpoint: "https://iam.eu-west-101.myhuaweicloud.eu" });
    expect(requests.map((r) => r.url)).toEqual([
      "https://iam.myhuaweicloud.com/v3/auth/tokens?nocatalog=true",
      "https://iam.eu-west-101.myhuaweicloud.eu/v3/auth/tokens?nocatalog=true",
    ]);
    expect(requests[0]!.body).toEqual(buildTokenRequest(CREDENTIALS));
    expect(requests[0]!.timeoutMs).toBe(1234);
  });

  it("refuses a plain-http endpoint in the secret without sending the password anywhere", async () => {
    const { transport, requests } = fakeTransport(issued());
    const { exchange } = createIamExchange({ endpoint: "https://iam.myhuaweicloud.com", timeoutMs: 1000, transport });
    const error = await rejectionOf(exchange({ ...CREDENTIALS, endpoint: "http://iam.example.com" }));
    expect(error.code).toBe("secret_unusable");
    expect(error.message).toMatch(/^the "iam" secret's endpoint must be an https:\/\/ URL/);
    expect(requests).toEqual([]);
  });

  it("retries a connection error once at once (a stale keep-alive socket), but not a timeout or a 5xx", async () => {
    const reset: IamHttpResult = { kind: "network", failure: "connection", message: "ECONNRESET: socket hang up" };
    const cases: [IamHttpResult[], number, string | undefined][] = [
      [[reset, issued()], 2, undefined],
      [[reset, reset], 2, "iam_unreachable"],
      [
        [{ kind: "network", failure: "timeout", message: "no complete answer within 1000 ms" }, issued()],
        1,
        "iam_unreachable",
      ],
      [[iamError(503, "busy"), issued()], 1, "iam_unreachable"],
    ];
    for (const [answers, calls, code] of cases) {
      const { transport, requests } = fakeTransport(...answers);
      const { exchange } = createIamExchange({
        endpoint: "https://iam.myhuaweicloud.com",
        timeoutMs: 1000,
        transport,
        now: () => T0,
      });
      if (code === undefined) await expect(exchange(CREDENTIALS)).resolves.toMatchObject({ token: ISSUED });
      else expect((await rejectionOf(exchange(CREDENTIALS))).code).toBe(code);
      expect(requests).toHaveLength(calls);
    }
  });

  it("does not send rejected credentials again during the hold, but tries changed ones at once", async () => {
    let now = T0;
    const { transport, requests } = fakeTransport(
      iamError(401, "The username or password is wrong."),
      iamError(401, "again"),
      issued(),
    );
    const { exchange } = createIamExchange({
      endpoint: "https://iam.myhuaweicloud.com",
      timeoutMs: 1000,
      rejectionHoldMs: 60_000,
      transport,
      now: () => now,
      secretId: "s",
    });
    const first = await rejectionOf(exchange(CREDENTIALS));
    now += 59_000;
    const held = await rejectionOf(exchange(CREDENTIALS));
    expect(held.code).toBe("iam_rejected");
    expect(held.message).toBe(first.message);
    expect(requests).toHaveLength(1);

    now += 1000; // the hold is over: ask again (IAM says no again)
    await rejectionOf(exchange(CREDENTIALS));
    expect(requests).toHaveLength(2);

    // The secret was fixed: a new password is sent at once.
    await expect(exchange({ ...CREDENTIALS, password: `${IAM_PASSWORD}-fixed` })).resolves.toMatchObject({
      token: ISSUED,
    });
    expect(requests).toHaveLength(3);
  });

  it("does not hold after an outage: the next call asks IAM again", async () => {
    const { transport, requests } = fakeTransport(iamError(503, "busy"), issued());
    const { exchange } = createIamExchange({
      endpoint: "https://iam.myhuaweicloud.com",
      timeoutMs: 1000,
      transport,
      now: () => T0,
    });
    await rejectionOf(exchange(CREDENTIALS));
    await expect(exchange(CREDENTIALS)).resolves.toMatchObject({ token: ISSUED });
    expect(requests).toHaveLength(2);
  });

  it("keeps the password out of every error it throws", async () => {
    const answers: IamHttpResult[] = [
      iamError(401, "wrong"),
      iamError(403, "forbidden"),
      iamError(500, "oops"),
      { kind: "network", failure: "timeout", message: "no complete answer within 1000 ms" },
      issued("short"),
    ];
    for (const answer of answers) {
      const { transport } = fakeTransport(answer);
      const { exchange } = createIamExchange({
        endpoint: "https://iam.myhuaweicloud.com",
        timeoutMs: 1000,
        transport,
        now: () => T0,
      });
      const error = await rejectionOf(exchange(CREDENTIALS));
      expect(`${error.message} ${error.stack}`).not.toContain(IAM_PASSWORD);
    }
  });
});

describe("IAM tokens in the token provider", () => {
  const secret = JSON.stringify({ iam: { domain: "acme", user: "scm-bot", password: IAM_PASSWORD } });

  /** A provider over a fake IAM whose tokens live `lifeMs`; `reads`/`exchanges` count the calls. */
  function provider(options: { marginMs?: number; lifeMs?: number } = {}) {
    const state = { now: T0, reads: 0, exchanges: 0 };
    const tokens = createTokenProvider({
      readSecret: async () => {
        state.reads += 1;
        return secret;
      },
      ttlMs: 300_000,
      ...(options.marginMs === undefined ? {} : { iamRefreshMarginMs: options.marginMs }),
      exchangeIam: async () => {
        state.exchanges += 1;
        await new Promise((resolve) => setImmediate(resolve));
        return {
          token: `MIItoken-${state.exchanges}`.padEnd(40, "x"),
          expiresAt: state.now + (options.lifeMs ?? 24 * HOUR),
        };
      },
      now: () => state.now,
    });
    return { tokens, state };
  }

  it.each([
    [undefined, 23 * HOUR], // default margin: one hour
    [0, 24 * HOUR],
    [10 * 60_000, 24 * HOUR - 10 * 60_000],
    [23 * HOUR, HOUR], // the largest margin IAM_TOKEN_REFRESH_MARGIN_MS allows
  ])("with a margin of %s ms, reuses a 24 h token for %i ms", async (marginMs, reuseMs) => {
    const { tokens, state } = provider(marginMs === undefined ? {} : { marginMs });
    const first = await tokens.getToken();
    state.now = T0 + reuseMs - 1;
    expect(await tokens.getToken()).toBe(first);
    expect(state.exchanges).toBe(1);
    state.now = T0 + reuseMs;
    expect(await tokens.getToken()).not.toBe(first);
    expect(state.exchanges).toBe(2);
  });

  it("reuses a token that lives less than the margin for half its life", async () => {
    const { tokens, state } = provider({ marginMs: HOUR, lifeMs: 30 * 60_000 });
    const first = await tokens.getToken();
    state.now = T0 + 15 * 60_000 - 1;
    expect(await tokens.getToken()).toBe(first);
    state.now = T0 + 15 * 60_000;
    expect(await tokens.getToken()).not.toBe(first);
  });

  it("makes one exchange for ten concurrent callers", async () => {
    const { tokens, state } = provider();
    const all = await Promise.all(Array.from({ length: 10 }, () => tokens.getToken()));
    expect(new Set(all).size).toBe(1);
    expect(state.exchanges).toBe(1);
    expect(state.reads).toBe(1);
  });

  it("after a 401, re-reads the secret and re-exchanges once for all the records that saw the stale token", async () => {
    const { tokens, state } = provider();
    const stale = await tokens.getToken();
    const fresh = await Promise.all(Array.from({ length: 10 }, () => tokens.refresh(stale)));
    expect(new Set(fresh).size).toBe(1);
    expect(fresh[0]).not.toBe(stale);
    expect(state).toMatchObject({ reads: 2, exchanges: 2 });
    // A late 401 for the old token does not trigger another exchange.
    expect(await tokens.refresh(stale)).toBe(fresh[0]);
    expect(state.exchanges).toBe(2);
  });

  it("passes a rejection through getToken as iam_rejected, and tries again on the next call", async () => {
    let answer: IamHttpResult = iamError(401, "The username or password is wrong.");
    const { exchange } = createIamExchange({
      endpoint: "https://iam.myhuaweicloud.com",
      timeoutMs: 1000,
      rejectionHoldMs: 0,
      transport: async () => answer,
      now: () => T0,
    });
    const tokens = createTokenProvider({
      readSecret: async () => secret,
      ttlMs: 0,
      exchangeIam: exchange,
      now: () => T0,
    });
    expect((await rejectionOf(tokens.getToken())).code).toBe("iam_rejected");
    answer = issued();
    expect(await tokens.getToken()).toBe(ISSUED);
  });
});

describe("configuration", () => {
  const valid = {
    SCM_ENDPOINT: "https://scm.ap-southeast-1.myhuaweicloud.com",
    SCM_TOKEN_SECRET_ID: "scm-withdraw/token",
    WITHDRAWAL_DLQ_URL: "https://sqs.eu-west-1.amazonaws.com/123456789012/withdrawals-dlq",
  };

  it("defaults IAM_ENDPOINT to Huawei's global IAM and IAM_TIMEOUT_MS to 5 s", () => {
    expect(loadConfig(valid)).toMatchObject({
      iamEndpoint: "https://iam.myhuaweicloud.com",
      iamTimeoutMs: 5000,
      iamTokenRefreshMarginMs: HOUR,
    });
  });

  it("takes a regional IAM endpoint, without its trailing slash", () => {
    expect(loadConfig({ ...valid, IAM_ENDPOINT: "https://iam.ap-southeast-1.myhuaweicloud.com/" }).iamEndpoint).toBe(
      "https://iam.ap-southeast-1.myhuaweicloud.com",
    );
  });

  it("refuses a plain-http IAM_ENDPOINT and a bad IAM_TIMEOUT_MS, naming both", () => {
    try {
      loadConfig({ ...valid, IAM_ENDPOINT: "http://iam.myhuaweicloud.com", IAM_TIMEOUT_MS: "5s" });
      throw new Error("expected a ConfigError");
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).message).toContain(
        'IAM_ENDPOINT must be an https:// URL (http:// only for loopback hosts), without credentials, query or fragment (got "http://iam.myhuaweicloud.com")',
      );
      expect((error as ConfigError).message).toContain(
        'IAM_TIMEOUT_MS must be an integer from 100 to 60000 (got "5s")',
      );
    }
  });
});
