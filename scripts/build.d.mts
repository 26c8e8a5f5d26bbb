/** Types for scripts/build.mjs, so TypeScript tests and benchmarks can import it. */
export declare const PROJECT_ROOT: string;
export declare const REQUIRE_BANNER: string;
export declare const BUILD_OPTIONS: {
  readonly bundle: true;
  readonly platform: "node";
  readonly target: "node24";
  readonly format: "esm";
  readonly minify: true;
  readonly sourcemap: "linked";
  readonly external: readonly ["@aws-sdk/*", "@smithy/*"];
  readonly banner: { readonly js: string };
  readonly legalComments: "none";
  readonly logLevel: "warning";
};
export interface BuiltEntry {
  /** The entry, relative to the project root. */
  entry: string;
  /** Absolute path of the `.mjs` bundle. */
  outfile: string;
  bytes: number;
  mapBytes: number;
}
export declare function buildEntry(entry: string, options?: { outdir?: string; minify?: boolean }): Promise<BuiltEntry>;
export declare function listHandlerEntries(): Promise<string[]>;
export declare const CLI_OUTFILE: string;
export declare function buildCli(options?: { outdir?: string }): Promise<{ outfile: string; bytes: number }>;
