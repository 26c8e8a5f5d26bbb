import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { afterAll, describe, expect, it } from "vitest";
import { startSecretsManagerServer } from "../../local/secrets-manager-server.ts";
import { TEST_TOKEN } from "../support/secrets.ts";

describe("the local Secrets Manager endpoint", () => {
  const servers: { close(): Promise<void> }[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close()));
  });

  it("rejects when its port is taken, instead of crashing the process later", async () => {
    const first = await startSecretsManagerServer({});
    servers.push(first);
    const port = Number(new URL(first.url).port);
    await expect(startSecretsManagerServer({}, port)).rejects.toThrow(/EADDRINUSE/);
  });

  it("serves the secret only to a client signing with its own random access key id", async () => {
    const server = await startSecretsManagerServer({ "scm-withdraw/token": TEST_TOKEN });
    servers.push(server);
    const other = await startSecretsManagerServer({});
    servers.push(other);
    expect(server.credentials.accessKeyId).not.toBe(other.credentials.accessKeyId);
    const read = async (credentials: { accessKeyId: string; secretAccessKey: string }) => {
      const client = new SecretsManagerClient({
        endpoint: server.url,
        region: "eu-west-1",
        credentials,
        maxAttempts: 1,
      });
      try {
        return await client.send(new GetSecretValueCommand({ SecretId: "scm-withdraw/token" }));
      } finally {
        client.destroy();
      }
    };
    // Any other local process: the usual placeholder credentials, or another server's pair.
    for (const credentials of [{ accessKeyId: "test", secretAccessKey: "test" }, other.credentials]) {
      await expect(read(credentials)).rejects.toMatchObject({ name: "UnrecognizedClientException" });
    }
    const unsigned = await fetch(server.url, {
      method: "POST",
      headers: { "X-Amz-Target": "secretsmanager.GetSecretValue", "Content-Type": "application/x-amz-json-1.1" },
      body: JSON.stringify({ SecretId: "scm-withdraw/token" }),
    });
    expect(unsigned.status).toBe(400);
    expect(await unsigned.text()).not.toContain(TEST_TOKEN.slice(0, 12));
    expect((await read(server.credentials)).SecretString).toBe(TEST_TOKEN);
  });
});
