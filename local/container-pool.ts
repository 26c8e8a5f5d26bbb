/**
 * Local "Lambda containers": worker threads, each running the real `handlers/withdraw.ts` through
 * `lambda-container.ts`, for the local pipeline (`pipeline.ts`) and the chaos run (`chaos.ts`).
 *
 * Each container has its own `process.env` (the handler's configuration), its own module scope (token
 * cache, keep-alive connections) and its own cold start; it runs one invocation at a time. Its JSON log
 * lines (stdout, stderr, and what the container ships on its port) are passed to `onLogLine`.
 *
 * Three ways a container ends, as in Lambda:
 * - an invocation outlives the function timeout (the runner aborts its `signal`): that container is
 *   terminated and replaced by a fresh one on the next invocation;
 * - {@link ContainerPool.close}: the normal end, once the event source has stopped (nothing in flight);
 * - {@link ContainerPool.kill}: a crash: every thread is terminated at once, whatever it is doing (an
 *   SCM call, a DLQ send), and every invocation in flight rejects with {@link KilledError}.
 *
 * ```ts
 * const pool = createContainerPool(handlerEnv, (line) => log.write(`${line}\n`));
 * await pool.warm(2); // a bad configuration fails here, with ContainerStartError
 * const runner = createEventSourceRunner({ ..., invoke: pool.invoke });
 * ```
 *
 * @module
 */
import { Worker } from "node:worker_threads";
import { LOCAL } from "../cli/local-defaults.ts";
import type { ContainerMessage, InvokeMessage } from "./lambda-container.ts";
import type { Invoke } from "./runner.ts";

/** A container could not start the handler (for example a bad configuration). */
export class ContainerStartError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ContainerStartError";
  }
}

/** Thrown into an invocation whose container was killed (and, by the chaos run, into SQS calls of a killed event source). */
export class KilledError extends Error {
  constructor(what: string) {
    super(`${what} was killed`);
    this.name = "KilledError";
  }
}

export interface ContainerPool {
  /** Invocations running in a container now. */
  readonly busy: number;
  /** Starts `count` containers and waits until each has imported the handler; rejects with {@link ContainerStartError}. */
  warm(count: number): Promise<void>;
  /** Runs one batch in an idle container (a new one if none is idle); the runner's `invoke`. */
  invoke: Invoke;
  /** Takes no more invocations and ends every thread. For the end of a run, after the event source stopped. */
  close(): Promise<void>;
  /** Terminates every thread now; invocations in flight reject with {@link KilledError}, later ones too. */
  kill(): Promise<void>;
}

/** Where a local handler finds its services: the pipeline's and the chaos run's wiring (SecretId as `LOCAL.secretId`). */
export interface LocalWiring {
  scmEndpoint: string;
  /** The local Secrets Manager endpoint serving `LOCAL.secretId`, and the only credentials it answers. */
  secretsEndpoint: string;
  secretsCredentials: { accessKeyId: string; secretAccessKey: string };
  sqsEndpoint: string;
  dlqUrl: string;
  /** The worker's MAX_RECEIVE_COUNT. */
  maxReceiveCount: number;
  region: string;
}

/**
 * The handler's environment for {@link LocalWiring}. Its AWS credentials are the local Secrets Manager
 * endpoint's random pair (it serves the token to no one else); the local SQS checks none.
 */
export function localHandlerEnv(wiring: LocalWiring): Record<string, string> {
  return {
    SCM_ENDPOINT: wiring.scmEndpoint,
    SCM_TOKEN_SECRET_ID: LOCAL.secretId,
    WITHDRAWAL_DLQ_URL: wiring.dlqUrl,
    MAX_RECEIVE_COUNT: String(wiring.maxReceiveCount),
    AWS_ENDPOINT_URL_SQS: wiring.sqsEndpoint,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: wiring.secretsEndpoint,
    AWS_REGION: wiring.region,
    AWS_ACCESS_KEY_ID: wiring.secretsCredentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: wiring.secretsCredentials.secretAccessKey,
  };
}

interface Container {
  worker: Worker;
  ready: Promise<void>;
  /** The invocation running now, if any. */
  current: { id: number; resolve: (response: unknown) => void; reject: (error: Error) => void } | undefined;
  dead: boolean;
}

/**
 * The thread's entry: registers tsx (TypeScript) in the thread, then imports the container module.
 * Node 20 does not pass `--import` loaders on to worker threads, hence the register call.
 */
const BOOTSTRAP = `
const { workerData } = require("node:worker_threads");
import(workerData.tsxApi).then((tsx) => { tsx.register(); return import(workerData.entry); });
`;

/** A pool of containers with `env` as their environment (exactly: nothing of this process's leaks in). */
export function createContainerPool(env: Record<string, string>, onLogLine: (line: string) => void): ContainerPool {
  const tsxApi = import.meta.resolve("tsx/esm/api");
  const entry = new URL("./lambda-container.ts", import.meta.url).href;
  const idle: Container[] = [];
  const all = new Set<Container>();
  let nextId = 0;
  let busy = 0;
  let closed = false;
  let killed = false;
  const refused = () => (killed ? new KilledError("the container") : new Error("the containers are closed"));

  const spawn = (): Container => {
    const worker = new Worker(BOOTSTRAP, {
      eval: true,
      env,
      workerData: { tsxApi, entry },
      stdout: true,
      stderr: true,
    });
    let startupError: Error | undefined;
    const container: Container = { worker, ready: Promise.resolve(), current: undefined, dead: false };
    all.add(container);
    pipeLines(worker.stdout, onLogLine);
    pipeLines(worker.stderr, onLogLine);
    container.ready = new Promise<void>((resolve, reject) => {
      worker.on("message", (message: ContainerMessage) => {
        if (message.type === "ready") return resolve();
        if (message.type === "log") return void splitLines(message.text, onLogLine);
        if (message.type === "result" && container.current?.id === message.id) {
          const { resolve: done, reject: fail } = container.current;
          container.current = undefined;
          if ("error" in message) fail(new Error(message.error));
          else done(message.response);
        }
      });
      worker.on("error", (error) => {
        startupError = error;
        reject(new ContainerStartError(`the handler could not start: ${error.message}`, { cause: error }));
      });
      worker.on("exit", (code) => {
        container.dead = true;
        all.delete(container);
        const index = idle.indexOf(container);
        if (index >= 0) idle.splice(index, 1);
        reject(new ContainerStartError(`the handler's container exited (code ${code}) before it was ready`));
        const reason = killed
          ? new KilledError("the container")
          : new Error(
              startupError ? `the container crashed: ${startupError.message}` : `the container exited (code ${code})`,
            );
        container.current?.reject(reason);
        container.current = undefined;
      });
    });
    container.ready.catch(() => {});
    return container;
  };

  return {
    get busy() {
      return busy;
    },
    async warm(count) {
      const containers = Array.from({ length: count }, spawn);
      await Promise.all(containers.map((c) => c.ready));
      idle.push(...containers);
    },
    async invoke(event, context, signal) {
      if (closed) throw refused();
      const container = idle.pop() ?? spawn();
      await container.ready;
      // Closed or killed while it booted: its thread is gone, a message to it would never be answered.
      if (closed) throw refused();
      const id = ++nextId;
      busy += 1;
      try {
        return await new Promise<unknown>((resolve, reject) => {
          container.current = { id, resolve, reject };
          // Lambda stops a timed-out invocation by discarding its execution environment: so do we.
          signal.addEventListener(
            "abort",
            () => {
              reject(signal.reason instanceof Error ? signal.reason : new Error("aborted"));
              void container.worker.terminate();
            },
            { once: true },
          );
          const message: InvokeMessage = {
            type: "invoke",
            id,
            event,
            functionName: context.functionName,
            region: event.Records[0]?.awsRegion ?? LOCAL.region,
            requestId: context.awsRequestId,
            deadline: Date.now() + context.getRemainingTimeInMillis(),
          };
          container.worker.postMessage(message);
        });
      } finally {
        busy -= 1;
        if (!container.dead && !signal.aborted && !closed) idle.push(container);
      }
    },
    async close() {
      closed = true;
      await Promise.all([...all].map((c) => c.worker.terminate()));
    },
    async kill() {
      closed = true;
      killed = true;
      // Rejected now, not when the threads' exits arrive: the caller sees its batches fail at once.
      for (const container of all) {
        container.current?.reject(new KilledError("the container"));
        container.current = undefined;
      }
      await Promise.all([...all].map((c) => c.worker.terminate()));
    },
  };
}

/** Passes each complete line of `stream` to `onLine` (and the unfinished last one when it ends). */
function pipeLines(stream: NodeJS.ReadableStream | null, onLine: (line: string) => void) {
  if (!stream) return;
  let rest = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk: string) => {
    rest = splitLines(rest + chunk, onLine, true);
  });
  stream.on("end", () => {
    if (rest) onLine(rest);
  });
}

/** Calls `onLine` for each complete line; returns the unfinished tail when `keepTail`. */
function splitLines(text: string, onLine: (line: string) => void, keepTail = false): string {
  const lines = text.split("\n");
  const tail = keepTail ? (lines.pop() ?? "") : "";
  for (const line of lines) if (line.trim() !== "") onLine(line);
  return tail;
}
