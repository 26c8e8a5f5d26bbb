/**
 * An HTTP server on 127.0.0.1 that accepts every request and never answers: a Secrets Manager, SQS
 * or IAM endpoint that hangs. `requests` counts what reached it.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface HangingServer {
  readonly url: string;
  readonly requests: number;
  close(): Promise<void>;
}

export async function startHangingServer(): Promise<HangingServer> {
  let requests = 0;
  const server = http.createServer(() => {
    requests += 1;
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get requests() {
      return requests;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
