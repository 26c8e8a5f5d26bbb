/**
 * The project's error family: the few errors it throws. They carry data, not prose, and never the token.
 */
import { redact } from "./redact.ts";

/** The token could not be obtained (Secrets Manager or IAM failed, or the secret is empty/unusable). */
export class TokenUnavailableError extends Error {
  /** Why, as a stable code for logs: `secret_fetch_failed`, `secret_empty`, `secret_unusable`, `iam_unreachable`, `iam_rejected`. */
  readonly code: string;
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TokenUnavailableError";
    this.code = code;
  }
}

/**
 * The command line (or an input file as a whole) cannot be used as given: the operator CLI and the local
 * tools print one line and exit 2, having done nothing.
 */
export class UsageError extends Error {
  /** The command whose `--help` explains the right usage, if known. */
  readonly command: string | undefined;
  constructor(message: string, command?: string) {
    super(message);
    this.name = "UsageError";
    this.command = command;
  }
}

/** The file as a whole cannot be read as the format says (e.g. a CSV without a `certificate_id` column). */
export class BulkFileError extends Error {
  readonly line: number;
  constructor(message: string, line: number) {
    super(message);
    this.name = "BulkFileError";
    this.line = line;
  }
}

/** A failure an operator can act on, already phrased as one line (the CLI prints it and exits 1). */
export class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CliError";
  }
}

/** Normalises anything thrown into an `Error` (with a safe message) exactly once. */
export function toError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  return new Error(typeof thrown === "string" ? thrown : `non-error thrown: ${Object.prototype.toString.call(thrown)}`);
}

/**
 * A one-line description of an error for logs and terminals: name, code and message, without stack or
 * cause chains, scrubbed of secrets (a message may quote text that came from outside).
 */
export function describeError(thrown: unknown): string {
  const error = toError(thrown);
  const code = (error as { code?: unknown }).code;
  return redact(`${error.name}${typeof code === "string" ? ` ${code}` : ""}: ${error.message}`);
}

/** What an external call that ran out of the invocation's time was waiting for. */
export type DeadlineSubject = "secrets_manager" | "iam" | "scm" | "dead_letter" | "ledger" | "visibility";

/** An external call did not finish before the invocation's deadline (`deadline:<subject>` retry reason). */
export class DeadlineError extends Error {
  readonly code = "deadline";
  readonly subject: DeadlineSubject;
  constructor(subject: DeadlineSubject) {
    super(`${subject.replace("_", " ")} did not answer before the invocation's deadline`);
    this.name = "DeadlineError";
    this.subject = subject;
  }
}

/** Codes of a failed cleanup sweep. */
export type CleanupFailureCode =
  | "token_unavailable"
  | "listing_unauthorized"
  | "listing_rejected"
  | "listing_unavailable"
  | "listing_unexpected"
  | "offset_mode_unknown"
  | "deadline"
  | "enqueue_failed"
  | "not_confirmed"
  | "age_unknown";

/**
 * A cleanup sweep that could not finish. Its message is the one line an operator needs; it never holds the
 * token. `httpStatus`/`errorCode` say what SCM answered, when the failure was an answer.
 */
export class CleanupError extends Error {
  readonly code: CleanupFailureCode;
  readonly httpStatus: number | undefined;
  readonly errorCode: string | undefined;
  constructor(
    code: CleanupFailureCode,
    message: string,
    details: { httpStatus?: number | undefined; errorCode?: string | undefined } = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "CleanupError";
    this.code = code;
    this.httpStatus = details.httpStatus;
    this.errorCode = details.errorCode;
  }
}
