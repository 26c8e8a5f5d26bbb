/** Factories for Lambda-shaped SQS events and contexts. */
import type { Context } from "aws-lambda";
import { lambdaContext as localLambdaContext } from "../../local/lambda-shapes.ts";

export { sqsEvent, sqsRecord } from "../../local/lambda-shapes.ts";

/** A Lambda-like context whose remaining time counts down from `timeoutMs`. */
export function lambdaContext(timeoutMs = 30_000): Context {
  return localLambdaContext({
    functionName: "scm-withdraw-dev-withdraw",
    deadline: Date.now() + timeoutMs,
    logStreamName: "stream",
  });
}
