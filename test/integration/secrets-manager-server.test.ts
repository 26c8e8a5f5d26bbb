import { afterAll, describe, expect, it } from "vitest";
import { startSecretsManagerServer } from "../../local/secrets-manager-server.ts";

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
});
