/**
 * The one Lambda-like context of the repository: the local runner's containers, the bench's container
 * and the tests all hand handlers this. `getRemainingTimeInMillis` counts down to the function's timeout.
 */
import type { Context } from "aws-lambda";
import { randomUUID } from "node:crypto";

export interface LambdaContextOptions {
  functionName: string;
  /** When the function times out (ms since the epoch). */
  deadline: number;
  /** Default `eu-west-1`. */
  region?: string;
  /** Default: a fresh UUID. */
  requestId?: string;
  memoryLimitInMB?: number;
  /** Default `local`. */
  logStreamName?: string;
}

export function lambdaContext(options: LambdaContextOptions): Context {
  const region = options.region ?? "eu-west-1";
  const arn = `arn:aws:lambda:${region}:000000000000:function:${options.functionName}`;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: options.functionName,
    functionVersion: "$LATEST",
    invokedFunctionArn: arn,
    memoryLimitInMB: String(options.memoryLimitInMB ?? 512),
    awsRequestId: options.requestId ?? randomUUID(),
    logGroupName: `/aws/lambda/${options.functionName}`,
    logStreamName: options.logStreamName ?? "local",
    getRemainingTimeInMillis: () => Math.max(0, options.deadline - Date.now()),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}
