/**
 * A bench server in a process of its own (so it does not share the measured process's CPU): forks
 * `file` through tsx with `args`, waits for the endpoint it reports over IPC, and stops it by
 * disconnecting (SIGKILL after 2 s). The child calls {@link serveInChild} to report.
 */
import { fork } from "node:child_process";
import { PROJECT_ROOT } from "../scripts/build.mjs";

export interface ChildServer {
  endpoint: string;
  close(): Promise<void>;
}

export async function startChildServer(file: string, args: string[], what: string): Promise<ChildServer> {
  // cwd: the project root, where `--import tsx` resolves.
  const child = fork(file, args, {
    cwd: PROJECT_ROOT,
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "ignore", "inherit", "ipc"],
  });
  const endpoint = await new Promise<string>((resolve, reject) => {
    child.once("message", (message: { endpoint: string }) => resolve(message.endpoint));
    child.once("exit", (code) => reject(new Error(`the ${what} server exited (${code}) before it listened`)));
  });
  child.removeAllListeners("exit");
  return {
    endpoint,
    close: async () => {
      if (child.exitCode !== null) return;
      const gone = new Promise((resolve) => child.once("exit", resolve));
      child.disconnect();
      await Promise.race([gone, new Promise((resolve) => setTimeout(resolve, 2000))]);
      if (child.exitCode === null) child.kill("SIGKILL");
    },
  };
}

/** In the child: reports the endpoint to the parent and closes the server when the parent disconnects. */
export function serveInChild(endpoint: string, close: () => Promise<unknown>): void {
  process.send?.({ endpoint });
  process.on("disconnect", () => void close().then(() => process.exit(0)));
}
