/**
 * The few errors the project throws. They carry data, not prose, and never the token.
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
