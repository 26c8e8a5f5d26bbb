#!/usr/bin/env node
/**
 * Bundles every `handlers/*.ts` into `dist/<name>.mjs` (plus `dist/<name>.mjs.map`) with esbuild, and
 * the operator CLI into `dist/cli.mjs` (see `buildCli`).
 *
 * `npm run build` runs it; `serverless package` does the same through serverless-esbuild, whose
 * `custom.esbuild` block in serverless.yml uses these options (keep the two in step). Tests and
 * benchmarks can import `buildEntry` to bundle one handler into a directory of their choice.
 */
import { access, readdir, rm, stat } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

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
  const { build } = await import("esbuild");
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

/** Where `buildCli` writes the operator CLI (`bin/scm-withdraw.mjs` imports it). */
export const CLI_OUTFILE = path.join(PROJECT_ROOT, "dist", "cli.mjs");

/**
 * Bundles the operator CLI (`cli/main.ts`) into plain JavaScript, `dist/cli.mjs`, so the bin runs with
 * no TypeScript loader. Every package import stays external: the CLI's runtime dependencies (the AWS
 * SDK, zod) are `dependencies`, installed beside it, so a production-only install runs it. Each
 * command's module is its own chunk (`dist/cli-chunks/`), loaded when the command runs: `--help`
 * loads only the dispatcher (cli/commands/index.ts).
 * @param {{ outdir?: string }} [options] where `cli.mjs` and its chunks go (default `dist`)
 * @returns {Promise<{ outfile: string; bytes: number }>}
 */
export async function buildCli(options = {}) {
  const { build } = await import("esbuild");
  const outdir = path.resolve(PROJECT_ROOT, options.outdir ?? "dist");
  // Chunk names carry a content hash: drop the previous build's, or they pile up.
  await rm(path.join(outdir, "cli-chunks"), { recursive: true, force: true });
  await build({
    entryPoints: { cli: path.join(PROJECT_ROOT, "cli", "main.ts") },
    bundle: true,
    splitting: true,
    platform: "node",
    target: BUILD_OPTIONS.target,
    format: "esm",
    packages: "external",
    outdir,
    outExtension: { ".js": ".mjs" },
    chunkNames: "cli-chunks/[name]-[hash]",
    absWorkingDir: PROJECT_ROOT,
    legalComments: "none",
    logLevel: "warning",
  });
  const outfile = path.join(outdir, "cli.mjs");
  return { outfile, bytes: (await stat(outfile)).size };
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

/** `node scripts/build.mjs [--cli]`: everything, or only the CLI (`npm run cli` rebuilds it first). */
async function main() {
  try {
    await import("esbuild");
  } catch {
    // `prepare` also runs in a production-only install (`npm ci --omit=dev`), which has no esbuild.
    const built = await access(CLI_OUTFILE).then(
      () => true,
      () => false,
    );
    console.error(
      `esbuild is not installed (a production-only install?): ${built ? "keeping the dist/ that is there" : "run `npm ci && npm run build`, then `npm prune --omit=dev`"}`,
    );
    process.exit(built ? 0 : 1);
  }
  const cliOnly = process.argv.includes("--cli");
  const entries = cliOnly ? [] : await listHandlerEntries();
  const [cli, ...results] = await Promise.all([buildCli(), ...entries.map((e) => buildEntry(e))]);
  if (cliOnly) return;
  for (const r of results) {
    console.log(
      `${path.relative(PROJECT_ROOT, r.outfile).padEnd(28)} ${kib(r.bytes).padStart(10)}  (map ${kib(r.mapBytes)})`,
    );
  }
  console.log(
    `${path.relative(PROJECT_ROOT, cli.outfile).padEnd(28)} ${kib(cli.bytes).padStart(10)}  (the scm-withdraw CLI and its chunks)`,
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().catch((error) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
}
