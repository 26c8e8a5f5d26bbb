/**
 * The parent side of `bench/container.ts`: starts a handler bundle in its own Node process (a cold
 * Lambda container) and invokes it, one invocation at a time, over IPC.
 */
import { fork, type ChildProcess } from "node:child_process";
import { openSync, closeSync, readFileSync } from "node:fs";
import path from "node:path";
import type { SQSBatchResponse, SQSEvent } from "aws-lambda";
import type { Bundles } from "./bundles.ts";

export interface Invocation {
  response: SQSBatchResponse | undefined;
  /** Set when the handler threw (Lambda then treats every record of the batch as failed). */
  error: string | undefined;
  /** Handler time measured inside the container (what Lambda bills as duration). */
  durationMs: number;
  /** From the parent's send to its receipt of the result (adds the IPC round trip, ~0.1 ms). */
  wallMs: number;
}

export interface Container {
  readonly name: string;
  /** Time to import the handler module inside the container, ms (cold start, init phase). */
  readonly importMs: number;
  invoke(event: SQSEvent, timeoutMs?: number): Promise<Invocation>;
  /** Peak and current resident set size of the container process, KiB. */
  stats(): Promise<{ maxRssKb: number; rssKb: number }>;
  close(): Promise<void>;
}

type Reply =
  | { type: "ready"; importMs: number }
  | { type: "result"; id: number; response?: SQSBatchResponse; error?: string; durationMs: number }
  | { type: "stats"; id: number; maxRssKb: number; rssKb: number };

/**
 * Starts a container for `bundle` with exactly `env` (plus PATH and HOME): nothing leaks in from the
 * bench's own environment. Its stdout/stderr (the handler's JSON logs) go to `<logDir>/<name>.log`.
 */
export async function startContainer(
  bundles: Bundles,
  name: string,
  bundle: string,
  env: Record<string, string>,
): Promise<Container> {
  const logFile = path.join(bundles.logDir, `${name}.log`);
  const fd = openSync(logFile, "w");
  const child: ChildProcess = fork(bundles.container.outfile, [bundle], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/tmp", ...env },
    stdio: ["ignore", fd, fd, "ipc"],
    execArgv: [],
  });
  closeSync(fd);
  const pending = new Map<number, (reply: Reply) => void>();
  let nextId = 1;
  let exited = false;
  const tail = () => readFileSync(logFile, "utf8").slice(-2000);

  const importMs = await new Promise<number>((resolve, reject) => {
    child.once("exit", (code) =>
      reject(new Error(`container ${name} exited (${code}) before it was ready:\n${tail()}`)),
    );
    child.once("message", (reply: Reply) =>
      reply.type === "ready"
        ? resolve(reply.importMs)
        : reject(new Error(`container ${name}: unexpected ${reply.type}`)),
    );
  });
  child.removeAllListeners("exit");
  child.on("exit", (code) => {
    exited = true;
    for (const [, settle] of pending)
      settle({ type: "result", id: 0, error: `container exited (${code})`, durationMs: 0 });
    pending.clear();
  });
  child.on("message", (reply: Reply) => {
    if (reply.type === "ready") return;
    const settle = pending.get(reply.id);
    pending.delete(reply.id);
    settle?.(reply);
  });

  const request = (message: Record<string, unknown>) =>
    new Promise<Reply>((resolve, reject) => {
      if (exited) return reject(new Error(`container ${name} has exited:\n${tail()}`));
      const id = nextId++;
      pending.set(id, resolve);
      child.send({ ...message, id });
    });

  return {
    name,
    importMs,
    async invoke(event, timeoutMs = 60_000) {
      const started = performance.now();
      const reply = await request({ type: "invoke", event, timeoutMs });
      const wallMs = performance.now() - started;
      if (reply.type !== "result") throw new Error(`container ${name}: unexpected ${reply.type}`);
      return { response: reply.response, error: reply.error, durationMs: reply.durationMs, wallMs };
    },
    async stats() {
      const reply = await request({ type: "stats" });
      if (reply.type !== "stats") throw new Error(`container ${name}: unexpected ${reply.type}`);
      return { maxRssKb: reply.maxRssKb, rssKb: reply.rssKb };
    },
    async close() {
      if (exited) return;
      const gone = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.send({ type: "exit" });
      await Promise.race([gone, new Promise((r) => setTimeout(r, 2000))]);
      if (!exited) child.kill("SIGKILL");
    },
  };
}

/** The records a batch response hands back (all of them when the handler threw). */
export function failedIds(event: SQSEvent, invocation: Invocation): string[] {
  if (invocation.error !== undefined || !invocation.response) return event.Records.map((r) => r.messageId);
  return invocation.response.batchItemFailures.map((f) => f.itemIdentifier);
}
