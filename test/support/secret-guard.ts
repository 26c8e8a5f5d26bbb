/**
 * Setup file (vitest `setupFiles`): records everything written to stdout and stderr (and the
 * console), and fails the test file if any test secret appears in it, in any letter case, URL-encoded,
 * JSON-escaped or HTML-escaped, whole or as a fragment of 12 or more characters. This is the suite-wide guarantee
 * that no token, password or secret key reaches a log line or an error message.
 * (`findSecretFragment` in `secrets.ts`).
 */
import { afterAll, expect } from "vitest";
import { allSecrets, findSecretFragment } from "./secrets.ts";

const captured: string[] = [];
const wrap = (stream: NodeJS.WriteStream) => {
  const original = stream.write.bind(stream);
  stream.write = ((chunk: unknown, ...rest: unknown[]) => {
    captured.push(typeof chunk === "string" ? chunk : Buffer.from(chunk as Uint8Array).toString("utf8"));
    return (original as (...args: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof stream.write;
};
wrap(process.stdout);
wrap(process.stderr);
for (const method of ["log", "info", "warn", "error", "debug"] as const) {
  const original = console[method].bind(console);
  console[method] = (...args: unknown[]) => {
    captured.push(args.map((a) => (typeof a === "string" ? a : safeInspect(a))).join(" "));
    original(...args);
  };
}

function safeInspect(value: unknown): string {
  try {
    return value instanceof Error ? `${value.message}\n${value.stack}` : JSON.stringify(value);
  } catch {
    return String(value);
  }
}

/** Everything written so far (for tests that look at the output themselves). */
export function capturedOutput(): string {
  return captured.join("");
}

/** The JSON log lines written since `mark` (an index into {@link capturedOutput}). */
export function jsonLinesSince(mark: number): Record<string, unknown>[] {
  return (
    capturedOutput()
      .slice(mark)
      .split("\n")
      // A console line (captured without its newline) may precede a JSON line on the same row.
      .map((l) => l.slice(Math.max(0, l.indexOf("{"))))
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
  );
}

afterAll(() => {
  const fragment = findSecretFragment(captured.join(""), allSecrets());
  // The fragment itself is not printed: it is part of a secret.
  expect(
    fragment === undefined,
    "a secret used by the tests (or a form or fragment of it) appeared in stdout/stderr",
  ).toBe(true);
});
