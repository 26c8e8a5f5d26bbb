/**
 * Setup file (vitest `setupFiles`, first): what the code under test writes straight to stdout/stderr
 * (the JSON log lines of lib/logger.ts, the EMF metrics) goes through `console` instead, so vitest
 * collects it per test and shows it only for a test that fails (`silent: "passed-only"`). Raw writes
 * would go to the terminal unattributed, hundreds of lines per run.
 */
const route = (stream: NodeJS.WriteStream, print: (text: string) => void) => {
  stream.write = ((chunk: unknown, ...rest: unknown[]) => {
    const text = typeof chunk === "string" ? chunk : Buffer.from(chunk as Uint8Array).toString("utf8");
    // console adds the line break back.
    print(text.endsWith("\n") ? text.slice(0, -1) : text);
    const callback = rest.find((r) => typeof r === "function") as (() => void) | undefined;
    callback?.();
    return true;
  }) as typeof stream.write;
};
// vitest's own console, taken before secret-guard.ts (the next setup file) wraps it: the guard records
// each write once, from its own stdout/stderr wrapper, with its line break.
const log = console.log.bind(console);
const error = console.error.bind(console);
route(process.stdout, log);
route(process.stderr, error);
