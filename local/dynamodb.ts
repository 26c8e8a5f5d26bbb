/**
 * A local DynamoDB for the optional ledger: `dynalite` (DynamoDB on LevelDB, in memory by default) on
 * 127.0.0.1, for tests and `npm start`. The real `@aws-sdk/client-dynamodb` talks to it over HTTP.
 *
 * dynalite implements the item, query and batch operations the ledger uses, and conditional writes
 * (`ConditionalCheckFailedException`), but not `UpdateTimeToLive` (it answers `UnknownOperationException`)
 * nor transactions: TTL is declared on AWS only (serverless.yml), and nothing expires locally.
 */
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  UpdateTimeToLiveCommand,
} from "@aws-sdk/client-dynamodb";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createRequire } from "node:module";
import { LEDGER_TABLE_SCHEMA } from "../lib/ledger.ts";
import { LOCAL } from "../cli/local-defaults.ts";

export interface LocalDynamoOptions {
  /** 0 = a free port (tests); `npm start` uses `LOCAL.dynamoDbPort` (4582). */
  port?: number;
  /** Loopback only. */
  host?: string;
  /** A directory to keep the data in (LevelDB); in memory when unset. */
  path?: string;
}

export interface LocalDynamo {
  /** e.g. `http://127.0.0.1:4582`: give it to `DynamoDBClient({ endpoint })` or `AWS_ENDPOINT_URL_DYNAMODB`. */
  endpoint: string;
  port: number;
  /** A client for this endpoint with placeholder credentials (dynalite checks none). */
  client(): DynamoDBClient;
  close(): Promise<void>;
}

type DynaliteFactory = (options: {
  createTableMs?: number;
  deleteTableMs?: number;
  updateTableMs?: number;
  path?: string;
}) => Server;

const LOOPBACK = /^(127(?:\.\d{1,3}){3}|::1|localhost)$/;

/** Starts dynalite on 127.0.0.1 with tables that are ACTIVE at once (`createTableMs: 0`). */
export async function startLocalDynamo(options: LocalDynamoOptions = {}): Promise<LocalDynamo> {
  const host = options.host ?? LOCAL.host;
  const port = options.port ?? 0;
  if (!LOOPBACK.test(host))
    throw new Error(`local DynamoDB host must be a loopback address (127.0.0.1), got ${JSON.stringify(host)}`);
  // dynalite is CommonJS without type declarations; a devDependency, never in the Lambda bundle.
  const dynalite = createRequire(import.meta.url)("dynalite") as DynaliteFactory;
  const server = dynalite({
    createTableMs: 0,
    deleteTableMs: 0,
    updateTableMs: 0,
    ...(options.path ? { path: options.path } : {}),
  });
  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) =>
      reject(
        error.code === "EADDRINUSE"
          ? new Error(`local DynamoDB: port ${port} on ${host} is already in use`, { cause: error })
          : error,
      );
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      resolve();
    });
  });
  const actualPort = (server.address() as AddressInfo).port;
  const endpoint = `http://${host.includes(":") ? `[${host}]` : host}:${actualPort}`;
  return {
    endpoint,
    port: actualPort,
    client: () => localDynamoClient(endpoint),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error?: Error) => (error ? reject(error) : resolve()));
        // Keep-alive sockets of clients that were not destroyed would hold the server open.
        server.closeAllConnections();
      }),
  };
}

/** A DynamoDB client for a local endpoint: placeholder credentials, the local region, short timeouts. */
export function localDynamoClient(endpoint: string): DynamoDBClient {
  return new DynamoDBClient({
    endpoint,
    region: LOCAL.region,
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
    requestHandler: { connectionTimeout: 2000, requestTimeout: 5000 },
  });
}

export interface CreatedTable {
  /** False when the table already existed (the call is idempotent). */
  created: boolean;
  /** `unsupported` on dynalite (no UpdateTimeToLive): items carry `expires_at` but nothing deletes them. */
  ttl: "enabled" | "unsupported";
}

/**
 * Creates the ledger table with the key schema, billing and TTL that serverless.yml declares
 * (pk/sk strings, on-demand, SSE, TTL on `expires_at`). Idempotent: an existing table is kept.
 */
export async function createLedgerTable(client: DynamoDBClient, tableName: string): Promise<CreatedTable> {
  const { partitionKey, sortKey, ttlAttribute, indexes } = LEDGER_TABLE_SCHEMA;
  let created = true;
  try {
    await client.send(
      new CreateTableCommand({
        TableName: tableName,
        AttributeDefinitions: [
          { AttributeName: partitionKey, AttributeType: "S" },
          { AttributeName: sortKey, AttributeType: "S" },
          ...Object.values(indexes).map((index) => ({
            AttributeName: index.partitionKey,
            AttributeType: "S" as const,
          })),
        ],
        KeySchema: [
          { AttributeName: partitionKey, KeyType: "HASH" },
          { AttributeName: sortKey, KeyType: "RANGE" },
        ],
        GlobalSecondaryIndexes: Object.values(indexes).map((index) => ({
          IndexName: index.name,
          KeySchema: [{ AttributeName: index.partitionKey, KeyType: "HASH" as const }],
          Projection: { ProjectionType: "KEYS_ONLY" as const },
        })),
        BillingMode: "PAY_PER_REQUEST",
        SSESpecification: { Enabled: true },
      }),
    );
  } catch (error) {
    if (!(error instanceof Error && error.name === "ResourceInUseException")) throw error;
    created = false;
  }
  // dynalite with createTableMs: 0 turns ACTIVE on its next tick; on AWS this takes a few seconds.
  const started = Date.now();
  for (let wait = 10; ; wait = Math.min(1000, wait * 2)) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    if (Table?.TableStatus === "ACTIVE") break;
    if (Date.now() - started > 120_000)
      throw new Error(`table ${tableName} is still ${Table?.TableStatus ?? "unknown"} after 120 s`);
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
  try {
    await client.send(
      new UpdateTimeToLiveCommand({
        TableName: tableName,
        TimeToLiveSpecification: { AttributeName: ttlAttribute, Enabled: true },
      }),
    );
    return { created, ttl: "enabled" };
  } catch (error) {
    const name = error instanceof Error ? error.name : "";
    if (name === "UnknownOperationException") return { created, ttl: "unsupported" };
    // AWS refuses to enable TTL twice ("TimeToLive is already enabled"): that is the state we want.
    if (name === "ValidationException" && /already enabled/i.test((error as Error).message))
      return { created, ttl: "enabled" };
    throw error;
  }
}
