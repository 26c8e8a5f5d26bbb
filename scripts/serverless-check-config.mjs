/**
 * A local Serverless plugin (serverless.yml `plugins`): before `serverless package` (and so before every
 * `deploy`), checks each function's environment with the schema its handler loads at cold start
 * (lib/config.ts, lib/cleanup-config.ts), so a value the handler would refuse (`LOG_LEVEL=loud`,
 * `SCM_ENDPOINT=http://...`, `cleanupMaxJobs=0`) stops the package with the handler's own message
 * instead of deploying a function that fails every cold start with config_invalid.
 *
 * Values that CloudFormation fills in at deploy time (`!Ref WithdrawalsDlq`) cannot be checked here:
 * they are left out, and only problems with the other variables count.
 *
 * The schemas are TypeScript, imported as they are: Node 24 runs erasable TypeScript natively.
 */

/** The configuration loader of each handler, by the `handler` of serverless.yml. */
const LOADERS = {
  "handlers/withdraw.handler": { module: "../lib/config.ts", load: "loadConfig" },
  "handlers/cleanup.handler": { module: "../lib/cleanup-config.ts", load: "loadCleanupConfig" },
};

/**
 * The problems `load` finds in `environment`, skipping the variables CloudFormation fills in.
 * @param {(env: Record<string, string>) => unknown} load
 * @param {Record<string, unknown>} environment
 * @returns {string[]} one line per problem, the handler's own wording
 */
export function configProblems(load, environment) {
  const env = {};
  const deployTime = new Set();
  for (const [name, value] of Object.entries(environment)) {
    if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") env[name] = String(value);
    else deployTime.add(name);
  }
  try {
    load(env);
    return [];
  } catch (error) {
    if (!Array.isArray(error?.problems)) throw error;
    return error.problems
      .filter((p) => !deployTime.has(p.variable))
      .map((p) => `${p.variable} ${p.message}${p.given === undefined ? "" : ` (got ${JSON.stringify(p.given)})`}`);
  }
}

export default class CheckConfigPlugin {
  /** @param {any} serverless */
  constructor(serverless) {
    this.serverless = serverless;
    this.hooks = { "before:package:initialize": () => this.check() };
  }

  async check() {
    const { service } = this.serverless;
    const lines = [];
    for (const [name, fn] of Object.entries(service.functions ?? {})) {
      const loader = LOADERS[fn.handler];
      if (!loader) {
        lines.push(
          `${name}: no configuration check for handler ${fn.handler} (add it to scripts/serverless-check-config.mjs)`,
        );
        continue;
      }
      const module = await import(new URL(loader.module, import.meta.url).href);
      const environment = { ...(service.provider.environment ?? {}), ...(fn.environment ?? {}) };
      for (const problem of configProblems(module[loader.load], environment)) lines.push(`${name}: ${problem}`);
    }
    if (lines.length > 0) {
      throw new this.serverless.classes.Error(
        `The functions' configuration would fail at cold start:\n  ${lines.join("\n  ")}`,
      );
    }
  }
}
