/**
 * A tiny Secrets Manager endpoint for tests and the local pipeline (no emulator exists on npm).
 *
 * It speaks the one call the worker makes, `GetSecretValue` (AWS JSON 1.1: `POST /` with
 * `X-Amz-Target: secretsmanager.GetSecretValue`), so the real `@aws-sdk/client-secrets-manager`
 * client is used unchanged via `AWS_ENDPOINT_URL_SECRETS_MANAGER`. Binds 127.0.0.1 only.
 *
 * It may serve a real token (`npm start --token-file`), and any local process can reach 127.0.0.1, so
 * it answers only requests signed (AWS SigV4 `Authorization` header) with its own access key id: a
 * random one per server ({@link SecretsManagerServer.credentials}), which only the handler it was
 * started for is given. Anything else gets `UnrecognizedClientException`, as AWS answers an unknown key.
 * (The signature itself is not recomputed: the key id is the per-run secret; the endpoint is local.)
 */
import { randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface SecretsManagerServer {
  /** `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL_SECRETS_MANAGER`. */
  readonly url: string;
  /** The only credentials it answers (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` of its client). */
  readonly credentials: { accessKeyId: string; secretAccessKey: string };
  /** Sets (or replaces, as a rotation would) a secret's SecretString. */
  setSecret(id: string, value: string): void;
  deleteSecret(id: string): void;
  /** `GetSecretValue` calls answered so far, per secret id (successful or not). */
  reads(id?: string): number;
  /** Makes the next `count` calls (Infinity: all, until `recover()`) fail with a 500 `InternalServiceError`. */
  failNext(count?: number): void;
  recover(): void;
  close(): Promise<void>;
}

export async function startSecretsManagerServer(
  secrets: Record<string, string> = {},
  port = 0,
): Promise<SecretsManagerServer> {
  const store = new Map(Object.entries(secrets));
  const readCounts = new Map<string, number>();
  let failures = 0;
  const credentials = {
    accessKeyId: `LOCAL${randomBytes(10).toString("hex").toUpperCase()}`,
    secretAccessKey: randomBytes(20).toString("hex"),
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const reply = (status: number, body: unknown) => {
        res.writeHead(status, { "Content-Type": "application/x-amz-json-1.1" });
        res.end(JSON.stringify(body));
      };
      const target = String(req.headers["x-amz-target"] ?? "");
      if (req.method !== "POST" || target !== "secretsmanager.GetSecretValue") {
        return reply(400, { __type: "UnknownOperationException", message: `unsupported operation ${target}` });
      }
      if (signedKeyId(req.headers.authorization) !== credentials.accessKeyId) {
        const message = "The security token included in the request is invalid.";
        return reply(400, { __type: "UnrecognizedClientException", message });
      }
      let input: { SecretId?: string } = {};
      try {
        input = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {
        return reply(400, { __type: "InvalidRequestException", message: "body is not JSON" });
      }
      const id = input.SecretId ?? "";
      readCounts.set(id, (readCounts.get(id) ?? 0) + 1);
      if (failures > 0) {
        failures -= 1;
        return reply(500, { __type: "InternalServiceError", message: "injected failure" });
      }
      const value = store.get(id);
      if (value === undefined)
        return reply(400, {
          __type: "ResourceNotFoundException",
          message: "Secrets Manager can't find the specified secret.",
        });
      const name = id.startsWith("arn:") ? (id.split(":")[6] ?? id) : id;
      reply(200, {
        ARN: id.startsWith("arn:") ? id : `arn:aws:secretsmanager:eu-west-1:000000000000:secret:${id}-AbCdEf`,
        Name: name,
        SecretString: value,
        VersionId: `v${readCounts.get(id)}`,
        VersionStages: ["AWSCURRENT"],
        CreatedDate: Date.now() / 1000,
      });
    });
  });
  server.keepAliveTimeout = 1000;
  // A taken port rejects here (EADDRINUSE) instead of surfacing later as an unhandled "error" event.
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${address.port}`,
    credentials,
    setSecret: (id, value) => void store.set(id, value),
    deleteSecret: (id) => void store.delete(id),
    reads: (id) => (id === undefined ? [...readCounts.values()].reduce((a, b) => a + b, 0) : (readCounts.get(id) ?? 0)),
    failNext: (count = 1) => void (failures = count),
    recover: () => void (failures = 0),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The access key id of a SigV4 `Authorization` header (`AWS4-HMAC-SHA256 Credential=AKID/DATE/...`). */
function signedKeyId(authorization: string | undefined): string | undefined {
  return /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\//.exec(authorization ?? "")?.[1];
}
