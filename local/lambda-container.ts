/**
 * One local "Lambda container": the entry of a worker thread started by `local/container-pool.ts`.
 *
 * It imports the real `handlers/withdraw.ts` (whose module scope reads the thread's own
 * `process.env`, exactly as a Lambda container reads its configuration at cold start), says `ready`,
 * then runs one invocation per `invoke` message and posts the handler's response back. The handler's
 * JSON log lines (its stdout) are sent to the pool's owner (the pipeline counts outcomes from them and
 * writes them to the worker log). A timed-out container is terminated by the pool, as Lambda would.
 *
 * @module
 */
import { parentPort } from "node:worker_threads";
import type { Context, SQSBatchResponse, SQSEvent } from "aws-lambda";
import { describeError } from "../lib/errors.ts";
import { lambdaContext } from "./lambda-shapes.ts";

/** parent → container */
export interface InvokeMessage {
  type: "invoke";
  id: number;
  event: SQSEvent;
  functionName: string;
  region: string;
  requestId: string;
  deadline: number;
}

/** container → parent */
export type ContainerMessage =
  | { type: "ready" }
  | { type: "log"; text: string }
  | { type: "result"; id: number; response: unknown }
  | { type: "result"; id: number; error: string };

type Handler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;

const port = parentPort;
if (!port) throw new Error("lambda-container.ts runs inside a worker thread started by local/container-pool.ts");

// Like Lambda's runtime, the container captures what the function writes to stdout (its JSON log
// lines) and ships it to the pipeline, on the same port as the results: so every log line of an
// invocation has arrived before its result, and the outcome counts are never behind the queue.
process.stdout.write = ((
  chunk: string | Uint8Array,
  encoding?: BufferEncoding | ((error?: Error | null) => void),
  callback?: (error?: Error | null) => void,
) => {
  const text =
    typeof chunk === "string" ? chunk : Buffer.from(chunk).toString(typeof encoding === "string" ? encoding : "utf8");
  port.postMessage({ type: "log", text } satisfies ContainerMessage);
  const done = typeof encoding === "function" ? encoding : callback;
  done?.();
  return true;
}) as typeof process.stdout.write;

// A bad configuration throws here: the thread fails to start, and the pipeline reports the error.
const { handler } = (await import("../handlers/withdraw.ts")) as unknown as { handler: Handler };

port.on("message", (message: InvokeMessage) => {
  if (message.type !== "invoke") return;
  const context = lambdaContext({
    functionName: message.functionName,
    region: message.region,
    requestId: message.requestId,
    deadline: message.deadline,
  });
  handler(message.event, context).then(
    (response) => port.postMessage({ type: "result", id: message.id, response } satisfies ContainerMessage),
    (error: unknown) =>
      port.postMessage({ type: "result", id: message.id, error: describeError(error) } satisfies ContainerMessage),
  );
});
port.postMessage({ type: "ready" } satisfies ContainerMessage);
