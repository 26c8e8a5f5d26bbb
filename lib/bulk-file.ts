/**
 * Reads a bulk file of withdrawal jobs line by line, without holding the file in memory: a million
 * lines cost one line at a time, plus whatever the caller keeps (see {@link CertificateIdSet}).
 *
 * Formats:
 * - `.txt`: one certificate id per line; blank lines and `#` comments (whole line or after the id) skipped.
 * - `.csv`: a header row with a `certificate_id` column (optional `reason`, `request_id`,
 *   `requested_at` columns are used too, others ignored); `,` `;` or tab separated, fields may be
 *   quoted (`"a ""b"""`) but a quoted field cannot span lines.
 * - `.jsonl` (or `.ndjson`): one message per line, validated against the full `WithdrawalRequest` schema.
 *
 * A line longer than 64 KiB is reported as invalid (by its number) and skipped, so memory stays bounded.
 * Every record is validated with the shared schema and comes out as a ready message body, or as an
 * error naming what is wrong; line numbers are the file's own (1-based), so an operator can fix them.
 */
import { createReadStream } from "node:fs";
import type { Readable } from "node:stream";
import { BulkFileError } from "./errors.ts";
import { MAX_LINE_BYTES, readLines } from "./line-reader.ts";
import { CERTIFICATE_ID_PATTERN, parseWithdrawalBody } from "./message.ts";

export const BULK_FORMATS = ["txt", "csv", "jsonl"] as const;
export type BulkFormat = (typeof BULK_FORMATS)[number];

export type BulkLine =
  | { line: number; certificateId: string; body: string }
  | { line: number; certificateId: string | undefined; error: string };

export interface BulkReadOptions {
  format: BulkFormat;
  /** Fields every message gets, replacing the line's own (the bulk command sets `source` and `batch_id`). */
  set?: Record<string, unknown>;
  /** Fields a message gets only when its line has none (e.g. `--reason`, `requested_at`). */
  defaults?: Record<string, unknown>;
}

/**
 * The certificate id a line of a .txt file (or an id typed on a command line) holds: the text before any
 * `#` comment, trimmed; "" for a blank or comment line. The one rule for every place ids are typed:
 * `bulk`, `enqueue`, `npm start -- --jobs`. (Ids are [A-Za-z0-9], so a `#` always starts a comment.)
 */
export function idOfLine(text: string): string {
  const hash = text.indexOf("#");
  return (hash === -1 ? text : text.slice(0, hash)).trim();
}

/** The format a file name implies, or undefined when the extension says nothing. */
export function formatFromPath(path: string): BulkFormat | undefined {
  const ext = /\.([A-Za-z0-9]+)$/.exec(path)?.[1]?.toLowerCase();
  if (ext === "txt" || ext === "csv" || ext === "jsonl") return ext;
  if (ext === "ndjson") return "jsonl";
  return undefined;
}

export function readBulkFile(path: string, options: BulkReadOptions): AsyncGenerator<BulkLine> {
  return readBulk(createReadStream(path), options);
}

/** Yields one {@link BulkLine} per record of `input`; blank and comment lines yield nothing. */
export async function* readBulk(input: Readable, options: BulkReadOptions): AsyncGenerator<BulkLine> {
  for await (const entries of readBulkChunks(input, options)) yield* entries;
}

/**
 * The records of `input` in arrays, one per chunk read (see {@link readLines}): a million-line file then
 * costs a few hundred awaits instead of a million, the bulk of a plain {@link readBulk}'s time.
 */
export async function* readBulkChunks(input: Readable, options: BulkReadOptions): AsyncGenerator<BulkLine[]> {
  const state: ReadState = { csv: undefined, template: options.format === "txt" ? bodyTemplate(options) : undefined };
  let lineNumber = 0;
  try {
    for await (const lines of readLines(input)) {
      const entries: BulkLine[] = [];
      for (const raw of lines) {
        lineNumber++;
        if (typeof raw !== "string") {
          const problem = `the line is longer than ${MAX_LINE_BYTES} bytes (${raw.tooLong} bytes)`;
          // Only before a CSV header (as in csvLayout): no record can be waiting in `entries` to be lost.
          if (options.format === "csv" && !state.csv)
            throw new BulkFileError(`the header row on line ${lineNumber}: ${problem}`, lineNumber);
          entries.push({ line: lineNumber, certificateId: undefined, error: problem });
          continue;
        }
        const entry = parseLine(lineNumber === 1 ? raw.replace(/^\uFEFF/, "") : raw, lineNumber, options, state);
        if (entry) entries.push(entry);
      }
      if (entries.length > 0) yield entries;
    }
  } finally {
    input.destroy();
  }
  if (options.format === "csv" && !state.csv)
    throw new BulkFileError("the file has no header row with a certificate_id column (it is empty)", lineNumber);
}

interface ReadState {
  /** The CSV header's layout, once read. */
  csv: CsvLayout | undefined;
  /** A .txt line's message for a valid id, without validating the same stamped fields a million times. */
  template: ((id: string) => string) | undefined;
}

/** One line of the file as a record, or undefined for a blank line, a comment or a CSV header. */
function parseLine(text: string, lineNumber: number, options: BulkReadOptions, state: ReadState): BulkLine | undefined {
  switch (options.format) {
    case "txt": {
      const id = idOfLine(text);
      if (id === "") return undefined;
      if (state.template && CERTIFICATE_ID_PATTERN.test(id))
        return { line: lineNumber, certificateId: id, body: state.template(id) };
      return toLine(lineNumber, { certificate_id: id }, options);
    }
    case "csv": {
      if (text.trim() === "" || text.trimStart().startsWith("#")) return undefined;
      if (!state.csv) {
        state.csv = csvLayout(text, lineNumber);
        return undefined;
      }
      const { csv } = state;
      const fields = splitCsvRecord(text, csv.delimiter);
      if (typeof fields === "string") return { line: lineNumber, certificateId: undefined, error: fields };
      if (fields.every((f) => f.trim() === "")) return undefined;
      const id = fields[csv.columns.certificate_id]?.trim();
      if (id === undefined || id === "") {
        return {
          line: lineNumber,
          certificateId: undefined,
          error: `no certificate_id value (column ${csv.columns.certificate_id + 1})`,
        };
      }
      const fromColumns: Record<string, unknown> = { certificate_id: id };
      for (const name of OPTIONAL_CSV_COLUMNS) {
        const index = csv.columns[name];
        const value = index === undefined ? undefined : fields[index]?.trim();
        if (value) fromColumns[name] = value;
      }
      return toLine(lineNumber, fromColumns, options);
    }
    case "jsonl": {
      if (text.trim() === "") return undefined;
      const parsed = parseWithdrawalBody(text);
      if (!parsed.ok)
        return { line: lineNumber, certificateId: validIdOrUndefined(parsed.certificateId), error: parsed.problem };
      return toLine(lineNumber, parsed.request, options, true);
    }
    default: {
      const never: never = options.format;
      throw new Error(`unknown bulk format ${String(never)}`);
    }
  }
}

/**
 * The message every valid .txt id gets, validated once with a sample id: the shared schema then only has
 * the id left to check, and a valid id (16 characters [A-Za-z0-9]) needs no JSON escaping. Undefined when
 * the stamped fields themselves are invalid: every line then goes through {@link toLine} for its error.
 */
function bodyTemplate(options: BulkReadOptions): ((id: string) => string) | undefined {
  const sample = "0000000000000000";
  const line = toLine(1, { certificate_id: sample }, options);
  if (!("body" in line)) return undefined;
  const key = `"certificate_id":"${sample}"`;
  const at = line.body.indexOf(key);
  if (at === -1 || line.body.includes(key, at + 1)) return undefined;
  const head = line.body.slice(0, at + key.length - sample.length - 1);
  const tail = line.body.slice(at + key.length - 1);
  return (id) => head + id + tail;
}

function toLine(line: number, fields: Record<string, unknown>, options: BulkReadOptions, fromJson = false): BulkLine {
  const merged: Record<string, unknown> = { ...fields, ...options.set };
  for (const [key, value] of Object.entries(options.defaults ?? {})) if (merged[key] === undefined) merged[key] = value;
  const parsed = parseWithdrawalBody(JSON.stringify(merged));
  if (parsed.ok) return { line, certificateId: parsed.request.certificate_id, body: JSON.stringify(parsed.request) };
  const id = fields.certificate_id;
  // Plain ids are quoted in the message (JSON-style, so invisible characters show); a JSON line names its fields itself.
  const shown =
    !fromJson && typeof id === "string" && !CERTIFICATE_ID_PATTERN.test(id)
      ? `${JSON.stringify(id.length > 40 ? `${id.slice(0, 40)}...` : id)}: `
      : "";
  return { line, certificateId: validIdOrUndefined(id), error: `${shown}${parsed.problem}` };
}

function validIdOrUndefined(id: unknown): string | undefined {
  return typeof id === "string" && CERTIFICATE_ID_PATTERN.test(id) ? id : undefined;
}

// ---- CSV ----

const OPTIONAL_CSV_COLUMNS = ["reason", "request_id", "requested_at"] as const;

interface CsvLayout {
  delimiter: string;
  columns: { certificate_id: number } & Partial<Record<(typeof OPTIONAL_CSV_COLUMNS)[number], number>>;
}

function csvLayout(header: string, line: number): CsvLayout {
  // The delimiter is the most frequent of , ; TAB in the header (spreadsheets in many locales write `;`).
  const counts = [",", ";", "\t"].map((d) => [d, header.split(d).length - 1] as const);
  const delimiter = counts.reduce((best, c) => (c[1] > best[1] ? c : best))[0];
  const fields = splitCsvRecord(header, delimiter);
  if (typeof fields === "string") throw new BulkFileError(`the header row on line ${line}: ${fields}`, line);
  const names = fields.map((f) => f.trim().toLowerCase());
  const index = names.indexOf("certificate_id");
  if (index === -1) {
    const found = names.filter((n) => n !== "").join(", ") || "nothing";
    const hint = CERTIFICATE_ID_PATTERN.test(fields[0]?.trim() ?? "")
      ? "; a file of bare ids should be a .txt file"
      : "";
    throw new BulkFileError(
      `no certificate_id column in the header row on line ${line} (found: ${found})${hint}`,
      line,
    );
  }
  const columns: CsvLayout["columns"] = { certificate_id: index };
  for (const name of OPTIONAL_CSV_COLUMNS) if (names.includes(name)) columns[name] = names.indexOf(name);
  return { delimiter, columns };
}

/** Splits one CSV line into fields (RFC 4180 quoting), or returns what is wrong with it. */
export function splitCsvRecord(text: string, delimiter = ","): string[] | string {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    // Leading spaces before a quote are tolerated: `a, "b"` is common in hand-written files.
    let start = i;
    while (text[start] === " ") start++;
    if (text[start] === '"') {
      let value = "";
      let j = start + 1;
      for (;;) {
        const quote = text.indexOf('"', j);
        if (quote === -1)
          return `unterminated quoted field in column ${fields.length + 1} (a quoted field cannot span lines)`;
        value += text.slice(j, quote);
        if (text[quote + 1] === '"') {
          value += '"';
          j = quote + 2;
          continue;
        }
        j = quote + 1;
        break;
      }
      while (text[j] === " ") j++;
      if (j < text.length && text[j] !== delimiter)
        return `unexpected characters after the quoted field in column ${fields.length + 1}`;
      fields.push(value);
      if (j >= text.length) return fields;
      i = j + 1;
    } else {
      const end = text.indexOf(delimiter, i);
      if (end === -1) {
        fields.push(text.slice(i));
        return fields;
      }
      fields.push(text.slice(i, end));
      i = end + 1;
    }
  }
}

// ---- de-duplication ----

const ID_BYTES = 16;

/**
 * The set of certificate ids already seen in a bulk file, with the line each was first seen on.
 *
 * Compact on purpose: a valid id is exactly 16 ASCII characters, so each entry is 16 bytes plus a
 * 4-byte line number in flat typed arrays (open addressing, linear probing), about 40 MB for a
 * million ids instead of several hundred MB for a `Map` of strings.
 */
export class CertificateIdSet {
  #keys: Uint8Array;
  #lines: Uint32Array;
  #size = 0;

  constructor(initialCapacity = 1024) {
    let capacity = 16;
    while (capacity < initialCapacity * 2) capacity *= 2;
    this.#keys = new Uint8Array(capacity * ID_BYTES);
    this.#lines = new Uint32Array(capacity);
  }

  get size(): number {
    return this.#size;
  }

  /**
   * Records `id` as seen on `line` (1-based) unless it was seen before.
   * @returns the line it was first seen on, or undefined when it is new.
   * @throws TypeError for an id that is not 16 characters [A-Za-z0-9] (validate first).
   */
  firstSeen(id: string, line: number): number | undefined {
    if (!CERTIFICATE_ID_PATTERN.test(id)) throw new TypeError(`not a certificate id: ${JSON.stringify(id)}`);
    if (line < 1 || line > 0xffffffff) throw new RangeError(`line out of range: ${line}`);
    const slot = this.#find(id);
    const seen = this.#lines[slot]!;
    if (seen !== 0) return seen;
    this.#lines[slot] = line;
    for (let i = 0; i < ID_BYTES; i++) this.#keys[slot * ID_BYTES + i] = id.charCodeAt(i);
    this.#size++;
    if (this.#size * 2 > this.#lines.length) this.#grow();
    return undefined;
  }

  has(id: string): boolean {
    return CERTIFICATE_ID_PATTERN.test(id) && this.#lines[this.#find(id)] !== 0;
  }

  /** The slot holding `id`, or the empty slot where it belongs. */
  #find(id: string): number {
    const mask = this.#lines.length - 1;
    let slot = hashId(id) & mask;
    for (;;) {
      if (this.#lines[slot] === 0 || this.#matches(slot, id)) return slot;
      slot = (slot + 1) & mask;
    }
  }

  #matches(slot: number, id: string): boolean {
    const base = slot * ID_BYTES;
    for (let i = 0; i < ID_BYTES; i++) if (this.#keys[base + i] !== id.charCodeAt(i)) return false;
    return true;
  }

  #grow(): void {
    const keys = this.#keys;
    const lines = this.#lines;
    this.#keys = new Uint8Array(keys.length * 2);
    this.#lines = new Uint32Array(lines.length * 2);
    const decoder = new TextDecoder("latin1");
    for (let slot = 0; slot < lines.length; slot++) {
      if (lines[slot] === 0) continue;
      const id = decoder.decode(keys.subarray(slot * ID_BYTES, (slot + 1) * ID_BYTES));
      const target = this.#find(id);
      this.#lines[target] = lines[slot]!;
      this.#keys.set(keys.subarray(slot * ID_BYTES, (slot + 1) * ID_BYTES), target * ID_BYTES);
    }
  }
}

/** FNV-1a over the id's 16 characters. */
function hashId(id: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < ID_BYTES; i++) hash = Math.imul(hash ^ id.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}
