#!/usr/bin/env -S node --max-semi-space-size=16
// --max-semi-space-size=16: a young generation of a fixed size (V8's own default depends on its version and
// the machine's memory). `bulk` streams millions of short-lived lines: a smaller one (it was 1 MB) collects
// so often that short-lived strings get promoted to the old generation, costing both GC time and RSS.
// Measured on 1,000,000 ids with --dry-run, Node 24: 1 MB 1.45 s / 160-187 MB peak RSS, 8 MB 1.07 s /
// 182 MB, 16 MB 1.0 s / 143 MB, default 1.0 s / 170 MB.
// The `scm-withdraw` operator CLI (`npx scm-withdraw --help`): plain JavaScript built from cli/ by
// `npm run build` (also run by `npm install`, through `prepare`), so no TypeScript loader is needed.
let cli;
try {
  cli = await import("../dist/cli.mjs");
} catch (error) {
  if (error?.code !== "ERR_MODULE_NOT_FOUND" || !String(error.message).includes("dist/cli.mjs")) throw error;
  process.stderr.write("scm-withdraw: the CLI is not built: run `npm run build` in the project directory\n");
  process.exit(1);
}
await cli.runCli();
