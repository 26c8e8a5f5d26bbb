/**
 * Structured JSON logs, one line per event, with stable snake_case event names
 * (`withdrawal_succeeded`, `withdrawal_dead_lettered`, ...). Written straight to stdout so each line
 * is a clean JSON document for CloudWatch Logs Insights and the Embedded Metric Format.
 *
 * Callers log certificate and message ids, never credentials; every string value still passes
 * through the one scrubber (`redact.ts`), because some come from outside (SCM and IAM error text).
 */
import type { LogLevel } from "./config.ts";
import { redact } from "./redact.ts";

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
  /** A logger whose lines all carry `fields` (e.g. the Lambda request id). */
  child(fields: LogFields): Logger;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LoggerOptions {
  level?: LogLevel;
  write?: (line: string) => void;
  now?: () => Date;
}

export function createLogger(options: LoggerOptions = {}, base: LogFields = {}): Logger {
  const min = RANK[options.level ?? "info"];
  const write = options.write ?? ((line: string) => process.stdout.write(line));
  const now = options.now ?? (() => new Date());
  const emit = (level: LogLevel, event: string, fields?: LogFields) => {
    if (RANK[level] < min) return;
    write(`${JSON.stringify({ level, event, time: now().toISOString(), ...base, ...fields }, replaceErrors)}\n`);
  };
  return {
    debug: (e, f) => emit("debug", e, f),
    info: (e, f) => emit("info", e, f),
    warn: (e, f) => emit("warn", e, f),
    error: (e, f) => emit("error", e, f),
    child: (fields) => createLogger(options, { ...base, ...fields }),
  };
}

/** A logger that drops everything (for tools that print their own output). */
export const silentLogger: Logger = createLogger({ write: () => {} });

function replaceErrors(_key: string, value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message };
  return typeof value === "string" ? redact(value) : value;
}
