/**
 * fauxqs in a process of its own, for the bulk comparison: like the local pipeline (`npm start`) or
 * SQS itself, the queue does not share the producer's CPU. Started by `startSqsServer()`; prints
 * nothing, reports its port over IPC, and exits when the parent disconnects.
 */
import { fork } from "node:child_process";
import { buildApp } from "fauxqs";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { PROJECT_ROOT } from "../scripts/build.mjs";

export interface SqsServer {
  endpoint: string;
  close(): Promise<void>;
}

/** Starts fauxqs on 127.0.0.1 in a child process (run through tsx, like the rest of the bench). */
export async function startSqsServer(): Promise<SqsServer> {
  // cwd: the project root, where `--import tsx` resolves.
  const child = fork(fileURLToPath(import.meta.url), ["--serve"], {
    cwd: PROJECT_ROOT,
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "ignore", "inherit", "ipc"],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once("message", (message: { port: number }) => resolve(message.port));
    child.once("exit", (code) => reject(new Error(`the SQS server exited (${code}) before it listened`)));
  });
  child.removeAllListeners("exit");
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: async () => {
      if (child.exitCode !== null) return;
      const gone = new Promise((resolve) => child.once("exit", resolve));
      child.disconnect();
      await Promise.race([gone, new Promise((resolve) => setTimeout(resolve, 2000))]);
      if (child.exitCode === null) child.kill("SIGKILL");
    },
  };
}

if (process.argv.includes("--serve") && process.send) {
  const app = buildApp({ logger: false });
  await app.listen({ port: 0, host: "127.0.0.1" });
  process.send({ port: (app.server.address() as AddressInfo).port });
  process.on("disconnect", () => void app.close().then(() => process.exit(0)));
}
