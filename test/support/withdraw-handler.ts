/** The real withdraw handler, imported as a new Lambda container would be, for the integration tests. */
import type { Context, SQSBatchResponse, SQSEvent } from "aws-lambda";
import { vi } from "vitest";

export type WithdrawHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;

/** `process.env` as the test file found it: each cold start layers its environment over this. */
const savedEnv = { ...process.env };

/** Imports the handler afresh (new module state: token cache, clients) with `env` over the saved environment. */
export async function coldStartWithdraw(env: Record<string, string>): Promise<WithdrawHandler> {
  process.env = { ...savedEnv, ...env };
  vi.resetModules();
  const module = await import("../../handlers/withdraw.ts");
  return module.handler as unknown as WithdrawHandler;
}

/** Puts back the environment the test file found (for its `afterAll`). */
export function restoreEnv(): void {
  process.env = savedEnv;
}
