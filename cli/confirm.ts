/**
 * Asking before an action that cannot be undone (`dlq redrive`, `cleanup`, `bulk`): on a terminal the
 * command shows what it will do and asks; `--yes` skips the question; without a terminal (a script, a
 * pipe, CI) and without `--yes` it refuses before doing anything, so nothing destructive happens by default.
 */
import { UsageError } from "../lib/errors.ts";
import type { OptionSpec, ParsedValues } from "./args.ts";
import type { CommandContext } from "./context.ts";

export const YES_OPTION = {
  yes: {
    type: "boolean",
    short: "y",
    description: "do it without asking (needed when there is no terminal to ask on)",
  },
} as const satisfies OptionSpec;

/**
 * Whether the command must ask before acting: false with `--yes` (or when nothing will be done, e.g. a dry run).
 * Throws a {@link UsageError} (exit 2, nothing done) when it must ask and there is no terminal to ask on.
 */
export function mustAsk(context: CommandContext, values: ParsedValues, what: string): boolean {
  if (values.yes === true) return false;
  if (context.io.ask) return true;
  throw new UsageError(`${what}: pass --yes to confirm (there is no terminal to ask on)`, context.command);
}

/** Shows `lines` and asks `question [y/N]` on the terminal; true only for y or yes. */
export async function confirm(context: CommandContext, lines: readonly string[], question: string): Promise<boolean> {
  for (const line of lines) context.note(line);
  const answer = await context.io.ask!(`${question} [y/N] `);
  return /^\s*y(es)?\s*$/i.test(answer ?? "");
}
