#!/usr/bin/env node
// The `scm-withdraw` operator CLI (`npx scm-withdraw --help`). The CLI is TypeScript run through tsx,
// like the rest of the project's tooling: nothing to build first.

// The AWS SDK warns on Node 20 that future releases will need Node 22 (NodeVersionSupportWarning). That
// is about the SDK's next versions, not this run: drop that one warning so the output stays clean, and
// print every other warning as node would.
process.removeAllListeners("warning");
process.on("warning", (warning) => {
  if (warning.name === "NodeVersionSupportWarning" || String(warning.message).startsWith("NodeVersionSupportWarning")) return;
  process.stderr.write(`(node:${process.pid}) ${warning.name}: ${warning.message}\n`);
});

const { register } = await import("tsx/esm/api");
register();
const { runCli } = await import("../lib/cli/main.ts");
await runCli();
