// The plain Node script `scm-withdraw bulk --dry-run` is measured against (bench comparison 4): it reads
// the file line by line, validates each id with a regex, de-duplicates with a Set and writes the same
// results CSV. `node bench/bulk-baseline.mjs ids.txt results.csv` prints one JSON line: its own time
// (from its first line to the results file closed, like `main()` is timed), counts and peak RSS.
import { closeSync, createReadStream, openSync, writeSync } from "node:fs";
import { createInterface } from "node:readline";

const [file, out] = process.argv.slice(2);
const started = performance.now();
const pattern = /^[A-Za-z0-9]{16}$/;
const seen = new Map();
const fd = openSync(out, "w");
let buffer = "line,certificate_id,outcome,message_id,detail\n";
let line = 0;
const counts = { valid: 0, invalid: 0, duplicates: 0 };
for await (const raw of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
  line++;
  const id = raw.split("#", 1)[0].trim();
  if (id === "") continue;
  if (!pattern.test(id)) {
    counts.invalid++;
    buffer += `${line},,invalid,,not a certificate id\n`;
  } else if (seen.has(id)) {
    counts.duplicates++;
    buffer += `${line},${id},duplicate,,duplicate of line ${seen.get(id)}; skipped\n`;
  } else {
    seen.set(id, line);
    counts.valid++;
    buffer += `${line},${id},valid,,\n`;
  }
  if (buffer.length >= 65_536) {
    writeSync(fd, buffer);
    buffer = "";
  }
}
writeSync(fd, buffer);
closeSync(fd);
const seconds = (performance.now() - started) / 1000;
process.stdout.write(`${JSON.stringify({ seconds, ...counts, maxRssKb: process.resourceUsage().maxRSS })}\n`);
