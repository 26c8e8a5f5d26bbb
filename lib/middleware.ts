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
      const records = Array.isArray(request.event?.Records) ? request.event.Records : [];
      request.response = { batchItemFailures: records.map((r) => ({ itemIdentifier: r.messageId })) };
    },
  };
}
