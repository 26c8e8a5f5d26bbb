/**
 * dynalite in a process of its own, with the ledger's table, for the redrive comparison: like
 * DynamoDB itself, the ledger's server does not share the CLI's CPU. Reports its endpoint over IPC and
 * exits when the parent disconnects.
 */
import { fileURLToPath } from "node:url";
import { createLedgerTable, startLocalDynamo } from "../local/dynamodb.ts";
import { type ChildServer, serveInChild, startChildServer } from "./child-server.ts";

export interface DynamoServer extends ChildServer {
  tableName: string;
}

export async function startDynamoServer(tableName = "bench-ledger"): Promise<DynamoServer> {
  const server = await startChildServer(fileURLToPath(import.meta.url), ["--serve", tableName], "DynamoDB");
  return { ...server, tableName };
}

if (process.argv.includes("--serve") && process.send) {
  const dynamo = await startLocalDynamo({ port: 0 });
  const client = dynamo.client();
  await createLedgerTable(client, process.argv[process.argv.indexOf("--serve") + 1]!);
  client.destroy();
  serveInChild(dynamo.endpoint, () => dynamo.close());
}
