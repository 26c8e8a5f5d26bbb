/** Splitting a byte stream into capped lines: chunk boundaries, line ends, and lines over the cap. */
import { describe, expect, it } from "vitest";
import { readLines, type LongLine } from "../../lib/line-reader.ts";

async function lines(chunks: (string | Buffer)[], max?: number): Promise<(string | LongLine)[]> {
  const out: (string | LongLine)[] = [];
  for await (const batch of readLines(
    (async function* () {
      yield* chunks;
    })(),
    max,
  ))
    out.push(...batch);
  return out;
}

describe("readLines", () => {
  it("joins lines across chunk boundaries, drops \\r before \\n, and keeps a last line without a line end", async () => {
    expect(await lines(["ab", "c\r\nd", "", "e\n\nf"])).toEqual(["abc", "de", "", "f"]);
  });

  it("keeps a multi-byte character split between two chunks whole", async () => {
    const bytes = Buffer.from("é1\nü\n");
    expect(await lines([bytes.subarray(0, 1), bytes.subarray(1, 5), bytes.subarray(5)])).toEqual(["é1", "ü"]);
  });

  it("reports a line over the cap by its length, whether it ends in the chunk, spans chunks or ends the input", async () => {
    expect(await lines(["12345678\nok\n"], 4)).toEqual([{ tooLong: 8 }, "ok"]);
    expect(await lines(["12", "34", "56", "\nok\n"], 4)).toEqual([{ tooLong: 6 }, "ok"]);
    expect(await lines(["ok\n123", "456"], 4)).toEqual(["ok", { tooLong: 6 }]);
    expect(await lines(["1234\n"], 4)).toEqual(["1234"]);
  });

  it("reads a 200 MB line without holding it: memory stays flat", async () => {
    const chunk = Buffer.alloc(1 << 20, 120);
    const before = process.memoryUsage().arrayBuffers;
    let peak = 0;
    async function* source() {
      for (let i = 0; i < 200; i++) {
        peak = Math.max(peak, process.memoryUsage().arrayBuffers - before);
        yield chunk;
      }
      yield Buffer.from("\nnext\n");
    }
    const out: (string | LongLine)[] = [];
    for await (const batch of readLines(source())) out.push(...batch);
    expect(out).toEqual([{ tooLong: 200 * (1 << 20) }, "next"]);
    expect(peak).toBeLessThan(16 << 20);
  });
});
