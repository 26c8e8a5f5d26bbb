#!/usr/bin/env node
/**
 * Bundles every `handlers/*.ts` into `dist/<name>.mjs` (plus `dist/<name>.mjs.map`) with esbuild.
 *
 * `npm run build` runs it; `serverless package` does the same through serverless-esbuild, whose
 * `custom.esbuild` block in serverless.yml uses these options (keep the two in step). Tests and
 * benchmarks can import `buildEntry` to bundle one handler into a directory of their choice.
 */
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/**
 * ESM bundles have no `require`, but CommonJS dependencies inlined by esbuild call it for Node
 * built-ins ("Dynamic require of 'x' is not supported" otherwise). Aliased import names so nothing
 * in the bundle can collide with them.
 */
export const REQUIRE_BANNER =
  'import { createRequire as __scmCreateRequire } from "node:module"; const require = __scmCreateRequire(import.meta.url);';

/** The options shared by every handler bundle (serverless.yml `custom.esbuild` mirrors them). */
export const BUILD_OPTIONS = /** @type {const} */ ({
  bundle: true,
  platform: "node",
  // Lambda runs nodejs24.x (serverless.yml provider.runtime).
  target: "node24",
  format: "esm",
  minify: true,
  // "linked" writes a separate .map file AND the `//# sourceMappingURL` comment that
  // NODE_OPTIONS=--enable-source-maps needs to find it ("external" would drop the comment).
  sourcemap: "linked",
  // The nodejs24.x runtime ships the AWS SDK v3 (and its @smithy/* internals): leave them out.
  external: ["@aws-sdk/*", "@smithy/*"],
  banner: { js: REQUIRE_BANNER },
  legalComments: "none",
  logLevel: "warning",
});

/**
 * Bundles one handler entry (e.g. `handlers/withdraw.ts`) into `<outdir>/<name>.mjs`.
 * @param {string} entry path to the entry file, absolute or relative to the project root
 * @param {{ outdir?: string; minify?: boolean }} [options]
 * @returns {Promise<{ entry: string; outfile: string; bytes: number; mapBytes: number }>}
 */
export async function buildEntry(entry, options = {}) {
  const entryPath = path.resolve(PROJECT_ROOT, entry);
  const outdir = path.resolve(PROJECT_ROOT, options.outdir ?? "dist");
  const name = path.basename(entryPath, path.extname(entryPath));
  const outfile = path.join(outdir, `${name}.mjs`);
  await build({
    ...BUILD_OPTIONS,
    external: [...BUILD_OPTIONS.external],
    minify: options.minify ?? BUILD_OPTIONS.minify,
    absWorkingDir: PROJECT_ROOT,
    entryPoints: [entryPath],
    outfile,
  });
  const [{ size: bytes }, { size: mapBytes }] = await Promise.all([stat(outfile), stat(`${outfile}.map`)]);
  return { entry: path.relative(PROJECT_ROOT, entryPath), outfile, bytes, mapBytes };
}

/** Every `handlers/*.ts` (not `.d.ts`, not tests), sorted. */
export async function listHandlerEntries() {
  const dir = path.join(PROJECT_ROOT, "handlers");
  const names = await readdir(dir);
  return names
    .filter((n) => n.endsWith(".ts") && !n.endsWith(".d.ts") && !n.endsWith(".test.ts"))
    .sort()
    .map((n) => path.join("handlers", n));
}

/** @param {number} bytes */
function kib(bytes) {
  return `${(bytes / 1024).toFixed(1)} KiB`;
}

async function main() {
  const entries = await listHandlerEntries();
  if (entries.length === 0) throw new Error("no handlers/*.ts to build");
  const results = await Promise.all(entries.map((e) => buildEntry(e)));
  for (const r of results) {
    console.log(`${path.relative(PROJECT_ROOT, r.outfile).padEnd(28)} ${kib(r.bytes).padStart(10)}  (map ${kib(r.mapBytes)})`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().catch((error) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
}
