/** One set of rules for typed certificate ids: `npm start -- --jobs`, `bulk` and `enqueue` read the same file alike. */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { idOfLine } from "../../lib/bulk-file.ts";
import { readJobsFile } from "../../local/jobs-file.ts";

const dir = mkdtempSync(join(tmpdir(), "jobs-file-"));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const ids = (bodies: string[]) => bodies.map((b) => (JSON.parse(b) as { certificate_id: string }).certificate_id);

describe("idOfLine", () => {
  it.each([
    [" scs1000000000001 ", "scs1000000000001"],
    ["scs1000000000003 # customer asked", "scs1000000000003"],
    ["# a comment", ""],
    ["\t", ""],
  ])("%j -> %j", (line, id) => expect(idOfLine(line)).toBe(id));
});

describe("npm start --jobs", () => {
  it("takes ids with a # comment after them and padded ids, as bulk does, and drops duplicates", async () => {
    const read = await readJobsFile(
      file("ids.txt", "# list\nscs1000000000003 # the README's example\n  scs1000000000001  \nscs1000000000003\n"),
      "b-1",
    );
    expect(ids(read.bodies)).toEqual(["scs1000000000003", "scs1000000000001"]);
    expect(read.duplicates).toBe(1);
    expect(JSON.parse(read.bodies[0]!)).toEqual({
      certificate_id: "scs1000000000003",
      source: "bulk",
      batch_id: "b-1",
    });
  });

  it("reads a CSV with a certificate_id header, as bulk does", async () => {
    const read = await readJobsFile(
      file("ids.csv", "certificate_id,reason\nscs1000000000001,moved\nscs1000000000002,\n"),
      "b-2",
    );
    expect(ids(read.bodies)).toEqual(["scs1000000000001", "scs1000000000002"]);
    expect(JSON.parse(read.bodies[0]!)).toMatchObject({ reason: "moved" });
  });

  it("refuses the whole file when a line is invalid, naming the line", async () => {
    const path = file("bad.txt", "scs1000000000001\nscs12\n");
    await expect(readJobsFile(path, "b-3")).rejects.toThrow(
      `--jobs ${path}: 1 invalid line(s), nothing was sent: line 2: "scs12": certificate_id must be exactly 16 characters A-Z, a-z, 0-9`,
    );
  });

  it("says when the file cannot be read", async () => {
    await expect(readJobsFile(join(dir, "missing.txt"), "b-4")).rejects.toThrow(
      `--jobs: cannot read ${join(dir, "missing.txt")} (ENOENT)`,
    );
  });
});
