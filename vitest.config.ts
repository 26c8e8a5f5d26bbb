import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    // Each test file in a fresh process: tests set process.env and module state (said explicitly, which
    // also keeps vitest from printing its "isolate: false" hint).
    isolate: true,
    // Logs are shown for failing tests only; quiet-logs routes raw stdout/stderr writes through console.
    silent: "passed-only",
    setupFiles: ["test/support/quiet-logs.ts", "test/support/secret-guard.ts"],
    // The bin runs the built CLI (dist/cli.mjs): build it from the current sources first.
    globalSetup: ["test/support/build-cli.ts"],
    // The JSON report lets .ci/run print a plain "N passed, N failed" closing line.
    reporters: ["default", ["json", { outputFile: ".vitest/report.json" }]],
  },
});
