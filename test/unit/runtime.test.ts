/**
 * One Node major everywhere: the tests run on the Node that the `node` devDependency puts first on
 * every npm script's PATH, and the Lambda runtime, the bundles' target and `engines` name the same major.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { BUILD_OPTIONS } from "../../scripts/build.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const NODE_MAJOR = 24;
const major = (version: string) => Number(/^v?(\d+)/.exec(version)?.[1]);

describe(`the runtime (this run: Node ${process.version})`, () => {
  it(`runs the tests on Node ${NODE_MAJOR}, the node devDependency's major`, async () => {
    const pkg = JSON.parse(await readFile(path.join(ROOT, "package.json"), "utf8"));
    expect(major(process.version)).toBe(NODE_MAJOR);
    expect(major(pkg.devDependencies.node.replace(/^[\^~]/, ""))).toBe(NODE_MAJOR);
    expect(pkg.engines.node).toBe(`>=${NODE_MAJOR}`);
  });

  it(`deploys nodejs${NODE_MAJOR}.x and bundles for node${NODE_MAJOR}`, async () => {
    const serverlessYml = await readFile(path.join(ROOT, "serverless.yml"), "utf8");
    expect(serverlessYml).toMatch(new RegExp(`^  runtime: nodejs${NODE_MAJOR}\\.x$`, "m"));
    expect(serverlessYml).toMatch(new RegExp(`^    target: node${NODE_MAJOR}\\b`, "m"));
    expect(BUILD_OPTIONS.target).toBe(`node${NODE_MAJOR}`);
  });
});
