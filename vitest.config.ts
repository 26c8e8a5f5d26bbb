import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    setupFiles: ["test/support/secret-guard.ts"],
    // The bin runs the built CLI (dist/cli.mjs): build it from the current sources first.
    globalSetup: ["test/support/build-cli.ts"],
    // The JSON report lets .ci/run print a plain "N passed, N failed" closing line.
    reporters: ["default", ["json", { outputFile: ".vitest/report.json" }]],
  },
});
