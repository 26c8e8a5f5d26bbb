/**
 * The one-way doors between the wings: `lib/` (the deployed core) imports nothing outside `lib/`;
 * `cli/` (the operator CLI) imports only `cli/` and `lib/`; and nothing in either imports a package
 * that is not a runtime dependency (package.json `dependencies`): a devDependency is gone after
 * `npm prune --omit=dev`, and the Lambda bundles and the built CLI must not need one.
 * `local/`, `handlers/`, `test/`, `bench/` and `scripts/` may import anything.
 *
 * Every import is read from the source: static, `export ... from`, dynamic `import()`, `require()`
 * `createRequire(...)()` and `typeof import()`. Type-only imports (`import type`, `typeof import()`) vanish at run time,
 * so they may name any package, but they still count for the folder doors.
 */
import { readdirSync, readFileSync } from "node:fs";
import { isBuiltin } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

interface Import {
  specifier: string;
  typeOnly: boolean;
  line: number;
}

/** Every import of a TypeScript source, comments skipped. */
function importsOf(source: string): Import[] {
  // Blank out comments but keep the line breaks, so line numbers stay right.
  const code = source.replace(/\/\*[\s\S]*?\*\/|(^|[^:"'`\\])\/\/[^\n]*/g, (match, lead: string | undefined) =>
    match.startsWith("/*")
      ? match.replace(/[^\n]/g, " ")
      : `${lead ?? ""}${" ".repeat(match.length - (lead ?? "").length)}`,
  );
  const found: Import[] = [];
  const lineAt = (index: number) => code.slice(0, index).split("\n").length;
  const patterns: [RegExp, (m: RegExpExecArray) => boolean][] = [
    // import x from "a"; import { type A, b } from "a"; import type { A } from "a"; export { a } from "a"
    [/\b(import|export)(\s+type)?\s+[^;'"]*?\bfrom\s*["']([^"']+)["']/g, (m) => m[2] !== undefined],
    // import "a" (side effect only)
    [/\bimport\s*["']([^"']+)["']/g, () => false],
    // import("a"), typeof import("a"), require("a")
    [/(\btypeof\s+)?\b(?:import|require)\s*\(\s*["']([^"']+)["']\s*\)/g, (m) => m[1] !== undefined],
    // createRequire(import.meta.url)("a")
    [/\bcreateRequire\([^)]*\)\s*\(\s*["']([^"']+)["']\s*\)/g, () => false],
  ];
  for (const [pattern, isTypeOnly] of patterns) {
    for (const m of code.matchAll(pattern)) {
      const specifier = m[m.length - 1]!;
      found.push({ specifier, typeOnly: isTypeOnly(m as RegExpExecArray), line: lineAt(m.index) });
    }
  }
  return found.sort((a, b) => a.line - b.line);
}

/** "@aws-sdk/client-sqs/x" → "@aws-sdk/client-sqs"; "zod/mini" → "zod". */
function packageName(specifier: string): string {
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]!;
}

/** The door rules for one file (path relative to the project root, with `/`). */
function doorViolations(file: string, source: string, dependencies: ReadonlySet<string>): string[] {
  const wing = file.split("/")[0];
  if (wing !== "lib" && wing !== "cli") return [];
  const allowed = wing === "lib" ? ["lib"] : ["lib", "cli"];
  const problems: string[] = [];
  for (const { specifier, typeOnly, line } of importsOf(source)) {
    const where = `${file}:${line}: ${JSON.stringify(specifier)}`;
    if (specifier.startsWith(".")) {
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), specifier));
      const targetWing = target.split("/")[0]!;
      if (!allowed.includes(targetWing) && !(wing === "cli" && target === "package.json")) {
        problems.push(`${where}: ${wing}/ may import only ${allowed.map((w) => `${w}/`).join(" and ")}`);
      }
    } else if (!isBuiltin(specifier) && !typeOnly && !dependencies.has(packageName(specifier))) {
      problems.push(`${where}: ${packageName(specifier)} is not a runtime dependency (package.json "dependencies")`);
    }
  }
  return problems;
}

function sourcesIn(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith(".ts"))
    .map((entry) => path.relative(ROOT, path.join(entry.parentPath, entry.name)).split(path.sep).join("/"));
}

describe("the doors between lib/, cli/ and the rest", () => {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
    dependencies: Record<string, string>;
  };
  const dependencies = new Set(Object.keys(pkg.dependencies));

  it("hold in every file of lib/ and cli/", () => {
    const files = [...sourcesIn("lib"), ...sourcesIn("cli")];
    expect(files.length).toBeGreaterThan(20);
    const problems = files.flatMap((file) =>
      doorViolations(file, readFileSync(path.join(ROOT, file), "utf8"), dependencies),
    );
    expect(problems).toEqual([]);
  });

  it("catch lib/ importing cli/ or local/, and cli/ importing local/ or test/", () => {
    expect(doorViolations("lib/worker.ts", 'import { x } from "../cli/output.ts";', dependencies)).toHaveLength(1);
    expect(doorViolations("lib/worker.ts", 'const m = await import("../local/queues.ts");', dependencies)).toHaveLength(
      1,
    );
    expect(
      doorViolations("cli/commands/bulk.ts", 'export { y } from "../../local/pipeline.ts";', dependencies),
    ).toHaveLength(1);
    expect(
      doorViolations("cli/main.ts", 'import type { Z } from "../test/support/cli.ts";', dependencies),
    ).toHaveLength(1);
    expect(
      doorViolations(
        "cli/commands/bulk.ts",
        'import { a } from "../../lib/producer.ts";\nimport { b } from "../args.ts";',
        dependencies,
      ),
    ).toEqual([]);
  });

  it("catch a devDependency or an undeclared package, also when imported dynamically or required", () => {
    const [problem] = doorViolations("lib/ledger.ts", '\n\nimport {\n  buildApp,\n} from "fauxqs";', dependencies);
    expect(problem).toBe('lib/ledger.ts:3: "fauxqs": fauxqs is not a runtime dependency (package.json "dependencies")');
    expect(doorViolations("cli/main.ts", 'await import("tsx/esm/api");', dependencies)).toHaveLength(1);
    expect(
      doorViolations("lib/x.ts", 'const d = createRequire(import.meta.url)("dynalite");', dependencies),
    ).toHaveLength(1);
    expect(doorViolations("lib/x.ts", 'import "left-pad";', dependencies)).toHaveLength(1);
  });

  it("let runtime dependencies, built-ins, type-only imports and comments through", () => {
    const source = [
      'import { SQSClient } from "@aws-sdk/client-sqs";',
      'import * as z from "zod/mini";',
      'import { readFileSync } from "node:fs";',
      'import type { Context } from "aws-lambda";',
      'type Sdk = typeof import("@aws-sdk/client-dynamodb");',
      '// import { buildApp } from "fauxqs";',
      '/* await import("tsx") */',
    ].join("\n");
    expect(doorViolations("lib/worker.ts", source, dependencies)).toEqual([]);
  });
});
