/**
 * The scheduled cleanup sweep (an EventBridge schedule): thin on purpose. The configuration and the
 * clients are built once per container; the work is `runCleanup` in `lib/cleanup.ts`.
 *
 * `CLEANUP_MODE` decides what a run does: `off` (nothing, not even a token read), `dry-run` (the
 * default: list and log what would be enqueued) or `enqueue`. A run that fails (token, listing,
 * queue) throws, so the invocation counts as an error in CloudWatch.
 */
import middy from "@middy/core";
import type { Context, ScheduledEvent } from "aws-lambda";
import { loadCleanupConfig } from "../lib/cleanup-config.ts";
import { runIdForEvent } from "../lib/cleanup.ts";
import { createCleanupRuntime } from "../lib/cleanup-runtime.ts";
import type { CleanupReport } from "../lib/cleanup-types.ts";
import { CleanupError, describeError } from "../lib/errors.ts";
import { createLogger } from "../lib/logger.ts";

const { config, runtime, logger } = (() => {
  try {
    const config = loadCleanupConfig();
    const logger = createLogger({ level: config.logLevel });
    // With the sweep off, build nothing: no client, no secret read.
    const runtime = config.mode === "off" ? undefined : createCleanupRuntime(config, { logger });
    return { config, runtime, logger };
  } catch (error) {
    // A bad configuration stops the container at start, with one line naming every bad variable.
    createLogger().error("config_invalid", { error: describeError(error) });
    throw error;
  }
})();

export type CleanupResponse = CleanupReport | { mode: "off" };

export const handler = middy<ScheduledEvent, CleanupResponse>().handler(async (event, context: Context) => {
  const log = logger.child({ awsRequestId: context.awsRequestId });
  if (!runtime) {
    log.info("cleanup_disabled", { mode: config.mode });
    return { mode: "off" };
  }
  const runId = runIdForEvent(event ?? {}, new Date());
  const remaining = context.getRemainingTimeInMillis?.();
  const deadline = remaining === undefined ? undefined : Date.now() + Math.max(0, remaining - config.deadlineMarginMs);
  let report: CleanupReport;
  try {
    report = await runtime.run({ runId, ...(deadline === undefined ? {} : { deadline }) });
  } catch (error) {
    log.error("cleanup_failed", {
      runId,
      code: error instanceof CleanupError ? error.code : "crashed",
      error: describeError(error),
    });
    throw error;
  }
  if (report.failed.length > 0) {
    // The jobs that did go out stay out (they are valid); the invocation still counts as failed.
    throw new CleanupError(
      "enqueue_failed",
      `${report.failed.length} of ${report.selected.length} cleanup jobs could not be enqueued (run ${runId}); see cleanup_job_failed lines`,
    );
  }
  return report;
});
