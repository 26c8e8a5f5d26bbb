/** The CLI's output helpers: tables, the progress bar (with a fake clock), CSV fields, and the flag parser. */
import { UsageError } from "../../lib/errors.ts";
import { parseFlagValues } from "../../local/flags.ts";
import { describe, expect, it } from "vitest";
import { integerFlag, parseArgs } from "../../cli/args.ts";
import { createProgress, csvField, formatTable } from "../../cli/output.ts";

function stream(isTTY: boolean) {
  const writes: string[] = [];
  return { writes, stream: { isTTY, write: (chunk: string) => writes.push(chunk) } };
}

describe("formatTable", () => {
  it("aligns columns, numbers to the right", () => {
    expect(
      formatTable(
        [
          { r: "not_found", n: 12 },
          { r: "rejected", n: 3 },
        ],
        [
          { header: "reason", value: (x) => x.r },
          { header: "count", value: (x) => x.n, align: "right" },
        ],
      ),
    ).toEqual(["reason     count", "not_found     12", "rejected       3"]);
  });
});

describe("createProgress", () => {
  it("redraws one bar in place on a terminal, at most once per interval, and clears it when done", () => {
    let now = 0;
    const out = stream(true);
    const progress = createProgress(out.stream, { enabled: true, now: () => now, intervalMs: 100 });
    progress.update(0.1, "a");
    now = 150;
    progress.update(0.5, "50 sent");
    now = 160;
    progress.update(0.6, "skipped: too soon");
    progress.done();
    expect(out.writes).toEqual(["\r\x1b[K[############------------]  50% 50 sent", "\r\x1b[K"]);
  });

  it("cuts the bar to the terminal's width, so it never wraps", () => {
    let now = 0;
    const out = { writes: [] as string[] };
    const progress = createProgress(
      { isTTY: true, columns: 40, write: (chunk: string) => out.writes.push(chunk) },
      { enabled: true, now: () => now },
    );
    now = 1000;
    progress.update(0.5, "12345 sent, 0 failed, 0 invalid, 0 duplicates, 9000/s");
    expect(out.writes[0]).toBe("\r\x1b[K[############------------]  50% 12345 s");
    expect(out.writes[0]!.length - "\r\x1b[K".length).toBe(39);
  });

  it("prints plain progress lines when not on a terminal", () => {
    let now = 0;
    const out = stream(false);
    const progress = createProgress(out.stream, { enabled: true, now: () => now });
    now = 5000;
    progress.update(0.42, "4200 sent");
    progress.done();
    expect(out.writes).toEqual(["progress: 42% 4200 sent\n"]);
  });

  it("prints nothing when disabled (--json)", () => {
    const out = stream(true);
    const progress = createProgress(out.stream, { enabled: false, now: () => 1e9 });
    progress.update(1, "x");
    progress.done();
    expect(out.writes).toEqual([]);
  });
});

describe("csvField", () => {
  it.each([
    ["plain", "plain"],
    ["a,b", '"a,b"'],
    ['say "hi"', '"say ""hi"""'],
    ["two\nlines", '"two\nlines"'],
    [undefined, ""],
    [7, "7"],
  ])("%j -> %j", (value, expected) => {
    expect(csvField(value)).toBe(expected);
  });
});

describe("parseArgs", () => {
  const spec = {
    reason: { type: "string", description: "" },
    "dry-run": { type: "boolean", description: "" },
    help: { type: "boolean", short: "h", description: "" },
  } as const;

  it("reads --name value, --name=value, booleans, -h and positionals, and stops at --", () => {
    expect(parseArgs(["a", "--reason", "x y", "--dry-run", "b", "--", "--not-a-flag"], spec)).toEqual({
      values: { reason: "x y", "dry-run": true },
      positionals: ["a", "b", "--not-a-flag"],
    });
    expect(parseArgs(["--reason=a=b", "-h"], spec).values).toEqual({ reason: "a=b", help: true });
  });

  it.each([
    [["--nope"], "unknown option --nope"],
    [["--reasno", "x"], "unknown option --reasno (did you mean --reason?)"],
    [["-x"], "unknown option -x"],
    [["--reason"], "--reason needs a value"],
    [["--reason", "--dry-run"], "--reason needs a value"],
    [["--dry-run=no"], '--dry-run takes no value (got "no")'],
    [["--reason", "a", "--reason", "b"], "--reason given twice"],
  ])("%j -> %s", (argv, message) => {
    expect(() => parseArgs(argv, spec)).toThrow(new UsageError(message));
  });

  it("collects a `multiple` flag given several times, in order", () => {
    expect(
      parseArgs(["--token", "a", "--token=b"], { token: { type: "string", description: "", multiple: true } }).values,
    ).toEqual({ token: ["a", "b"] });
  });

  it("serves the local tools too (flags only, typed values, defaults): one parser for the project", () => {
    const options = {
      port: { type: "string", default: "4580" },
      verbose: { type: "boolean", short: "v" },
      token: { type: "string", multiple: true },
    } as const;
    expect(parseFlagValues(["-v", "--token", "t1", "--token", "t2"], options)).toEqual({
      port: "4580",
      verbose: true,
      token: ["t1", "t2"],
    });
    expect(() => parseFlagValues(["stray"], options)).toThrow(new UsageError("unexpected argument stray (flags only)"));
    expect(() => parseFlagValues(["--prot", "1"], options)).toThrow(
      new UsageError("unknown option --prot (did you mean --port?)"),
    );
  });

  it("reads whole numbers within bounds only", () => {
    expect(integerFlag({ max: "10" }, "max", { min: 1, max: 100 })).toBe(10);
    expect(integerFlag({}, "max", { min: 1, max: 100 })).toBeUndefined();
    for (const bad of ["0", "101", "1.5", "-1", "1e3", " 5"])
      expect(() => integerFlag({ max: bad }, "max", { min: 1, max: 100 })).toThrow(UsageError);
  });
});
