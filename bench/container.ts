/**
 * A Lambda "container" for the bench, run as a child process (bundled to plain `.mjs`, so nothing but
 * Node and the handler bundle is loaded): it imports one handler bundle with the environment it was
 * started with, then runs invocations the parent sends over IPC, one at a time, as the Lambda runtime
 * does. It reports each invocation's duration as the runtime would (handler time only) and, on
 * request, its peak RSS.
 *
 * argv: <handler bundle path>
 * messages in:  {type:"invoke", id, event, timeoutMs} | {type:"stats", id} | {type:"exit"}
 * messages out: {type:"ready", importMs} | {type:"result", id, response?, error?, durationMs}
 *             | {type:"stats", id, maxRssKb, rssKb}
 */
import { pathToFileURL } from "node:url";
import { lambdaContext } from "../local/lambda-shapes.ts";

type Handler = (event: unknown, context: unknown) => Promise<unknown>;
type Incoming =
  | { type: "invoke"; id: number; event: unknown; timeoutMs: number }
  | { type: "stats"; id: number }
  | { type: "exit" };

const send = (message: unknown) => process.send?.(message);

async function main() {
  const bundle = process.argv[2];
  if (!bundle) throw new Error("usage: container.mjs <handler bundle>");
  const started = performance.now();
  const module = (await import(pathToFileURL(bundle).href)) as { handler: Handler };
  send({ type: "ready", importMs: performance.now() - started });

  process.on("message", (message: Incoming) => {
    if (message.type === "exit") process.exit(0);
    if (message.type === "stats") {
      send({
        type: "stats",
        id: message.id,
        maxRssKb: process.resourceUsage().maxRSS,
        rssKb: Math.round(process.memoryUsage.rss() / 1024),
      });
      return;
    }
    const t0 = performance.now();
    const context = lambdaContext({
      functionName: "scm-withdraw-bench",
      deadline: Date.now() + message.timeoutMs,
      logStreamName: "bench",
    });
    module.handler(message.event, context).then(
      (response) => send({ type: "result", id: message.id, response, durationMs: performance.now() - t0 }),
      (error: unknown) =>
        send({
          type: "result",
          id: message.id,
          error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
          durationMs: performance.now() - t0,
        }),
    );
  });
}

main().catch((error: unknown) => {
  process.stderr.write(
    `container failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});
