/**
 * The files of `scm-withdraw bulk`: the input, opened once and known by its identity (device + inode), and the
 * results CSV, written through a buffer and never over an earlier run's results or over the input itself.
 */
import { closeSync, fstatSync, openSync, statSync, writeSync, type Stats } from "node:fs";
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
  let fd: number | undefined;
  let chosen = path;
  // A re-run never overwrites an earlier run's results: the first free name of path, path-2, path-3...
  for (let n = 2; fd === undefined; n++) {
    try {
      fd = openSync(chosen, "wx");
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code !== "EEXIST" || n > 1000) {
        throw new UsageError(`cannot write the results file ${chosen}: ${code ?? String(error)}`, "bulk");
      }
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
      buffer += `${fields.map(csvField).join(",")}\n`;
      if (buffer.length >= 65_536) flush();
    },
    close() {
      if (closed) return;
      closed = true;
      flush();
      closeSync(fd);
    },
  };
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
