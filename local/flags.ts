/**
 * Flag parsing for the local tools' entry points (`npm start`, `npm run chaos`, the standalone SCM
 * simulator): the operator CLI's own parser (`cli/args.ts`), flags only, with the values typed from
 * the options given. One parser, one set of messages, one `integerFlag` for the whole project.
 *
 * @module
 */
import { UsageError } from "../lib/errors.ts";
import { parseArgs, type OptionSpec } from "../cli/args.ts";

export { integerFlag } from "../cli/args.ts";

export interface FlagOption {
  type: "string" | "boolean";
  short?: string;
  multiple?: boolean;
  /** The value when the flag is not given. */
  default?: string;
}

export type FlagValues<O extends Record<string, FlagOption>> = {
  [K in keyof O]?: O[K] extends { type: "boolean" } ? boolean : O[K] extends { multiple: true } ? string[] : string;
};

/** Parses `argv` (flags only, no positionals) against `options`; throws a {@link UsageError} naming the first bad one. */
export function parseFlagValues<const O extends Record<string, FlagOption>>(argv: string[], options: O): FlagValues<O> {
  const spec: OptionSpec = {};
  for (const [name, option] of Object.entries(options)) {
    spec[name] = {
      type: option.type,
      description: "",
      ...(option.short ? { short: option.short } : {}),
      ...(option.multiple ? { multiple: true } : {}),
    };
  }
  const { values, positionals } = parseArgs(argv, spec);
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]} (flags only)`);
  for (const [name, option] of Object.entries(options))
    if (option.default !== undefined && values[name] === undefined) values[name] = option.default;
  return values as FlagValues<O>;
}
