/**
 * The one HTTP transport of the project, used by the SCM client and the IAM token exchange.
 *
 * - Keep-alive connections, at most `maxSockets` per host, so a warm container reuses its TLS
 *   connections instead of paying a handshake per call. Idle sockets are retired after 50 s:
 *   Huawei's gateways close idle connections after about a minute, and reusing one they already
 *   closed costs a failed call.
 * - One time limit per request that covers connecting, silence and a slow drip of the body alike
 *   (a socket idle timeout would let a server that sends one byte a second hold the call forever).
 * - At most `maxBodyBytes` of an answer are read; past it the status and headers still count and
 *   the text is dropped (`oversized`).
 * - It never throws: it returns an answer (any status) or a network failure, and callers decide
 *   what it means. It logs nothing and keeps nothing of the request (headers may hold secrets).
 */
import type { IncomingHttpHeaders } from "node:http";

// The CommonJS module objects, not an ES import: on Node 24 `import ... from "node:http"` also evaluates
// every lazy export of the module (its WebSocket classes load undici), about 50 ms of every cold start.
const http = process.getBuiltinModule("node:http");
const https = process.getBuiltinModule("node:https");

export interface HttpRequest {
  url: URL;
  method: "GET" | "POST";
  headers?: Record<string, string>;
  body?: string;
  /** The whole exchange, from connecting to the last byte of the answer. */
  timeoutMs: number;
  /** Aborting ends the call at once as a `timeout` failure ("aborted"). */
  signal?: AbortSignal;
}

export type HttpAnswer = {
  kind: "answer";
  status: number;
  headers: IncomingHttpHeaders;
  /** The body as UTF-8 text; undefined when it was over `maxBodyBytes`. */
  text: string | undefined;
  /** When the body was over `maxBodyBytes`: its first {@link HEAD_BYTES} bytes, for logs about it. */
  head?: string;
  durationMs: number;
};

export type HttpFailure = {
  kind: "network";
  /** `timeout`: no complete answer within the time limit (or aborted); `connection`: refused, reset, DNS, TLS... */
  failure: "timeout" | "connection";
  /** The socket error's code and message, or what timed out. Never contains request headers. */
  message: string;
  durationMs: number;
};

export type HttpResult = HttpAnswer | HttpFailure;

export interface HttpTransportOptions {
  /** Sockets per host and protocol. */
  maxSockets: number;
  /** How much of an answer's body is read. */
  maxBodyBytes: number;
  /** Node's limit on the answer's headers (default 16 KiB); IAM's token header can be far larger. */
  maxHeaderBytes?: number;
  now?: () => number;
}

export interface HttpTransport {
  send(request: HttpRequest): Promise<HttpResult>;
  /** Closes idle keep-alive sockets. */
  close(): void;
}

/** How much of an oversized body is kept (`head`): enough for a log excerpt. */
export const HEAD_BYTES = 1024;

/** Huawei's gateways drop idle connections after about a minute: retire ours first. */
const IDLE_SOCKET_MS = 50_000;

export function createHttpTransport(options: HttpTransportOptions): HttpTransport {
  const agentOptions = { keepAlive: true, maxSockets: options.maxSockets, timeout: IDLE_SOCKET_MS };
  const agents = { http: new http.Agent(agentOptions), https: new https.Agent(agentOptions) };
  const now = options.now ?? (() => performance.now());

  const send = (request: HttpRequest): Promise<HttpResult> =>
    new Promise<HttpResult>((resolve) => {
      const started = now();
      const { url, signal } = request;
      let settled = false;
      const finish = (result: HttpResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        resolve(result);
      };
      const fail = (failure: HttpFailure["failure"], message: string) => {
        finish({ kind: "network", failure, message, durationMs: now() - started });
        outgoing.destroy();
      };
      const socketError = (error: NodeJS.ErrnoException) =>
        fail("connection", `${error.code ?? error.name}: ${error.message}`);
      const isHttps = url.protocol === "https:";
      const body = request.body;
      const outgoing = (isHttps ? https : http).request({
        protocol: url.protocol,
        hostname: url.hostname.replace(/^\[|\]$/g, ""),
        port: url.port || undefined,
        path: `${url.pathname}${url.search}`,
        method: request.method,
        agent: isHttps ? agents.https : agents.http,
        ...(options.maxHeaderBytes === undefined ? {} : { maxHeaderSize: options.maxHeaderBytes }),
        headers: { ...request.headers, ...(body === undefined ? {} : { "Content-Length": Buffer.byteLength(body) }) },
      });
      // Listen for errors before anything can destroy the request: destroying it (an already-aborted
      // signal) emits "socket hang up", which would be an uncaught exception without a listener.
      outgoing.on("error", socketError);
      const timeoutMs = Math.max(1, request.timeoutMs);
      const timer = setTimeout(() => fail("timeout", `no complete answer within ${timeoutMs} ms`), timeoutMs);
      const onAbort = () => fail("timeout", "aborted");
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });

      outgoing.on("response", (response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        const answer = (text: string | undefined, head?: string): HttpAnswer => ({
          kind: "answer",
          status: response.statusCode ?? 0,
          headers: response.headers,
          text,
          ...(head === undefined ? {} : { head }),
          durationMs: now() - started,
        });
        response.on("data", (chunk: Buffer) => {
          if (settled) return;
          size += chunk.length;
          if (size > options.maxBodyBytes) {
            // Enough: the status, the headers and the start of the body are in; the rest is not worth reading.
            const head = Buffer.concat([...chunks, chunk])
              .subarray(0, HEAD_BYTES)
              .toString("utf8");
            chunks.length = 0;
            finish(answer(undefined, head));
            response.destroy();
            return;
          }
          chunks.push(chunk);
        });
        response.on("end", () => finish(answer(Buffer.concat(chunks).toString("utf8"))));
        response.on("error", socketError);
        response.on("aborted", () => fail("connection", "answer cut off"));
      });
      outgoing.end(body);
    });

  return {
    send,
    close: () => {
      agents.http.destroy();
      agents.https.destroy();
    },
  };
}

/** A body as JSON, or undefined when it is empty or not JSON. */
export function parseJsonBody(text: string | undefined): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
