/**
 * Vitest globalSetup: builds the operator CLI (`dist/cli.mjs`, about a second) before any test file
 * runs, so the tests that spawn `bin/scm-withdraw.mjs` run the current sources, as built for users.
 */
import { buildCli } from "../../scripts/build.mjs";

export default async function setup(): Promise<void> {
  await buildCli();
}
