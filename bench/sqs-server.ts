/**
 * fauxqs in a process of its own, for the bulk comparison: like the local pipeline (`npm start`) or
 * SQS itself, the queue does not share the producer's CPU. Started by `startSqsServer()`; prints
 * nothing, reports its endpoint over IPC, and exits when the parent disconnects.
 */
import { buildApp } from "fauxqs";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { type ChildServer, serveInChild, startChildServer } from "./child-server.ts";

export type SqsServer = ChildServer;

/** Starts fauxqs on 127.0.0.1 in a child process (run through tsx, like the rest of the bench). */
export function startSqsServer(): Promise<SqsServer> {
  return startChildServer(fileURLToPath(import.meta.url), ["--serve"], "SQS");
}

if (process.argv.includes("--serve") && process.send) {
  const app = buildApp({ logger: false });
  await app.listen({ port: 0, host: "127.0.0.1" });
  serveInChild(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, () => app.close());
}
