/**
 * Functions fit on a screen: none in lib/, cli/ or handlers/ has a body over 100 lines. Biome's
 * noExcessiveLinesPerFunction rule (the override in biome.jsonc) decides; this test runs that rule alone, so
 * `npm test` fails too and names each function as file:line with its first line. A long function holds two
 * jobs: split it by role (read, decide, send, report), not by size.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const ROOT = resolve(fileURLToPath(import.meta.url), "../../..");
const BIOME = join(ROOT, "node_modules/.bin/biome");
const RULE = "complexity/noExcessiveLinesPerFunction";
const FOLDERS = ["lib", "cli", "handlers"];

interface Override {
  includes: string[];
  linter?: { rules?: Record<string, Record<string, unknown>> };
}

/** One line per long function: `cli/x.ts:71 async run(context) {: This function has too many lines (204)...`. */
function longFunctions(cwd: string, paths: string[]): string[] {
  const args = ["lint", `--only=${RULE}`, "--reporter=github", "--colors=off", ...paths];
  const run = spawnSync(BIOME, args, { cwd, encoding: "utf8" });
  if (run.error) throw run.error;
  const found = run.stdout.matchAll(/^::error title=lint\/[^,]+,file=([^,]+),line=(\d+),[^:]*::(.*)$/gm);
  return [...found].map(([, file, line, message]) => {
    const text = readFileSync(file!, "utf8").split("\n")[Number(line) - 1]?.trim() ?? "";
    return `${relative(cwd, file!)}:${line} ${text}: ${message}`;
  });
}

/** The override of biome.jsonc that turns the rule on (the file's comments removed; none sits in a string). */
function lengthOverride(): Override | undefined {
  const text = readFileSync(join(ROOT, "biome.jsonc"), "utf8");
  const config = JSON.parse(text.replace(/("(?:[^"\\]|\\.)*")|\/\/[^\n]*/g, (_, string?: string) => string ?? ""));
  const overrides = (config.overrides ?? []) as Override[];
  return overrides.find((o) => o.linter?.rules?.complexity?.noExcessiveLinesPerFunction);
}

const scratch = mkdtempSync(join(tmpdir(), "function-length-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("function length", () => {
  it(`no function in ${FOLDERS.join("/, ")}/ has a body over 100 lines`, () => {
    expect(longFunctions(ROOT, FOLDERS)).toEqual([]);
  });

  it("the rule is on for lib/, cli/ and handlers/ at 100 lines, and names a long function by file:line", () => {
    const override = lengthOverride();
    expect(override?.includes).toEqual(expect.arrayContaining(FOLDERS.map((f) => `${f}/**`)));
    const rule = override?.linter?.rules?.complexity?.noExcessiveLinesPerFunction;
    expect(rule).toMatchObject({ level: "error", options: { maxLines: 100 } });
    // The same override in a scratch project: a body of 101 lines is reported, one of 100 is not.
    const config = { root: true, linter: { rules: { preset: "none" } }, overrides: [override] };
    writeFileSync(join(scratch, "biome.json"), JSON.stringify(config));
    mkdirSync(join(scratch, "cli"));
    const body = (n: number) => Array.from({ length: n }, (_, i) => `  const v${i} = ${i};`).join("\n");
    const source = `export function fits() {\n${body(100)}\n}\nexport function tooLong() {\n${body(101)}\n}\n`;
    writeFileSync(join(scratch, "cli/probe.ts"), source);
    expect(longFunctions(scratch, ["cli"])).toEqual([
      "cli/probe.ts:103 export function tooLong() {: This function has too many lines (101). Maximum allowed is 100.",
    ]);
  });
});
