/** The bulk file reader: formats, line numbers, validation, stamping, and the compact de-duplication set. */
import fc from "fast-check";
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { parseWithdrawalBody } from "../../lib/message.ts";
import { BulkFileError } from "../../lib/errors.ts";
import {
  CertificateIdSet,
  formatFromPath,
  readBulk,
  readBulkChunks,
  splitCsvRecord,
  type BulkLine,
  type BulkReadOptions,
} from "../../lib/bulk-file.ts";

async function read(text: string, options: BulkReadOptions): Promise<BulkLine[]> {
  const out: BulkLine[] = [];
  for await (const line of readBulk(Readable.from([text]), options)) out.push(line);
  return out;
}

const ok = (lines: BulkLine[]) =>
  lines.flatMap((l) => ("body" in l ? [{ line: l.line, body: JSON.parse(l.body) as Record<string, unknown> }] : []));
const errors = (lines: BulkLine[]) => lines.flatMap((l) => ("error" in l ? [{ line: l.line, error: l.error }] : []));

describe("formatFromPath", () => {
  it.each([
    ["ids.txt", "txt"],
    ["IDS.CSV", "csv"],
    ["jobs.jsonl", "jsonl"],
    ["jobs.ndjson", "jsonl"],
    ["ids", undefined],
    ["ids.json", undefined],
  ])("%s -> %s", (path, format) => {
    expect(formatFromPath(path)).toBe(format);
  });
});

describe("readBulkChunks", () => {
  it("yields a chunk's records as one array, line numbers running on across chunks and line ends", async () => {
    // A line split across two chunks ends up in the second chunk's array, numbered as in the file.
    const input = Readable.from(["AAAAAAAAAAAAAAA1\n# c\nAAAAAAAA", "AAAAAAA2\nnot-an-id\r\n", "AAAAAAAAAAAAAAA1\n"]);
    const chunks: BulkLine[][] = [];
    for await (const entries of readBulkChunks(input, { format: "txt" })) chunks.push(entries);
    expect(chunks.map((c) => c.map((e) => e.line))).toEqual([[1], [3, 4], [5]]);
    expect(chunks.flat().map((e) => ("error" in e ? "error" : e.certificateId))).toEqual([
      "AAAAAAAAAAAAAAA1",
      "AAAAAAAAAAAAAAA2",
      "error",
      "AAAAAAAAAAAAAAA1",
    ]);
  });
});

describe(".txt", () => {
  it("yields one job per id with the file's own line numbers, skipping blank lines and # comments", async () => {
    const text =
      "# exported 2026-11-27\n\nscs1000000000001\n  scs1000000000002  \nscs1000000000003 # customer asked\n\r\n";
    const lines = await read(text, { format: "txt" });
    expect(ok(lines)).toEqual([
      { line: 3, body: { certificate_id: "scs1000000000001", source: "manual" } },
      { line: 4, body: { certificate_id: "scs1000000000002", source: "manual" } },
      { line: 5, body: { certificate_id: "scs1000000000003", source: "manual" } },
    ]);
  });

  it("reports an invalid id with its line, quoting it so invisible characters show", async () => {
    const lines = await read("scs1000000000001\nscs100\nscs1000000000001\u0000\n../../etc/passwd\n", { format: "txt" });
    expect(errors(lines)).toEqual([
      { line: 2, error: '"scs100": certificate_id must be exactly 16 characters A-Z, a-z, 0-9' },
      { line: 3, error: '"scs1000000000001\\u0000": certificate_id must be exactly 16 characters A-Z, a-z, 0-9' },
      { line: 4, error: '"../../etc/passwd": certificate_id must be exactly 16 characters A-Z, a-z, 0-9' },
    ]);
    expect(ok(lines).map((l) => l.line)).toEqual([1]);
  });

  it("handles CRLF line ends and a byte order mark", async () => {
    const lines = await read("\uFEFFscs1000000000001\r\nscs1000000000002\r\n", { format: "txt" });
    expect(ok(lines).map((l) => l.body.certificate_id)).toEqual(["scs1000000000001", "scs1000000000002"]);
  });

  it("gives a valid id exactly the message the shared schema builds (the fast path validates the stamp once)", async () => {
    const options: BulkReadOptions = {
      format: "txt",
      set: { source: "bulk", batch_id: 'b-"q"' },
      defaults: { reason: "0000000000000000 ✓", requested_at: "2026-11-27T10:00:00.000Z" },
    };
    const [line] = await read("scs1000000000001\n", options);
    const expected = parseWithdrawalBody(
      JSON.stringify({
        certificate_id: "scs1000000000001",
        source: "bulk",
        batch_id: 'b-"q"',
        reason: "0000000000000000 ✓",
        requested_at: "2026-11-27T10:00:00.000Z",
      }),
    );
    expect(expected.ok).toBe(true);
    expect(line).toEqual({
      line: 1,
      certificateId: "scs1000000000001",
      body: JSON.stringify((expected as { request: unknown }).request),
    });
  });

  it("reports every line when the stamped fields themselves are invalid", async () => {
    const lines = await read("scs1000000000001\nscs1000000000002\n", {
      format: "txt",
      defaults: { reason: "x".repeat(300) },
    });
    expect(errors(lines).map((e) => e.line)).toEqual([1, 2]);
  });

  it("stamps `set` fields over the line's and fills `defaults` only where the line has none", async () => {
    const lines = await read("scs1000000000001\n", {
      format: "txt",
      set: { source: "bulk", batch_id: "b-1" },
      defaults: { reason: "cleanup", requested_at: "2026-11-27T10:00:00.000Z" },
    });
    expect(ok(lines)[0]!.body).toEqual({
      certificate_id: "scs1000000000001",
      source: "bulk",
      batch_id: "b-1",
      reason: "cleanup",
      requested_at: "2026-11-27T10:00:00.000Z",
    });
  });
});

describe(".csv", () => {
  it("finds the certificate_id column by its header and uses reason/request_id columns", async () => {
    const text =
      'name,Certificate_ID,reason,request_id\n"shop, main",scs1000000000001,"duplicate ""order""",OPS-1\nblog,scs1000000000002,,\n';
    const lines = await read(text, { format: "csv", defaults: { reason: "from flag" } });
    expect(ok(lines)).toEqual([
      {
        line: 2,
        body: {
          certificate_id: "scs1000000000001",
          source: "manual",
          reason: 'duplicate "order"',
          request_id: "OPS-1",
        },
      },
      { line: 3, body: { certificate_id: "scs1000000000002", source: "manual", reason: "from flag" } },
    ]);
  });

  it("detects ; and tab separated files from the header", async () => {
    expect(ok(await read("certificate_id;reason\nscs1000000000001;a, b\n", { format: "csv" }))[0]!.body).toMatchObject({
      reason: "a, b",
    });
    expect(ok(await read("x\tcertificate_id\n1\tscs1000000000001\n", { format: "csv" }))[0]!.body).toMatchObject({
      certificate_id: "scs1000000000001",
    });
  });

  it("reports bad rows with their line numbers and keeps going", async () => {
    const text =
      'certificate_id,reason\nscs1000000000001,ok\n\nscs1\n,no id\n"scs1000000000002,unterminated\nscs1000000000003,"x"y\nscs1000000000004\n';
    const lines = await read(text, { format: "csv" });
    expect(errors(lines)).toEqual([
      { line: 4, error: '"scs1": certificate_id must be exactly 16 characters A-Z, a-z, 0-9' },
      { line: 5, error: "no certificate_id value (column 1)" },
      { line: 6, error: "unterminated quoted field in column 1 (a quoted field cannot span lines)" },
      { line: 7, error: "unexpected characters after the quoted field in column 2" },
    ]);
    expect(ok(lines).map((l) => l.line)).toEqual([2, 8]);
  });

  it("fails as a whole when the header has no certificate_id column, naming what it found", async () => {
    await expect(read("id,reason\nscs1000000000001,x\n", { format: "csv" })).rejects.toThrow(
      new BulkFileError("no certificate_id column in the header row on line 1 (found: id, reason)", 1),
    );
    await expect(read("scs1000000000001\nscs1000000000002\n", { format: "csv" })).rejects.toThrow(
      /a file of bare ids should be a \.txt file/,
    );
    await expect(read("\n\n", { format: "csv" })).rejects.toThrow(BulkFileError);
  });

  it("splits RFC 4180 fields", () => {
    expect(splitCsvRecord('a,"b,c","d ""e""",,f')).toEqual(["a", "b,c", 'd "e"', "", "f"]);
    expect(splitCsvRecord("")).toEqual([""]);
    expect(splitCsvRecord('a, "b" ,c')).toEqual(["a", "b", "c"]);
  });
});

describe(".jsonl", () => {
  it("validates every line against the full schema, keeps unknown fields and stamps the batch", async () => {
    const text = [
      '{"certificate_id":"scs1000000000001","reason":"r1","ticket":"T-1"}',
      "",
      '{"certificate_id":"scs1000000000002","source":"manual","batch_id":"old"}',
      "not json",
      `{"certificate_id":"scs1000000000003","reason":${JSON.stringify("x".repeat(300))}}`,
      '{"certificate_id":"scs1000000000004","requested_at":"yesterday"}',
      "[1,2]",
      '{"certificate_id":"../x"}',
    ].join("\n");
    const lines = await read(text, {
      format: "jsonl",
      set: { source: "bulk", batch_id: "b-2" },
      defaults: { reason: "default reason" },
    });
    expect(ok(lines)).toEqual([
      {
        line: 1,
        body: { certificate_id: "scs1000000000001", reason: "r1", ticket: "T-1", source: "bulk", batch_id: "b-2" },
      },
      {
        line: 3,
        body: { certificate_id: "scs1000000000002", source: "bulk", batch_id: "b-2", reason: "default reason" },
      },
    ]);
    expect(errors(lines)).toEqual([
      { line: 4, error: "body is not JSON" },
      { line: 5, error: "reason must be at most 256 characters" },
      { line: 6, error: "requested_at must be an ISO-8601 date-time, e.g. 2026-11-27T10:00:00Z" },
      { line: 7, error: "body must be a JSON object" },
      { line: 8, error: "certificate_id must be exactly 16 characters A-Z, a-z, 0-9" },
    ]);
    // A valid id on an invalid line is still named, so the results file can say which job it was.
    expect(lines.find((l) => l.line === 5)!.certificateId).toBe("scs1000000000003");
  });
});

describe("CertificateIdSet", () => {
  it("returns the first line of an id seen before, and undefined for a new one", () => {
    const set = new CertificateIdSet();
    expect(set.firstSeen("scs1000000000001", 3)).toBeUndefined();
    expect(set.firstSeen("scs1000000000002", 4)).toBeUndefined();
    expect(set.firstSeen("scs1000000000001", 9)).toBe(3);
    expect(set.firstSeen("scs1000000000001", 12)).toBe(3);
    expect(set.size).toBe(2);
    expect(set.has("scs1000000000002")).toBe(true);
    expect(set.has("scs1000000000009")).toBe(false);
  });

  it("refuses anything that is not a certificate id", () => {
    expect(() => new CertificateIdSet().firstSeen("short", 1)).toThrow(TypeError);
  });

  it("agrees with a Map on any sequence of ids, across many resizes", () => {
    const idChar = fc.constantFrom(..."AB01z".split(""));
    const anId = fc.array(idChar, { minLength: 16, maxLength: 16 }).map((cs) => cs.join(""));
    fc.assert(
      fc.property(fc.array(anId, { maxLength: 400 }), (ids) => {
        const set = new CertificateIdSet(1);
        const oracle = new Map<string, number>();
        ids.forEach((id, i) => {
          expect(set.firstSeen(id, i + 1)).toBe(oracle.get(id));
          if (!oracle.has(id)) oracle.set(id, i + 1);
        });
        expect(set.size).toBe(oracle.size);
      }),
      { numRuns: 50 },
    );
  });

  it("holds 200,000 distinct ids", () => {
    const set = new CertificateIdSet();
    let repeated = 0;
    for (let i = 0; i < 200_000; i++)
      if (set.firstSeen(`scs${String(i).padStart(13, "0")}`, i + 1) !== undefined) repeated++;
    expect(repeated).toBe(0);
    expect(set.firstSeen("scs0000000123456", 1)).toBe(123_457);
    expect(set.size).toBe(200_000);
  });
});
