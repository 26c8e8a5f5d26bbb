/**
 * Functions fit on a screen: none in lib/, cli/ or handlers/ is longer than 100 lines (from its first line
 * to its closing brace; a leading doc comment does not count). A long function holds two jobs: split it by
 * role (read, decide, send, report), not by size. A failure names each function as file:line.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const ROOT = resolve(fileURLToPath(import.meta.url), "../../..");
const FOLDERS = ["lib", "cli", "handlers"];
const MAX_LINES = 100;

interface LongFunction {
  where: string;
  name: string;
  lines: number;
}

/** Every function, method, accessor or arrow in `source` longer than `max` lines. */
function longFunctions(fileName: string, source: string, max: number): LongFunction[] {
  const file = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const found: LongFunction[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isFunctionLike(node) && "body" in node && node.body) {
      const first = file.getLineAndCharacterOfPosition(node.getStart(file)).line + 1;
      const last = file.getLineAndCharacterOfPosition(node.getEnd()).line + 1;
      const lines = last - first + 1;
      if (lines > max) found.push({ where: `${fileName}:${first}`, name: nameOf(node, file), lines });
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return found;
}

/** `createLedger`, `BulkRun.take`, `bulkCommand.run`; an arrow takes the name it is given. */
function nameOf(node: ts.SignatureDeclaration, file: ts.SourceFile): string {
  const { parent } = node;
  const named = ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent);
  const own = node.name ?? (named ? parent.name : undefined);
  if (!own) return ts.isConstructorDeclaration(node) ? "constructor" : "(anonymous function)";
  let owner: ts.Node = node.parent;
  const isOwner = (n: ts.Node) => ts.isClassLike(n) || ts.isObjectLiteralExpression(n) || ts.isSourceFile(n);
  while (!isOwner(owner)) owner = owner.parent;
  const holder = ts.isClassLike(owner)
    ? owner.name
    : ts.isObjectLiteralExpression(owner) && ts.isVariableDeclaration(owner.parent)
      ? owner.parent.name
      : undefined;
  return holder ? `${holder.getText(file)}.${own.getText(file)}` : own.getText(file);
}

function sourceFiles(folder: string): string[] {
  return readdirSync(join(ROOT, folder), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts"))
    .map((entry) => relative(ROOT, join(entry.parentPath, entry.name)))
    .sort();
}

describe("function length", () => {
  it(`no function in ${FOLDERS.join("/, ")}/ is longer than ${MAX_LINES} lines`, () => {
    const files = FOLDERS.flatMap(sourceFiles);
    expect(files.length).toBeGreaterThan(20);
    const long = files.flatMap((file) => longFunctions(file, readFileSync(join(ROOT, file), "utf8"), MAX_LINES));
    const report = long.map((f) => `${f.where} ${f.name} is ${f.lines} lines (at most ${MAX_LINES}): split it by role`);
    expect(report).toEqual([]);
  });

  it("names a long function, method and arrow with file:line, and lets a short one pass", () => {
    const body = (n: number) => Array.from({ length: n - 2 }, (_, i) => `  const v${i} = ${i};`).join("\n");
    const source = [
      `export function short() {\n${body(100)}\n}`,
      `export function tooLong() {\n${body(101)}\n}`,
      `class Run {\n  take() {\n${body(101)}\n  }\n}`,
      `export const command = {\n  run: async () => {\n${body(101)}\n  },\n};`,
    ].join("\n");
    const found = longFunctions("cli/example.ts", source, MAX_LINES);
    expect(found.map((f) => `${f.where} ${f.name} ${f.lines}`)).toEqual([
      "cli/example.ts:101 tooLong 101",
      "cli/example.ts:203 Run.take 101",
      "cli/example.ts:306 command.run 101",
    ]);
  });
});
