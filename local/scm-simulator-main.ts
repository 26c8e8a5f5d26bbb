/**
 * Runs the SCM simulator on its own, seeded with the demo scenario, so a developer can curl it:
 *
 * ```sh
 * npx tsx local/scm-simulator-main.ts --port 4580 --token <a token of 32+ characters>
 * curl -X POST -H "X-Auth-Token: <token>" http://127.0.0.1:4580/v3/scm/certificates/scs1000000000001/cancel-cert
 * ```
 *
 * Flags: `--port N` (default 4580; 0 = any), `--token T` (repeatable; without one a random token is
 * generated and printed: it is only good for this simulator), `--iam-user domain:user:password`
 * (repeatable), `--latency-ms N`, `--rate-limit N` (calls per second), `--settle-ms N`,
 * `--list-offset-mode records|pages`. Stops on Ctrl-C.
 *
 * @module
 */

import { randomBytes } from "node:crypto";
import { DEMO } from "./demo-certificates.ts";
import { parseFlagValues } from "./flags.ts";
import { seedDemoScenario, startScmSimulator } from "./scm-simulator.ts";
import type { IamUser, ScmSimulatorOptions } from "./scm-simulator.ts";

function fail(message: string): never {
  console.error(`scm-simulator: ${message}`);
  process.exit(2);
}

function numberFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0) fail(`--${name} must be a non-negative integer`);
  return parsed;
}

const values = (() => {
  try {
    return parseFlagValues(process.argv.slice(2), {
      port: { type: "string", default: "4580" },
      token: { type: "string", multiple: true },
      "iam-user": { type: "string", multiple: true },
      "latency-ms": { type: "string" },
      "rate-limit": { type: "string" },
      "settle-ms": { type: "string" },
      "list-offset-mode": { type: "string" },
      help: { type: "boolean", short: "h" },
    });
  } catch (error) {
    return fail((error as Error).message);
  }
})();

if (values.help) {
  console.log(
    "usage: npx tsx local/scm-simulator-main.ts [--port 4580] [--token T]... [--iam-user domain:user:password]...\n" +
      "       [--latency-ms N] [--rate-limit N] [--settle-ms N] [--list-offset-mode records|pages]",
  );
  process.exit(0);
}

const generated = values.token === undefined || values.token.length === 0;
const tokens = generated ? [randomBytes(32).toString("hex")] : values.token!;
for (const token of tokens) if (token.length < 32) fail("--token must be at least 32 characters (the API's minimum)");

const iamUsers: IamUser[] = (values["iam-user"] ?? []).map((spec) => {
  const [domain, user, ...rest] = spec.split(":");
  if (!domain || !user || rest.length === 0) fail("--iam-user must be domain:user:password");
  return { domain, user, password: rest.join(":") };
});

const mode = values["list-offset-mode"];
if (mode !== undefined && mode !== "records" && mode !== "pages") fail("--list-offset-mode must be records or pages");

const options: ScmSimulatorOptions = { port: numberFlag("port", values.port) ?? 4580, tokens, iamUsers };
const latencyMs = numberFlag("latency-ms", values["latency-ms"]);
if (latencyMs !== undefined) options.latencyMs = latencyMs;
const rateLimit = numberFlag("rate-limit", values["rate-limit"]);
if (rateLimit !== undefined) options.rateLimitPerSecond = rateLimit;
const settleMs = numberFlag("settle-ms", values["settle-ms"]);
if (settleMs !== undefined) options.settleMs = settleMs;
if (mode !== undefined) options.listOffsetMode = mode;

const sim = await startScmSimulator(options);
seedDemoScenario(sim);

console.log(`SCM simulator listening on ${sim.url}`);
if (generated) console.log(`accepting a generated simulator-only token: ${tokens[0]}`);
if (iamUsers.length > 0)
  console.log(
    `IAM: POST ${sim.url}/v3/auth/tokens?nocatalog=true for ${iamUsers.map((u) => `${u.domain}/${u.user}`).join(", ")}`,
  );
console.log("demo certificates:");
for (const [name, id] of Object.entries(DEMO)) console.log(`  ${id}  ${name}`);
console.log(
  `try: curl -i -X POST -H "X-Auth-Token: $TOKEN" ${sim.url}/v3/scm/certificates/${DEMO.withdrawn}/cancel-cert`,
);

const stop = () => {
  void sim.close().then(() => process.exit(0));
};
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
