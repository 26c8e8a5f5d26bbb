/**
 * The repository stands alone: no tracked file points at a document outside it (a design document,
 * a shared folder of reference notes, a style guide), so a fresh clone has everything it refers to.
 */
import { execFileSync } from "node:child_process";
import { lstatSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const SELF = path
  .relative(ROOT, fileURLToPath(import.meta.url))
  .split(path.sep)
  .join("/");
/** Documents that lived next to the repository, never in it. */
const OUTSIDE =
  /\bDESIGN\.md\b|\bSTYLE\.md\b|\bSTYLE item\b|(?:\.\.\/|\/work\/)shared\b|\bshared\/reference\b|\breference\/[\w-]+\.txt\b/;

describe("the repository", () => {
  it("refers to no document outside it", () => {
    const files = execFileSync("git", ["ls-files"], { cwd: ROOT, encoding: "utf8" })
      .split("\n")
      .filter((f) => f && f !== SELF && f !== "package-lock.json" && lstatSync(path.join(ROOT, f)).isFile());
    expect(files.length).toBeGreaterThan(50);
    const found = files.flatMap((file) =>
      readFileSync(path.join(ROOT, file), "utf8")
        .split("\n")
        .flatMap((line, i) => (OUTSIDE.test(line) ? [`${file}:${i + 1}: ${line.trim()}`] : [])),
    );
    expect(found).toEqual([]);
  });
});
