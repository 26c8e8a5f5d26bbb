/**
 * Flag parsing shared by the local tools' entry points (`npm start`, `npm run chaos`, the standalone
 * SCM simulator): node's `util.parseArgs`, strict and flags only, with its long multi-line messages
 * cut to one line that names the flag. (The operator CLI has its own parser, `cli/args.ts`, with
 * suggestions for near misses.)
 *
 * @module
 */
import { parseArgs, type ParseArgsConfig } from "node:util";

/** The command line cannot be used as given: the tool prints one line and exits 2. */
export class UsageError extends Error {}

type FlagOptions = NonNullable<ParseArgsConfig["options"]>;

/** Parses `argv` (flags only, no positionals) against `options`; throws a {@link UsageError} naming the first bad one. */
export function parseFlagValues<O extends FlagOptions>(argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    // node's messages are long and mention internals; keep the essential part on one line.
    const message = (error instanceof Error ? error.message : String(error)).split("\n")[0]!.replace(/\. To specify a positional argument.*$/, "");
    throw new UsageError(message.replace(/^Unknown option '(.*)'.*$/, "unknown option $1").replace(/^Unexpected argument '(.*)'.*$/, "unexpected argument $1 (flags only)"));
  }
}

/** The whole number given as `--name`, within `min`..`max`; undefined when the flag is absent. */
export function integerFlag(values: Record<string, unknown>, name: string, min: number, max: number): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  if (typeof raw !== "string" || !/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new UsageError(`--${name} must be an integer from ${min} to ${max} (got ${JSON.stringify(raw)})`);
  }
  return Number(raw);
}
