/**
 * What the CLI prints: aligned tables, a progress bar on a terminal (plain lines otherwise, so logs
 * and CI output stay readable), and small formatters. Results go to stdout, progress and problems to
 * stderr, so `scm-withdraw ... > out.txt` keeps only the results.
 */

/** The part of a stream the CLI writes to; tests pass a string collector. */
export interface OutputStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface Column<Row> {
  header: string;
  value: (row: Row) => string | number;
  /** Numbers read best right-aligned. */
  align?: "left" | "right";
}

/** Lines of an aligned text table: a header row, then one row per item. */
export function formatTable<Row>(rows: readonly Row[], columns: readonly Column<Row>[]): string[] {
  const cells = rows.map((row) => columns.map((c) => String(c.value(row))));
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((r) => r[i]!.length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => (columns[i]!.align === "right" ? v.padStart(widths[i]!) : v.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(columns.map((c) => c.header)), ...cells.map(line)];
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes} min ${Math.round((ms % 60_000) / 1000)} s`;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/**
 * A certificate id as it may be shown on a terminal: a valid one as is; anything else (a hostile
 * body's id could carry escape sequences) JSON-quoted and cut short.
 */
export function displayId(id: string | undefined): string {
  if (id === undefined) return "(no certificate id)";
  if (/^[A-Za-z0-9]{16}$/.test(id)) return id;
  return JSON.stringify(id.length > 40 ? `${id.slice(0, 40)}...` : id);
}

/** "1 duplicate", "2 duplicates". */
export function plural(count: number, word: string, many = `${word}s`): string {
  return `${count} ${count === 1 ? word : many}`;
}

/** The last path segment of a queue URL: its name. */
export function queueName(url: string): string {
  return url.replace(/\/+$/, "").split("/").pop() ?? url;
}

export interface Progress {
  /** Redraws (at most every `intervalMs`); `fraction` is 0..1, `text` what follows the bar. */
  update(fraction: number, text: string): void;
  /** Removes the bar (TTY) so the summary starts on a clean line. */
  done(): void;
}

/**
 * A progress bar on a terminal, or a plain `progress: ...` line every few seconds otherwise.
 * Disabled (a no-op) for `--json`, so machine-readable runs print nothing but the result.
 */
export function createProgress(
  stream: OutputStream,
  options: { enabled: boolean; now?: () => number; intervalMs?: number },
): Progress {
  if (!options.enabled) return { update() {}, done() {} };
  const now = options.now ?? Date.now;
  const tty = stream.isTTY === true;
  const interval = options.intervalMs ?? (tty ? 100 : 5000);
  let last = now();
  let drawn = false;
  return {
    update(fraction, text) {
      const t = now();
      if (t - last < interval) return;
      last = t;
      const percent = Math.max(0, Math.min(100, Math.floor(fraction * 100)));
      if (tty) {
        const width = 24;
        const filled = Math.round((percent / 100) * width);
        const line = `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${String(percent).padStart(3)}% ${text}`;
        // A line wider than the terminal wraps, and `\r` would then redraw only its last part.
        stream.write(`\r\x1b[K${stream.columns ? line.slice(0, stream.columns - 1) : line}`);
        drawn = true;
      } else {
        stream.write(`progress: ${percent}% ${text}\n`);
      }
    },
    done() {
      if (drawn) stream.write("\r\x1b[K");
      drawn = false;
    },
  };
}

/** A CSV field, quoted when it must be (RFC 4180). */
export function csvField(value: string | number | undefined): string {
  // A bulk run writes a row per line of its file: numbers and empty fields skip the test.
  if (value === undefined || value === "") return "";
  if (typeof value === "number") return String(value);
  return MUST_QUOTE.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

const MUST_QUOTE = /[",\r\n]/;
