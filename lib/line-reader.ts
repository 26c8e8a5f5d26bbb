/**
 * Splits a byte stream into lines with a cap on a line's length, so one huge line (a file without
 * newlines, a binary file given by mistake) costs at most `maxBytes` of memory and comes out as a
 * {@link LongLine} the caller can report by number, instead of growing a string until V8 gives up
 * (`RangeError: Invalid string length`). Lines end at `\n`; a `\r` before it is dropped.
 *
 * Lines come out in arrays, one per chunk read: a million-line file then costs a few hundred
 * awaits rather than a million (see `bench/bulk.ts`).
 */

/** The longest line read; longer ones are skipped up to their end and reported as a {@link LongLine}. */
export const MAX_LINE_BYTES = 64 * 1024;

/** A line longer than the cap: only its length (in bytes, without the line end) is kept. */
export interface LongLine {
  tooLong: number;
}

export async function* readLines(
  input: AsyncIterable<Buffer | string>,
  maxBytes = MAX_LINE_BYTES,
): AsyncGenerator<(string | LongLine)[]> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  /** Bytes of the current line when it is already known to be too long (its bytes are dropped). */
  let skipped: number | undefined;
  for await (const chunk of input) {
    const buffer = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    const out: (string | LongLine)[] = [];
    let start = 0;
    for (;;) {
      const end = buffer.indexOf(10, start);
      const length = (end === -1 ? buffer.length : end) - start;
      if (skipped !== undefined) skipped += length;
      else if (pendingBytes + length > maxBytes) {
        skipped = pendingBytes + length;
        pending = [];
        pendingBytes = 0;
      }
      if (end === -1) {
        if (skipped === undefined && length > 0) {
          pending.push(buffer.subarray(start));
          pendingBytes += length;
        }
        break;
      }
      if (skipped !== undefined) {
        out.push({ tooLong: skipped });
        skipped = undefined;
      } else if (pendingBytes > 0) {
        pending.push(buffer.subarray(start, end));
        out.push(decode(Buffer.concat(pending), 0, pendingBytes + length));
        pending = [];
        pendingBytes = 0;
      } else out.push(decode(buffer, start, end));
      start = end + 1;
    }
    if (out.length > 0) yield out;
  }
  if (skipped !== undefined) yield [{ tooLong: skipped }];
  else if (pendingBytes > 0) yield [decode(Buffer.concat(pending), 0, pendingBytes)];
}

function decode(buffer: Buffer, start: number, end: number): string {
  return buffer.toString("utf8", start, end > start && buffer[end - 1] === 13 ? end - 1 : end);
}
