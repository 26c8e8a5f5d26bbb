/**
 * The files of `scm-withdraw bulk`: the input, opened once and known by its identity (device + inode), and the
 * results CSV, written through a buffer and never over an earlier run's results or over the input itself.
 */
import { closeSync, fstatSync, openSync, statSync, unlinkSync, writeSync, type Stats } from "node:fs";
import { UsageError } from "../lib/errors.ts";
import { csvField } from "./output.ts";

export interface InputFile {
  fd: number;
  size: number;
  dev: number;
  ino: number;
}

export interface ResultsFile {
  /** Where the rows go: the path asked for, or its first free numbered sibling. */
  path: string;
  row(fields: (string | number)[]): void;
  close(): void;
  /** Removes the file this run created (never a device or FIFO it only wrote to). */
  discard(): void;
}

/** Opens the input file; its size and identity (device + inode) come from the open descriptor, not the name. */
export function openInput(file: string): InputFile {
  let fd: number | undefined;
  try {
    fd = openSync(file, "r");
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new UsageError(`${file} is not a file`, "bulk");
    return { fd, size: stat.size, dev: stat.dev, ino: stat.ino };
  } catch (error) {
    if (fd !== undefined) closeSync(fd);
    if (error instanceof UsageError) throw error;
    const code = (error as { code?: string }).code;
    const why =
      code === "ENOENT"
        ? "no such file"
        : code === "EACCES"
          ? "permission denied"
          : code === "EISDIR"
            ? "it is a directory"
            : String(code ?? error);
    throw new UsageError(`cannot read ${file}: ${why}`, "bulk");
  }
}

/**
 * The results CSV, written through a 64 KiB buffer so a million rows cost neither memory nor a million syscalls.
 * A path that is the input file under another name (a hard link, a symbolic link) is refused: opening it for
 * writing would truncate the input before a line of it was read.
 */
export function openResults(path: string, input: { dev: number; ino: number }, inputName: string): ResultsFile {
  const existing = statIfAny(path);
  if (existing && existing.dev === input.dev && existing.ino === input.ino) {
    const why = `--results ${path} is the input file ${inputName} (through a link); choose another path`;
    throw new UsageError(why, "bulk");
  }
  if (existing?.isDirectory()) throw new UsageError(`--results ${path} is a directory; give a file path`, "bulk");
  let fd: number | undefined;
  let chosen = path;
  // Not a regular file (/dev/null, /dev/stdout, a FIFO): not an earlier run's results, so written to, not renamed.
  if (existing && !existing.isFile()) fd = openResultsTarget(path, "w");
  // A re-run never overwrites an earlier run's results: the first free name of path, path-2, path-3...
  for (let n = 2; fd === undefined; n++) {
    try {
      fd = openSync(chosen, "wx");
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code !== "EEXIST" || n > 1000) throw resultsError(chosen, error);
      chosen = numbered(path, n);
    }
  }
  let buffer = "";
  let closed = false;
  const flush = () => {
    if (buffer !== "") writeSync(fd, buffer);
    buffer = "";
  };
  return {
    path: chosen,
    row(fields) {
      // Field by field, not map and join: no array per row of a million-line file.
      let text = csvField(fields[0]);
      for (let i = 1; i < fields.length; i++) text += `,${csvField(fields[i])}`;
      buffer += `${text}\n`;
      if (buffer.length >= 65_536) flush();
    },
    close() {
      if (closed) return;
      closed = true;
      flush();
      closeSync(fd);
    },
    discard() {
      if (chosen !== path || !existing) unlinkSync(chosen);
    },
  };
}

function openResultsTarget(path: string, flags: string): number {
  try {
    return openSync(path, flags);
  } catch (error) {
    throw resultsError(path, error);
  }
}

function resultsError(path: string, error: unknown): UsageError {
  const code = (error as { code?: string }).code;
  return new UsageError(`cannot write the results file ${path}: ${code ?? String(error)}`, "bulk");
}

/** `ids.txt.results.csv` -> `ids.txt.results-2.csv`. */
function numbered(path: string, n: number): string {
  const dot = path.lastIndexOf(".");
  return dot > path.lastIndexOf("/") + 1 ? `${path.slice(0, dot)}-${n}${path.slice(dot)}` : `${path}-${n}`;
}

function statIfAny(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}
