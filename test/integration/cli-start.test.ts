/**
 * The built CLI starts light: `scm-withdraw --help` loads the dispatcher only, no command module, no
 * package (the AWS SDK, zod) and no HTTP stack, so it starts about as fast as a bare `node`
 * (measured side by side in `npm run bench`). Every entry of the command index loads its command.
 */
import { execFile } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { COMMANDS } from "../../cli/commands/index.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Runs the built CLI's `main(argv)` in a fresh node and lists every module it resolved and every built-in it loaded. */
async function loadedBy(argv: string[]): Promise<{ specifiers: string[]; builtins: string[] }> {
  const script = `
    import { registerHooks } from "node:module";
    const specifiers = [];
    registerHooks({ resolve: (specifier, context, next) => (specifiers.push(specifier), next(specifier, context)) });
    const before = new Set(process.moduleLoadList);
    const { main } = await import(${JSON.stringify(path.join(ROOT, "dist", "cli.mjs"))});
    const sink = { write: () => true };
    const code = await main(${JSON.stringify(argv)}, { stdout: sink, stderr: sink, env: {} });
    const builtins = process.moduleLoadList.filter((m) => !before.has(m) && m.startsWith("NativeModule "));
    process.stdout.write(JSON.stringify({ code, specifiers, builtins }));`;
  const { stdout } = await promisify(execFile)(process.execPath, ["--input-type=module", "-e", script], { cwd: ROOT });
  const result = JSON.parse(stdout) as { code: number; specifiers: string[]; builtins: string[] };
  expect(result.code).toBe(0);
  return result;
}

describe("the built CLI's start", () => {
  it("--help loads no command module, no package and no HTTP", async () => {
    const { specifiers, builtins } = await loadedBy(["--help"]);
    // Bare specifiers are packages; relative and absolute ones are the CLI's own files.
    expect(specifiers.filter((s) => !/^(\.|\/|node:)/.test(s))).toEqual([]);
    const commandModules = new RegExp(`(^|/)(${COMMANDS.map((c) => c.name.replace(" ", "-")).join("|")})-\\w+\\.mjs$`);
    expect(specifiers.filter((s) => commandModules.test(s))).toEqual([]);
    expect(builtins.filter((m) => /\b(http|https|_http_\w+|crypto|readline)$/.test(m))).toEqual([]);
  });

  it("a command's own --help loads that command's module", async () => {
    const { specifiers } = await loadedBy(["status", "--help"]);
    expect(specifiers.some((s) => /(^|\/)status-\w+\.mjs$/.test(s))).toBe(true);
  });

  it("every entry of the command index loads the command it names", async () => {
    for (const entry of COMMANDS) expect((await entry.load()).name).toBe(entry.name);
  });
});
