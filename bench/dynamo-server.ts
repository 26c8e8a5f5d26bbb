/**
 * dynalite in a process of its own, with the ledger's table, for the redrive comparison: like
 * DynamoDB itself, the ledger's server does not share the CLI's CPU. Reports its port over IPC and
 * exits when the parent disconnects.
 */
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createLedgerTable, startLocalDynamo } from "../local/dynamodb.ts";
import { PROJECT_ROOT } from "../scripts/build.mjs";

export interface DynamoServer {
  endpoint: string;
  tableName: string;
  close(): Promise<void>;
}

export async function startDynamoServer(tableName = "bench-ledger"): Promise<DynamoServer> {
  const child = fork(fileURLToPath(import.meta.url), ["--serve", tableName], {
    cwd: PROJECT_ROOT,
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "ignore", "inherit", "ipc"],
  });
  const endpoint = await new Promise<string>((resolve, reject) => {
    child.once("message", (message: { endpoint: string }) => resolve(message.endpoint));
    child.once("exit", (code) => reject(new Error(`the DynamoDB server exited (${code}) before it listened`)));
  });
  child.removeAllListeners("exit");
  return {
    endpoint,
    tableName,
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
  const dynamo = await startLocalDynamo({ port: 0 });
  const client = dynamo.client();
  await createLedgerTable(client, process.argv[process.argv.indexOf("--serve") + 1]!);
  client.destroy();
  process.send({ endpoint: dynamo.endpoint });
  process.on("disconnect", () => void dynamo.close().then(() => process.exit(0)));
}
