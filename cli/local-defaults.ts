/**
 * Where the local pipeline (`npm start`) listens, so every operator command finds it without flags.
 * All on 127.0.0.1; override with the flags of `npm start` and of `scm-withdraw`.
 */
export const LOCAL = {
  host: "127.0.0.1",
  /** The embedded SQS (fauxqs). 9324 is ElasticMQ's well-known port, so tools that expect a local SQS find it. */
  sqsPort: 9324,
  /** The SCM simulator (also serves the IAM token endpoint). */
  scmPort: 4580,
  /** The local Secrets Manager endpoint that serves the token to the real handler. */
  secretsManagerPort: 4581,
  /** The local DynamoDB (dynalite) for the optional ledger. */
  dynamoDbPort: 4582,
  region: "eu-west-1",
  queueName: "withdrawals",
  dlqName: "withdrawals-dlq",
  secretId: "scm-withdraw/local-token",
  /** The ledger's table on the local DynamoDB: the name serverless.yml gives it for the stage `local`. */
  ledgerTable: "scm-withdraw-local-ledger",
  /** The static token the local SCM simulator accepts (not a secret: it only opens the local simulator). */
  demoToken: "local-demo-token-0123456789abcdef0123456789abcdef",
  /** The demo AK/SK pair the local simulator accepts with `npm start -- --aksk` (not secret either). */
  demoAkSk: {
    access_key: "LOCALDEMOACCESSKEY01",
    secret_key: "local-demo-secret-key-0123456789abcdefghij",
    domain_id: "0970dd7a1300f5672ff2c003c60ae115",
  },
} as const;

export const localSqsEndpoint = (port: number = LOCAL.sqsPort) => `http://${LOCAL.host}:${port}`;
/** fauxqs builds queue URLs as http://sqs.REGION.localhost:PORT/000000000000/NAME. */
export const localQueueUrl = (name: string, port: number = LOCAL.sqsPort) =>
  `http://sqs.${LOCAL.region}.localhost:${port}/000000000000/${name}`;
/** The local DynamoDB (dynalite) of `npm start`: the value for AWS_ENDPOINT_URL_DYNAMODB. */
export const localDynamoEndpoint = (port: number = LOCAL.dynamoDbPort) => `http://${LOCAL.host}:${port}`;
