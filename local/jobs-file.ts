/**
 * `npm start -- --jobs FILE`: the whole file read up front with the operator CLI's own bulk reader
 * (`lib/bulk-file.ts`: .txt ids with `#` comments, .csv with a certificate_id header, .jsonl), so the
 * same file means the same jobs for `npm start`, `scm-withdraw bulk` and `scm-withdraw enqueue`.
 * Unlike `bulk`, an invalid line stops everything before anything is sent (a local run is a quick try).
 *
 * @module
 */
import { CertificateIdSet, formatFromPath, readBulkFile } from "../lib/bulk-file.ts";
import { BulkFileError, describeError, UsageError } from "../lib/errors.ts";

export interface JobsFile {
  /** Message bodies, one per distinct certificate id, in file order. */
  bodies: string[];
  duplicates: number;
}

/** Reads `path` (format from its extension; .txt when it has none we know); throws a {@link UsageError} naming bad lines. */
export async function readJobsFile(path: string, batchId: string): Promise<JobsFile> {
  const bodies: string[] = [];
  const invalid: string[] = [];
  const seen = new CertificateIdSet();
  let duplicates = 0;
  try {
    for await (const entry of readBulkFile(path, {
      format: formatFromPath(path) ?? "txt",
      set: { source: "bulk", batch_id: batchId },
    })) {
      if ("error" in entry) invalid.push(`line ${entry.line}: ${entry.error}`);
      else if (seen.firstSeen(entry.certificateId, entry.line) !== undefined) duplicates++;
      else bodies.push(entry.body);
    }
  } catch (error) {
    if (error instanceof BulkFileError) throw new UsageError(`--jobs ${path}: ${error.message}`);
    throw new UsageError(
      `--jobs: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? describeError(error)})`,
    );
  }
  if (invalid.length > 0) {
    const shown = invalid.slice(0, 3).join("; ");
    throw new UsageError(
      `--jobs ${path}: ${invalid.length} invalid line(s), nothing was sent: ${shown}${invalid.length > 3 ? "; ..." : ""}`,
    );
  }
  return { bodies, duplicates };
}
