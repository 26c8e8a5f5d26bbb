/**
 * `npm run bench`'s flags: --help and a mistyped flag answer at once (exit 0 / 2) instead of starting
 * a 3-minute run that rewrites BENCHMARKS.md.
 */
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";

const bench = (...args: string[]) =>
  spawnSync(process.execPath, ["--import", "tsx", "bench/run.ts", ...args], { encoding: "utf8", timeout: 30_000 });

describe("npm run bench flags", () => {
  it("--help prints the usage and runs nothing", () => {
    const run = bench("--help");
    expect(run.status).toBe(0);
    expect(run.stdout).toContain("usage: npm run bench [-- --only N,N]");
    expect(run.stderr).not.toContain("[bench");
  }, 40_000);

  it("an unknown flag is one line, exit 2, and runs nothing", () => {
    const run = bench("--onyl", "5");
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/^npm run bench: .*--onyl.* \(see npm run bench -- --help\)\n$/);
  }, 40_000);
});
