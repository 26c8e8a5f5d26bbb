/**
 * The one scrubber (lib/redact.ts) and the places that must use it: the logger, error descriptions
 * and dead-letter attributes. The suite-wide guard's own matcher is checked here too.
 */
import { afterEach, describe, expect, it } from "vitest";
import { deadLetterAttributes } from "../../lib/dead-letter.ts";
import { describeError } from "../../lib/errors.ts";
import { createLogger } from "../../lib/logger.ts";
import { forgetSecrets, redact, registerSecret } from "../../lib/redact.ts";
import { findSecretFragment } from "../support/secrets.ts";

const SECRET = 'Tok3n/with+special=chars&"quotes"-0123456789';

afterEach(() => forgetSecrets());

describe("redact", () => {
  it.each([
    ["the secret itself", SECRET],
    ["lowercased", SECRET.toLowerCase()],
    ["uppercased", SECRET.toUpperCase()],
    ["URL-encoded", encodeURIComponent(SECRET)],
    ["URL-encoded with lowercase hex", encodeURIComponent(SECRET).toLowerCase()],
    ["form-encoded", new URLSearchParams({ s: SECRET }).toString().slice(2)],
    ["JSON-escaped", JSON.stringify(SECRET).slice(1, -1)],
    ["JSON-escaped with escaped slashes", JSON.stringify(SECRET).slice(1, -1).replaceAll("/", "\\/")],
    ["its first 12 characters", SECRET.slice(0, 12)],
    ["a 12-character piece of its middle", SECRET.slice(10, 22)],
    ["cut to 40 characters", SECRET.slice(0, 40)],
    // An HTML error page (a WAF, a proxy) that quotes the request escapes & < > " '.
    ["HTML-escaped", SECRET.replaceAll("&", "&amp;").replaceAll('"', "&quot;")],
    ["HTML-escaped with numeric entities", SECRET.replaceAll("&", "&#38;").replaceAll('"', "&#34;")],
  ])("redacts %s", (_name, form) => {
    registerSecret(SECRET);
    const out = redact(`before ${form} after`);
    expect(out).toBe("before [redacted] after");
  });

  it("keeps fragments shorter than 12 characters and text that shares nothing with a secret", () => {
    registerSecret(SECRET);
    expect(redact(`x ${SECRET.slice(0, 11)} y`)).toBe(`x ${SECRET.slice(0, 11)} y`);
    expect(redact("SCM.0003 the tenant has no privilege")).toBe("SCM.0003 the tenant has no privilege");
  });

  it("redacts a short secret (under 12 characters) only whole, in any case", () => {
    registerSecret("pa55word");
    expect(redact("login PA55WORD failed; pa55wor is not it")).toBe("login [redacted] failed; pa55wor is not it");
  });

  it("merges overlapping and adjacent matches into one mark", () => {
    registerSecret(SECRET);
    expect(redact(`${SECRET}${SECRET.toLowerCase()} and ${SECRET}`)).toBe("[redacted] and [redacted]");
  });

  it("redacts a secret passed along with the text, and remembers it", () => {
    expect(redact(`echo ${SECRET}`, SECRET)).toBe("echo [redacted]");
    expect(redact(`echo ${SECRET.toLowerCase()}`)).toBe("echo [redacted]");
  });

  it.each([
    ["https://admin:S3cretPassw0rd@scm.example.com/v3", "https://[redacted]@scm.example.com/v3"],
    ["see HTTP://user@host:8080?x", "see HTTP://[redacted]@host:8080?x"],
    [
      '{"url":"https://a:p@ss@host/x","mail":"me@example.com"}',
      '{"url":"https://[redacted]@host/x","mail":"me@example.com"}',
    ],
    ["https://scm.example.com/v3/a@b", "https://scm.example.com/v3/a@b"],
    // Pasted raw, a password with / # ? ends the URL's authority early; Node's URL parser also takes
    // https:admin@host and https:\\admin@host as https://admin@host.
    ["https://admin:pa/ss#w?rd123@scm.example.com", "https://[redacted]@scm.example.com"],
    ["https:admin:S3cretPassw0rd@scm.example.com", "https:[redacted]@scm.example.com"],
    ["https:\\\\admin:S3cretPassw0rd@scm.example.com", "https:\\\\[redacted]@scm.example.com"],
  ])("never prints URL userinfo: %s", (text, expected) => {
    expect(redact(text)).toBe(expected);
  });
});

describe("the scrubber's users", () => {
  it("the logger redacts every string field, nested values and errors included", () => {
    registerSecret(SECRET);
    const lines: string[] = [];
    const log = createLogger({ write: (line) => lines.push(line) });
    log
      .child({ ctx: SECRET.toLowerCase() })
      .info("x", { a: SECRET, nested: { list: [encodeURIComponent(SECRET)] }, error: new Error(`bad ${SECRET}`) });
    expect(JSON.parse(lines[0]!)).toMatchObject({
      ctx: "[redacted]",
      a: "[redacted]",
      nested: { list: ["[redacted]"] },
      error: { message: "bad [redacted]" },
    });
    expect(findSecretFragment(lines.join(""), [SECRET])).toBeUndefined();
  });

  it("describeError and the dead-letter attributes redact what they quote", () => {
    registerSecret(SECRET);
    expect(describeError(new Error(`token ${SECRET.slice(0, 40)} rejected`))).toBe("Error: token [redacted] rejected");
    const attributes = deadLetterAttributes({
      body: "{}",
      reason: "rejected",
      sourceMessageId: "m-1",
      certificateId: "scs1000000000001",
      httpStatus: 403,
      errorCode: `SCM.${SECRET}`,
      // Redacted before the 1024-character cut, so the cut cannot leave a short, unrecognisable piece.
      errorMsg: `${"x".repeat(1010)}${SECRET}`,
      attempts: 1,
      receiveCount: 1,
      failedAt: new Date(0),
    });
    expect(attributes.error_code?.StringValue).toBe("SCM.[redacted]");
    expect(attributes.error_msg?.StringValue).toBe(`${"x".repeat(1010)}[redacted]`);
  });
});

describe("the suite-wide secret guard's matcher", () => {
  it.each([
    ["lowercased", SECRET.toLowerCase()],
    ["URL-encoded", encodeURIComponent(SECRET)],
    ["JSON-escaped", JSON.stringify(SECRET)],
    ["a 12-character fragment", SECRET.slice(5, 17)],
    [
      "HTML-escaped (the part after its &)",
      SECRET.slice(SECRET.indexOf("&")).replace(/[&"]/g, (c) => `&#${c.charCodeAt(0)};`),
    ],
  ])("finds a secret %s", (_name, form) => {
    expect(findSecretFragment(`log line ${form} end`, [SECRET])).toBeDefined();
  });

  it("finds nothing in text without a 12-character fragment of a secret", () => {
    expect(findSecretFragment(`log line ${SECRET.slice(0, 11)} end`, [SECRET])).toBeUndefined();
  });
});
