/**
 * `scm-withdraw`, the operator CLI: dispatch, global flags, `--help`, and exit codes.
 *
 * `main(argv, io)` does everything and returns the exit code, with the streams and the environment
 * injected, so tests run it in-process; `runCli()` wires it to the real process (the bin).
 *
 * Adding a command: a module exporting a {@link Command} (`{ ...HEADS.x, description, options, run }`),
 * its head in cli/commands/heads.ts and its loader in cli/commands/index.ts. Two-word names
 * (`"dlq list"`) make groups.
 */
import packageJson from "../package.json" with { type: "json" };
import { CliError, describeError, UsageError } from "../lib/errors.ts";
import { redact } from "../lib/redact.ts";
import { localSqsEndpoint } from "./local-defaults.ts";
import { formatOptions, parseArgs } from "./args.ts";
import { COMMANDS } from "./commands/index.ts";
import {
  CommandContext,
  EXIT,
  GLOBAL_OPTIONS,
  resolveLedgerTarget,
  resolveTarget,
  type CliIo,
  type Command,
  type CommandEntry,
} from "./context.ts";

export { COMMANDS } from "./commands/index.ts";
export { EXIT, type CliIo, type Command } from "./context.ts";

export const PROGRAM = "scm-withdraw";

/** The command itself, its module loaded if it was not yet. */
function load(entry: CommandEntry): Promise<Command> {
  return "load" in entry ? entry.load() : Promise.resolve(entry);
}

/** Runs one command line; returns the exit code (0 ok, 1 some work failed, 2 usage error, 130 interrupted). */
export async function main(
  argv: readonly string[],
  io: CliIo,
  commands: readonly CommandEntry[] = COMMANDS,
): Promise<number> {
  let commandName: string | undefined;
  try {
    if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-V")) {
      io.stdout.write(`${version()}\n`);
      return EXIT.ok;
    }
    const { command: entry, rest, group } = findCommand(argv, commands);
    commandName = entry?.name;
    if (group !== undefined) {
      io.stdout.write(groupHelp(group, commands));
      return EXIT.ok;
    }
    if (!entry) {
      // No command: `--help` asks for the index; anything else is a usage error that shows it.
      const { values, positionals } = parseArgs(rest, GLOBAL_OPTIONS);
      if (positionals[0] === "help") return await help(io, commands, positionals.slice(1));
      if (positionals.length > 0) throw unknownCommand(positionals, commands);
      if (values.help) {
        io.stdout.write(indexHelp(commands));
        return EXIT.ok;
      }
      io.stderr.write(indexHelp(commands));
      return EXIT.usage;
    }
    const command = await load(entry);
    const args = parseArgs(rest, { ...GLOBAL_OPTIONS, ...command.options }, command.name);
    if (args.values.help) {
      io.stdout.write(commandHelp(command));
      return EXIT.ok;
    }
    const env = io.env ?? process.env;
    const target = resolveTarget(args.values, env);
    const context = await CommandContext.open(io, target, {
      json: args.values.json === true,
      command: command.name,
      ledger: resolveLedgerTarget(args.values, env),
    });
    try {
      return await command.run(context, args);
    } finally {
      context.close();
    }
  } catch (error) {
    if (error instanceof UsageError) {
      const about = error.command ?? commandName;
      // Messages quote what the user typed: the one scrubber keeps a URL's credentials out of them.
      const help = `${PROGRAM}${about ? ` ${about}` : ""} --help`;
      io.stderr.write(`${PROGRAM}: error: ${redact(error.message)} (see \`${help}\`)\n`);
      return EXIT.usage;
    }
    // Operational failures are already one line; anything else (a bug) is reduced to one line, no stack.
    io.stderr.write(`${PROGRAM}: error: ${error instanceof CliError ? redact(error.message) : describeError(error)}\n`);
    return EXIT.failed;
  }
}

/**
 * Finds the command words in `argv` (global flags may come before them, e.g. `--json dlq list`) and
 * returns the rest of the arguments for the command's own parser.
 */
function findCommand(
  argv: readonly string[],
  commands: readonly CommandEntry[],
): { command: CommandEntry | undefined; rest: string[]; group?: string } {
  const positions: number[] = [];
  for (let i = 0; i < argv.length && positions.length < 2; i++) {
    const token = argv[i]!;
    if (token === "--") break;
    if (token.startsWith("-") && token !== "-") {
      const name = token.replace(/^-+/, "").split("=", 1)[0]!;
      const def = (GLOBAL_OPTIONS as Record<string, { type: string }>)[name];
      if (def?.type === "string" && !token.includes("=")) i++;
      // Flags after the first word belong to the command; only a second word may still follow.
      continue;
    }
    positions.push(i);
  }
  const [first, second] = positions.map((i) => argv[i]!);
  const byName = (name: string) => commands.find((c) => c.name === name);
  const match =
    (second !== undefined ? byName(`${first} ${second}`) : undefined) ??
    (first !== undefined ? byName(first) : undefined);
  if (!match) {
    if (first !== undefined && commands.some((c) => c.name.startsWith(`${first} `))) {
      const subs = commands.filter((c) => c.name.startsWith(`${first} `)).map((c) => c.name.slice(first.length + 1));
      // `scm-withdraw batch --help`: the group's own index.
      if (second === undefined && argv.some((a) => a === "--help" || a === "-h"))
        return { command: undefined, rest: [...argv], group: first };
      throw new UsageError(
        second === undefined
          ? `${first} needs a subcommand: ${subs.join(", ")}`
          : `unknown ${first} subcommand "${second}": use ${subs.join(", ")}`,
      );
    }
    return { command: undefined, rest: [...argv] };
  }
  const used = new Set(positions.slice(0, match.name.split(" ").length));
  return { command: match, rest: argv.filter((_, i) => !used.has(i)) };
}

function unknownCommand(positionals: string[], commands: readonly CommandEntry[]): UsageError {
  const first = positionals[0]!;
  const groups = [...new Set(commands.map((c) => c.name.split(" ")[0]!))];
  const close = groups.find((g) => g.startsWith(first.slice(0, 2)) && Math.abs(g.length - first.length) <= 2);
  return new UsageError(`unknown command "${first}"${close ? ` (did you mean ${close}?)` : ""}`);
}

async function help(io: CliIo, commands: readonly CommandEntry[], words: string[]): Promise<number> {
  if (words.length === 0) {
    io.stdout.write(indexHelp(commands));
    return EXIT.ok;
  }
  const command = commands.find((c) => c.name === words.join(" ")) ?? commands.find((c) => c.name === words[0]);
  if (!command) throw unknownCommand(words, commands);
  io.stdout.write(commandHelp(await load(command)));
  return EXIT.ok;
}

function indexHelp(commands: readonly CommandEntry[]): string {
  const heads = commands.map((c) => {
    const positional = c.usage.slice(c.name.length).split(" [", 1)[0]!.trim();
    return `${c.name}${positional ? ` ${positional}` : ""}`;
  });
  const width = Math.max(...heads.map((h) => h.length));
  return [
    `${PROGRAM}: feed the withdrawals queue and triage its dead-letter queue`,
    "",
    `usage: ${PROGRAM} <command> [options]`,
    "",
    "commands:",
    ...commands.map((c, i) => `  ${heads[i]!.padEnd(width)}  ${c.summary}`),
    "",
    "global options (any command):",
    ...formatOptions(GLOBAL_OPTIONS),
    "",
    ...TARGET_NOTES,
    "",
    `Run \`${PROGRAM} <command> --help\` for a command's own options.`,
    "",
  ].join("\n");
}

/** `scm-withdraw dlq --help`: the group's subcommands, each with its summary. */
function groupHelp(group: string, commands: readonly CommandEntry[]): string {
  const members = commands.filter((c) => c.name.startsWith(`${group} `));
  const width = Math.max(...members.map((c) => c.name.length));
  return [
    `usage: ${PROGRAM} ${group} <subcommand> [options]`,
    "",
    "subcommands:",
    ...members.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    `Run \`${PROGRAM} ${group} <subcommand> --help\` for a subcommand's own options.`,
    "",
  ].join("\n");
}

function commandHelp(command: Command): string {
  const own = formatOptions(command.options);
  return [
    `usage: ${PROGRAM} ${command.usage}`,
    "",
    `${command.summary.charAt(0).toUpperCase() + command.summary.slice(1)}.`,
    "",
    command.description,
    "",
    ...(own.length > 0 ? ["options:", ...own, ""] : []),
    "global options:",
    ...formatOptions(GLOBAL_OPTIONS),
    "",
    ...TARGET_NOTES,
    "",
  ].join("\n");
}

const TARGET_NOTES = [
  `By default every command talks to the local pipeline (\`npm start\`): SQS at ${localSqsEndpoint()}.`,
  "For AWS, pass --queue-url (and --dlq-url unless the queue's redrive policy names it); credentials and",
  "region come from the standard AWS environment variables and profiles. The ledger (batch tracking) is",
  "LEDGER_TABLE or --ledger-table, with AWS_ENDPOINT_URL_DYNAMODB for a local DynamoDB.",
  "",
  "exit codes: 0 everything done, 1 some work failed, 2 usage error (nothing done), 130 interrupted",
];

/** From package.json, built into dist/cli.mjs (no file read, and no `node:fs` on the way to `--help`). */
function version(): string {
  return `${PROGRAM} ${packageJson.version}`;
}

/** The bin's entry: real streams, Ctrl-C handling, and the exit code. */
export async function runCli(argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  // `scm-withdraw dlq list | head -1` closes stdout early: that is not an error worth a stack trace.
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw error;
  });
  const controller = new AbortController();
  const onSignal = () => {
    if (controller.signal.aborted) process.exit(EXIT.interrupted);
    process.stderr.write(`\n${PROGRAM}: stopping: finishing what is in flight (press Ctrl-C again to quit at once)\n`);
    controller.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    const ask =
      process.stdin.isTTY && process.stderr.isTTY
        ? (question: string) => askOnTerminal(question, controller, onSignal)
        : undefined;
    process.exitCode = await main(argv, {
      stdout: process.stdout,
      stderr: process.stderr,
      env: process.env,
      signal: controller.signal,
      ...(ask ? { ask } : {}),
    });
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

/** One question on the terminal (stderr, so stdout keeps only results); undefined when Ctrl-C interrupts it. */
async function askOnTerminal(
  question: string,
  controller: AbortController,
  onSignal: () => void,
): Promise<string | undefined> {
  if (controller.signal.aborted) return undefined;
  // Loaded here, not at the top: only a question needs it, and `--help` stays light.
  const { createInterface } = await import("node:readline/promises");
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  // readline takes Ctrl-C itself while it reads (the terminal is in raw mode): treat it as the process's Ctrl-C.
  rl.on("SIGINT", onSignal);
  try {
    return await rl.question(question, { signal: controller.signal });
  } catch {
    return undefined;
  } finally {
    rl.close();
  }
}
