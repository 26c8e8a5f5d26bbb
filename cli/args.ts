/**
 * A small flag parser for the operator CLI. Node's `util.parseArgs` would do, but its messages
 * ("Option '--max <value>' argument missing") and its handling of a value that looks like a flag are
 * not what an operator should see; this one gives one precise line per mistake.
 *
 * Accepted shapes: `--name value`, `--name=value`, `-h`, booleans as `--name`, and `--` to end the
 * flags (everything after it is positional, even if it starts with `-`).
 *
 * The one flag parser of the project: the local tools (`npm start`, `npm run chaos`, the simulator) use it
 * too, through `local/flags.ts`.
 */
import { UsageError } from "../lib/errors.ts";

export interface OptionDefinition {
  type: "string" | "boolean";
  /** One line for `--help`. */
  description: string;
  /** Placeholder in `--help`, e.g. `URL` in `--queue-url URL`. */
  valueName?: string;
  /** A single-letter alias, e.g. `h` for `-h`. */
  short?: string;
  /** A string flag that may be given more than once; its value is then every value given, in order. */
  multiple?: boolean;
}

export type OptionSpec = Record<string, OptionDefinition>;

export type ParsedValues = Record<string, string | boolean | string[] | undefined>;

export interface ParsedArgs {
  values: ParsedValues;
  positionals: string[];
}

/** Parses `argv` against `spec`; throws a {@link UsageError} naming the first bad flag. */
export function parseArgs(argv: readonly string[], spec: OptionSpec, command?: string): ParsedArgs {
  const values: ParsedValues = {};
  const positionals: string[] = [];
  const byShort = new Map(
    Object.entries(spec).flatMap(([name, def]) => (def.short ? [[def.short, name] as const] : [])),
  );

  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]!;
    if (token === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!token.startsWith("-") || token === "-") {
      positionals.push(token);
      continue;
    }

    let name: string;
    let inline: string | undefined;
    if (token.startsWith("--")) {
      const eq = token.indexOf("=");
      name = eq === -1 ? token.slice(2) : token.slice(2, eq);
      inline = eq === -1 ? undefined : token.slice(eq + 1);
    } else {
      const long = token.length === 2 ? byShort.get(token.slice(1)) : undefined;
      if (!long) throw new UsageError(`unknown option ${token}`, command);
      name = long;
    }

    const def = spec[name];
    if (!def) throw new UsageError(`unknown option --${name}${suggest(name, Object.keys(spec))}`, command);
    if (values[name] !== undefined && !def.multiple) throw new UsageError(`--${name} given twice`, command);

    if (def.type === "boolean") {
      if (inline !== undefined) throw new UsageError(`--${name} takes no value (got "${inline}")`, command);
      values[name] = true;
      continue;
    }
    let value = inline;
    if (value === undefined) {
      const next = argv[i + 1];
      // A following flag is not a value: `--reason --dry-run` is a mistake, not the reason "--dry-run".
      if (next === undefined || (next.startsWith("-") && next !== "-"))
        throw new UsageError(`--${name} needs a value${def.valueName ? ` (${def.valueName})` : ""}`, command);
      value = next;
      i++;
    }
    values[name] = def.multiple ? [...((values[name] as string[] | undefined) ?? []), value] : value;
  }
  return { values, positionals };
}

/** Reads a flag as a whole number within bounds, or throws a {@link UsageError} naming it. */
export function integerFlag(
  values: ParsedValues,
  name: string,
  bounds: { min: number; max: number },
  command?: string,
): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const value = typeof raw === "string" && /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < bounds.min || value > bounds.max) {
    throw new UsageError(
      `--${name} must be a whole number from ${bounds.min} to ${bounds.max} (got "${String(raw)}")`,
      command,
    );
  }
  return value;
}

export function stringFlag(values: ParsedValues, name: string): string | undefined {
  const raw = values[name];
  return typeof raw === "string" ? raw : undefined;
}

/** Renders the option lines of `--help`, aligned. */
export function formatOptions(spec: OptionSpec): string[] {
  const heads = Object.entries(spec).map(
    ([name, def]) =>
      `${def.short ? `-${def.short}, ` : "    "}--${name}${def.type === "string" ? ` ${def.valueName ?? "VALUE"}` : ""}`,
  );
  const width = Math.max(0, ...heads.map((h) => h.length));
  return Object.values(spec).map((def, i) => `  ${heads[i]!.padEnd(width)}  ${def.description}`);
}

/** " (did you mean --x?)" for a near miss, so a typo gets a one-line fix. */
function suggest(name: string, known: string[]): string {
  const close = known.find((k) => distance(k, name) <= 2);
  return close ? ` (did you mean --${close}?)` : "";
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length]!;
}
