/**
 * Middy middleware for SQS handlers.
 */
import type middy from "@middy/core";
import type { SQSBatchResponse, SQSEvent } from "aws-lambda";
import { describeError } from "./errors.ts";
import type { Logger } from "./logger.ts";

/**
 * If the handler itself throws (a bug: per-record problems never throw), report every record of the
 * batch as failed instead of failing the invocation, so SQS redelivers them and the redrive policy
 * still applies. Nothing is acknowledged that was not processed.
 */
export function allRecordsFailed(logger: Logger): middy.MiddlewareObj<SQSEvent, SQSBatchResponse> {
  return {
    onError: async (request) => {
      logger.error("batch_crashed", { error: describeError(request.error) });
      const records: unknown[] = Array.isArray(request.event?.Records) ? request.event.Records : [];
      // Only records with a messageId can be reported (a malformed one must not make this throw too).
      const ids = records
        .map((r) => (r as { messageId?: unknown } | null)?.messageId)
        .filter((id): id is string => typeof id === "string" && id !== "");
      request.response = { batchItemFailures: [...new Set(ids)].map((itemIdentifier) => ({ itemIdentifier })) };
    },
  };
}
