/**
 * The withdrawals queue's Lambda: thin on purpose. Dependencies are built once per container (so a
 * warm container reuses the token cache and keep-alive connections); the work is `lib/worker.ts`.
 */
import middy from "@middy/core";
import type { SQSBatchResponse, SQSEvent } from "aws-lambda";
import { loadConfig } from "../lib/config.ts";
import { describeError } from "../lib/errors.ts";
import { createLogger } from "../lib/logger.ts";
import { createRuntime } from "../lib/runtime.ts";
import { allRecordsFailed } from "../lib/middleware.ts";

const runtime = (() => {
  try {
    return createRuntime(loadConfig());
  } catch (error) {
    // A bad configuration stops the container at start, with one line naming every bad variable.
    createLogger().error("config_invalid", { error: describeError(error) });
    throw error;
  }
})();

export const handler = middy<SQSEvent, SQSBatchResponse>()
  .use(allRecordsFailed(runtime.logger))
  .handler((event, context) => runtime.worker.processBatch(event, context));
