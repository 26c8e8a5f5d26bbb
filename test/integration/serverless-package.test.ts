/**
 * `serverless package` (osls, offline) and the CloudFormation it generates: the deployment shape and
 * the security rules of docs/security.md, checked on the real template rather than on serverless.yml.
 *
 * Packages ONCE (beforeAll), into a temp dir, with serverless-esbuild's scratch folder in a temp dir
 * too, so it never collides with `npm run package` or `invoke local` running in the same tree.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { inflateRawSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadCleanupConfig } from "../../lib/cleanup-config.ts";
import { loadConfig } from "../../lib/config.ts";
import { LEDGER_TABLE_SCHEMA } from "../../lib/ledger.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const SERVERLESS_BIN = path.join(ROOT, "node_modules", "osls", "bin", "serverless.js");
/** 6 × timeout + window: https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html */
const VISIBILITY_FACTOR = 6;
/** The token secret's ARN as serverless.yml writes it: Fn::Sub fills in the partition, region and account. */
const TOKEN_SECRET_ARN_SUB =
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a CloudFormation Fn::Sub string, not a template literal.
  "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:scm-withdraw/token-??????";
/** A bundle with the AWS SDK inlined is about 540 KB; without it about 60 KB. */
const MAX_BUNDLE_BYTES = 256 * 1024;

// biome-ignore lint/suspicious/noExplicitAny: CloudFormation JSON, read by path; each test checks the shape it reads.
type Json = Record<string, any>;
interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
}

let workDir: string;
let template: Json;
let zip: Map<string, Buffer>;

beforeAll(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), "scm-withdraw-package-"));
  const packageDir = path.join(workDir, "package");
  await promisify(execFile)(process.execPath, [SERVERLESS_BIN, "package", "--stage", "dev", "--package", packageDir], {
    cwd: ROOT,
    timeout: 120_000,
    env: {
      ...process.env,
      SLS_TELEMETRY_DISABLED: "1",
      AWS_ACCESS_KEY_ID: "test",
      AWS_SECRET_ACCESS_KEY: "test",
      AWS_REGION: "eu-west-1",
      // serverless.yml custom.esbuild.outputWorkFolder (relative to the service dir).
      SLS_ESBUILD_WORK_FOLDER: path.relative(ROOT, path.join(workDir, "esbuild")),
    },
  });
  template = JSON.parse(await readFile(path.join(packageDir, "cloudformation-template-update-stack.json"), "utf8"));
  zip = readZip(await readFile(path.join(packageDir, "scm-withdraw.zip")));
}, 150_000);

afterAll(async () => {
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

const resources = (): Json => template.Resources;
const ofType = (type: string): [string, Json][] => Object.entries(resources()).filter(([, r]) => r.Type === type);
const only = (type: string): Json => {
  const found = ofType(type);
  expect(
    found.map(([name]) => name),
    type,
  ).toHaveLength(1);
  return found[0]![1].Properties;
};
const fn = () => resources().WithdrawLambdaFunction.Properties as Json;
const esm = () => only("AWS::Lambda::EventSourceMapping");
const mainQueue = () => resources().WithdrawalsQueue.Properties as Json;
const dlq = () => resources().WithdrawalsDlq.Properties as Json;
const getAtt = (logicalId: string, attribute: string) => ({ "Fn::GetAtt": [logicalId, attribute] });
const asArray = <T>(value: T | T[]): T[] => (Array.isArray(value) ? value : [value]);

function statements(): Statement[] {
  return (resources().IamRoleLambdaExecution.Properties.Policies as Json[]).flatMap(
    (p) => p.PolicyDocument.Statement as Statement[],
  );
}
const statementsWith = (action: string) => statements().filter((s) => asArray(s.Action).includes(action));
/** Resources of a statement as a flat list, each one a string or an intrinsic function. */
const resourcesOf = (s: Statement): unknown[] => asArray(s.Resource as unknown);
const isLogsStatement = (s: Statement) => asArray(s.Action).every((a) => a.startsWith("logs:"));

describe("serverless package", () => {
  it("packages the withdraw function: nodejs24.x arm64 running handlers/withdraw.handler", () => {
    expect(fn()).toMatchObject({
      Runtime: "nodejs24.x",
      Architectures: ["arm64"],
      Handler: "handlers/withdraw.handler",
      MemorySize: 512,
      Timeout: 60,
    });
  });

  it("maps the withdrawals queue to the function with partial batch responses", () => {
    expect(esm()).toMatchObject({
      EventSourceArn: getAtt("WithdrawalsQueue", "Arn"),
      FunctionResponseTypes: ["ReportBatchItemFailures"],
      BatchSize: 10,
      MaximumBatchingWindowInSeconds: 5,
      ScalingConfig: { MaximumConcurrency: 5 },
      Enabled: true,
    });
    // AWS limits: batches over 10 need a batching window; maximum concurrency is 2 to 1000.
    expect(esm().BatchSize).toBeLessThanOrEqual(10);
    expect(esm().ScalingConfig.MaximumConcurrency).toBeGreaterThanOrEqual(2);
  });

  it("sets the queue visibility timeout to 6 × the function timeout + the batching window", () => {
    const expected = VISIBILITY_FACTOR * fn().Timeout + esm().MaximumBatchingWindowInSeconds;
    expect(mainQueue().VisibilityTimeout).toBe(expected);
  });

  it("redrives to the DLQ only after more receives than the worker's MAX_RECEIVE_COUNT", () => {
    const workerLimit = Number(fn().Environment.Variables.MAX_RECEIVE_COUNT);
    expect(Number.isInteger(workerLimit) && workerLimit > 0).toBe(true);
    expect(mainQueue().RedrivePolicy.deadLetterTargetArn).toEqual(getAtt("WithdrawalsDlq", "Arn"));
    expect(mainQueue().RedrivePolicy.maxReceiveCount).toBeGreaterThan(workerLimit);
  });

  it("encrypts both queues and keeps dead letters for 14 days, the SQS maximum", () => {
    expect(
      ofType("AWS::SQS::Queue")
        .map(([name]) => name)
        .sort(),
    ).toEqual(["WithdrawalsDlq", "WithdrawalsQueue"]);
    expect(mainQueue().SqsManagedSseEnabled).toBe(true);
    expect(dlq().SqsManagedSseEnabled).toBe(true);
    expect(dlq().MessageRetentionPeriod).toBe(1_209_600);
  });

  it("alarms as soon as the DLQ holds any message, notifying the optional SNS topic", () => {
    const alarm = resources().WithdrawalsDlqAlarm.Properties as Json;
    expect(alarm).toMatchObject({
      Namespace: "AWS/SQS",
      MetricName: "ApproximateNumberOfMessagesVisible",
      Dimensions: [{ Name: "QueueName", Value: getAtt("WithdrawalsDlq", "QueueName") }],
      EvaluationPeriods: 1,
    });
    const anyMessage =
      (alarm.ComparisonOperator === "GreaterThanOrEqualToThreshold" && alarm.Threshold === 1) ||
      (alarm.ComparisonOperator === "GreaterThanThreshold" && alarm.Threshold === 0);
    expect(anyMessage, `${alarm.ComparisonOperator} ${alarm.Threshold}`).toBe(true);
    // Actions only when alarmTopicArn is set; by default (empty) the condition is false.
    expect(alarm.AlarmActions).toEqual({ "Fn::If": ["HasAlarmTopic", [""], { Ref: "AWS::NoValue" }] });
    expect(template.Conditions.HasAlarmTopic).toEqual({ "Fn::Not": [{ "Fn::Equals": ["", ""] }] });
  });

  it("refuses to package a parameter the handlers would refuse at cold start, naming each one", async () => {
    const run = promisify(execFile)(
      process.execPath,
      [
        SERVERLESS_BIN,
        "package",
        "--stage",
        "dev",
        "--package",
        path.join(workDir, "refused"),
        "--param=logLevel=LOUD",
        "--param=cleanupMaxJobs=0",
      ],
      {
        cwd: ROOT,
        timeout: 60_000,
        env: {
          ...process.env,
          SLS_TELEMETRY_DISABLED: "1",
          AWS_ACCESS_KEY_ID: "test",
          AWS_SECRET_ACCESS_KEY: "test",
          AWS_REGION: "eu-west-1",
        },
      },
    );
    const failure = (await run.then(
      () => undefined,
      (error: { stdout: string; stderr: string }) => error,
    )) as { stdout: string; stderr: string } | undefined;
    expect(failure, "serverless package succeeded").toBeDefined();
    const output = `${failure!.stdout}${failure!.stderr}`;
    expect(output).toContain('withdraw: LOG_LEVEL must be one of debug, info, warn, error (any case) (got "LOUD")');
    expect(output).toContain('cleanup: CLEANUP_MAX_JOBS must be an integer from 1 to 10000 (got "0")');
  });

  it("gives the function an environment that lib/config.ts accepts", () => {
    const vars = fn().Environment.Variables as Json;
    expect(vars.WITHDRAWAL_DLQ_URL).toEqual({ Ref: "WithdrawalsDlq" });
    expect(vars.NODE_OPTIONS).toContain("--enable-source-maps");
    const env = {
      ...vars,
      WITHDRAWAL_DLQ_URL: "https://sqs.eu-west-1.amazonaws.com/123456789012/scm-withdraw-dev-withdrawals-dlq",
    };
    expect(Object.values(env).every((v) => typeof v === "string")).toBe(true);
    const config = loadConfig(env as Record<string, string>);
    expect(config.scmEndpoint).toBe("https://scm.ap-southeast-1.myhuaweicloud.com");
    expect(config.maxReceiveCount).toBe(Number(vars.MAX_RECEIVE_COUNT));
  });

  describe("nothing deleted by accident", () => {
    it("keeps the DLQ and the ledger table when the stack is removed or they are replaced", () => {
      for (const name of ["WithdrawalsDlq", "LedgerTable"]) {
        expect(resources()[name], name).toMatchObject({ DeletionPolicy: "Retain", UpdateReplacePolicy: "Retain" });
      }
    });

    it("turns on point-in-time recovery for the ledger table", () => {
      expect(resources().LedgerTable.Properties.PointInTimeRecoverySpecification).toEqual({
        PointInTimeRecoveryEnabled: true,
      });
    });
  });

  describe("alarms", () => {
    const alarm = (name: string) => resources()[name].Properties as Json;
    const topicActions = { "Fn::If": ["HasAlarmTopic", [""], { Ref: "AWS::NoValue" }] };

    it("are the DLQ, queue age, worker errors and throttles, and failed or partial cleanup runs, each with what to do", () => {
      const names = ofType("AWS::CloudWatch::Alarm")
        .map(([name]) => name)
        .sort();
      expect(names).toEqual([
        "CleanupFailedAlarm",
        "CleanupPartialAlarm",
        "WithdrawErrorsAlarm",
        "WithdrawThrottlesAlarm",
        "WithdrawalsDlqAlarm",
        "WithdrawalsQueueAgeAlarm",
      ]);
      for (const name of names) {
        expect(alarm(name).AlarmActions, name).toEqual(topicActions);
        expect(alarm(name).OKActions, name).toEqual(topicActions);
        expect(alarm(name).TreatMissingData, name).toBe("notBreaching");
        expect(String(alarm(name).AlarmDescription).length, `${name} says what to do`).toBeGreaterThan(100);
      }
    });

    it("fires on a withdrawals-queue message older than 3 retries and well before the redrive policy would move it", () => {
      const age = alarm("WithdrawalsQueueAgeAlarm");
      expect(age).toMatchObject({
        Namespace: "AWS/SQS",
        MetricName: "ApproximateAgeOfOldestMessage",
        Dimensions: [{ Name: "QueueName", Value: getAtt("WithdrawalsQueue", "QueueName") }],
        Statistic: "Maximum",
        ComparisonOperator: "GreaterThanOrEqualToThreshold",
      });
      const visibility = mainQueue().VisibilityTimeout as number;
      expect(age.Threshold).toBeGreaterThan(3 * visibility);
      // It fires (threshold + its evaluation window) in less than half the time after which the
      // redrive policy would move a stuck message to the DLQ (maxReceiveCount × visibility timeout).
      const redriveSeconds = (mainQueue().RedrivePolicy.maxReceiveCount as number) * visibility;
      expect(age.Threshold + age.Period * age.EvaluationPeriods).toBeLessThan(redriveSeconds / 2);
    });

    it("fires on any error or throttle of the worker, and any error of the sweep", () => {
      for (const [name, metric, fnName] of [
        ["WithdrawErrorsAlarm", "Errors", "WithdrawLambdaFunction"],
        ["WithdrawThrottlesAlarm", "Throttles", "WithdrawLambdaFunction"],
        ["CleanupFailedAlarm", "Errors", "CleanupLambdaFunction"],
      ] as const) {
        expect(alarm(name), name).toMatchObject({
          Namespace: "AWS/Lambda",
          MetricName: metric,
          Dimensions: [{ Name: "FunctionName", Value: { Ref: fnName } }],
          Statistic: "Sum",
          ComparisonOperator: "GreaterThanOrEqualToThreshold",
          Threshold: 1,
        });
      }
    });

    it("counts partial sweeps from the cleanup_finished line that lib/cleanup.ts logs", async () => {
      const [[, filter]] = ofType("AWS::Logs::MetricFilter") as [[string, Json]];
      const props = filter.Properties as Json;
      expect(props.LogGroupName).toEqual({ Ref: "CleanupLogGroup" });
      expect(props.FilterPattern).toBe('{ $.event = "cleanup_finished" && $.warnings > 0 }');
      const [transform] = props.MetricTransformations as Json[];
      expect(alarm("CleanupPartialAlarm")).toMatchObject({
        Namespace: transform!.MetricNamespace,
        MetricName: transform!.MetricName,
        Threshold: 1,
      });
      // The filter's field names are the ones the sweep writes.
      const source = await readFile(path.join(ROOT, "lib", "cleanup.ts"), "utf8");
      expect(source).toMatch(/"cleanup_finished", \{[^}]*\bwarnings: /);
    });
  });

  describe("IAM (least privilege)", () => {
    it("grants no wildcard action and no '*' resource outside the Framework's log statements", () => {
      for (const s of statements()) {
        expect(s.Effect).toBe("Allow");
        for (const action of asArray(s.Action)) {
          expect(action, JSON.stringify(s)).not.toMatch(/\*/);
        }
        if (isLogsStatement(s)) continue;
        for (const resource of resourcesOf(s)) {
          expect(JSON.stringify(resource), JSON.stringify(s)).not.toContain("*");
        }
      }
    });

    it("reads only the one token secret", () => {
      const granted = statementsWith("secretsmanager:GetSecretValue");
      expect(granted).toHaveLength(1);
      expect(asArray(granted[0]!.Action)).toEqual(["secretsmanager:GetSecretValue"]);
      const [resource] = resourcesOf(granted[0]!);
      expect(resourcesOf(granted[0]!)).toHaveLength(1);
      // Secrets Manager appends "-" + 6 random characters to the name: ?????? matches exactly those.
      expect(resource).toEqual({ "Fn::Sub": TOKEN_SECRET_ARN_SUB });
      expect(statements().filter((s) => asArray(s.Action).some((a) => a.startsWith("secretsmanager:")))).toHaveLength(
        1,
      );
    });

    it("sends only to the DLQ", () => {
      const granted = statementsWith("sqs:SendMessage");
      expect(granted.length).toBeGreaterThan(0);
      for (const s of granted) expect(resourcesOf(s)).toEqual([getAtt("WithdrawalsDlq", "Arn")]);
    });

    it("polls only the main queue", () => {
      for (const action of [
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ChangeMessageVisibility",
      ]) {
        const granted = statementsWith(action);
        expect(granted.length, action).toBeGreaterThan(0);
        for (const s of granted) expect(resourcesOf(s), action).toEqual([getAtt("WithdrawalsQueue", "Arn")]);
      }
    });

    it("allows no other SQS or Secrets Manager action", () => {
      const allowed = new Set([
        "secretsmanager:GetSecretValue",
        "sqs:SendMessage",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ChangeMessageVisibility",
        // The ledger; scoped to its table in "the ledger table" below.
        "dynamodb:UpdateItem",
      ]);
      const others = statements()
        .flatMap((s) => asArray(s.Action))
        .filter((a) => !a.startsWith("logs:") && !allowed.has(a));
      expect(others).toEqual([]);
    });
  });

  describe("the cleanup sweep", () => {
    const cleanup = () => resources().CleanupLambdaFunction.Properties as Json;
    const rule = () => only("AWS::Events::Rule");
    const cleanupStatements = (): Statement[] =>
      (resources().CleanupRole.Properties.Policies as Json[]).flatMap((p) => p.PolicyDocument.Statement as Statement[]);

    it("packages handlers/cleanup.handler on nodejs24.x arm64, not retried by Lambda", () => {
      expect(
        ofType("AWS::Lambda::Function")
          .map(([name]) => name)
          .sort(),
      ).toEqual(["CleanupLambdaFunction", "WithdrawLambdaFunction"]);
      expect(cleanup()).toMatchObject({
        Runtime: "nodejs24.x",
        Architectures: ["arm64"],
        Handler: "handlers/cleanup.handler",
        Timeout: 300,
      });
      expect(only("AWS::Lambda::EventInvokeConfig")).toMatchObject({
        FunctionName: { Ref: "CleanupLambdaFunction" },
        MaximumRetryAttempts: 0,
      });
    });

    it("runs on an EventBridge schedule that only EventBridge may invoke", () => {
      expect(rule()).toMatchObject({
        ScheduleExpression: "cron(0 6 * * ? *)",
        State: "ENABLED",
        Targets: [{ Arn: getAtt("CleanupLambdaFunction", "Arn") }],
      });
      const permission = ofType("AWS::Lambda::Permission")
        .map(([, r]) => r.Properties as Json)
        .find((p) => JSON.stringify(p.FunctionName).includes("CleanupLambdaFunction"));
      expect(permission).toMatchObject({
        Action: "lambda:InvokeFunction",
        Principal: "events.amazonaws.com",
        SourceArn: getAtt("CleanupEventsRuleSchedule1", "Arn"),
      });
    });

    it("is a dry run by default, so a deploy never withdraws anything by surprise", () => {
      const vars = cleanup().Environment.Variables as Json;
      expect(vars.CLEANUP_MODE).toBe("dry-run");
      expect(vars.WITHDRAWAL_QUEUE_URL).toEqual({ Ref: "WithdrawalsQueue" });
      const env = {
        ...vars,
        WITHDRAWAL_DLQ_URL: "https://sqs.eu-west-1.amazonaws.com/123456789012/scm-withdraw-dev-withdrawals-dlq",
        WITHDRAWAL_QUEUE_URL: "https://sqs.eu-west-1.amazonaws.com/123456789012/scm-withdraw-dev-withdrawals",
      };
      expect(Object.values(env).every((v) => typeof v === "string")).toBe(true);
      const config = loadCleanupConfig(env as Record<string, string>);
      expect(config).toMatchObject({
        mode: "dry-run",
        filters: { statuses: ["CHECKING", "CHECKING_ORG", "SUPPLEMENTCHECKING"], maxJobs: 100 },
      });
      // The same config with the mode flipped is accepted too (what --param="cleanupMode=enqueue" deploys).
      expect(loadCleanupConfig({ ...(env as Record<string, string>), CLEANUP_MODE: "enqueue" }).mode).toBe("enqueue");
    });

    it("has its own role: its log group, the one token secret, and SendMessage on the withdrawals queue only", () => {
      expect(cleanup().Role).toEqual(getAtt("CleanupRole", "Arn"));
      const role = resources().CleanupRole.Properties as Json;
      expect(role.AssumeRolePolicyDocument.Statement).toEqual([
        { Effect: "Allow", Principal: { Service: "lambda.amazonaws.com" }, Action: "sts:AssumeRole" },
      ]);
      expect(role.ManagedPolicyArns).toBeUndefined();
      expect(
        cleanupStatements().map((s) => ({ Effect: s.Effect, Action: asArray(s.Action).sort(), Resource: s.Resource })),
      ).toEqual([
        {
          Effect: "Allow",
          Action: ["logs:CreateLogStream", "logs:PutLogEvents"],
          Resource: getAtt("CleanupLogGroup", "Arn"),
        },
        {
          Effect: "Allow",
          Action: ["secretsmanager:GetSecretValue"],
          Resource: { "Fn::Sub": TOKEN_SECRET_ARN_SUB },
        },
        { Effect: "Allow", Action: ["sqs:SendMessage"], Resource: getAtt("WithdrawalsQueue", "Arn") },
        {
          Effect: "Allow",
          Action: ["dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:DeleteItem", "dynamodb:UpdateItem"],
          Resource: getAtt("LedgerTable", "Arn"),
        },
      ]);
    });

    it("leaves the worker's role unable to send to the withdrawals queue", () => {
      for (const s of statementsWith("sqs:SendMessage"))
        expect(resourcesOf(s)).not.toContainEqual(getAtt("WithdrawalsQueue", "Arn"));
    });
  });

  describe("the ledger table", () => {
    const table = () => resources().LedgerTable as Json;
    const cleanupStatements = (): Statement[] =>
      (resources().CleanupRole.Properties.Policies as Json[]).flatMap((p) => p.PolicyDocument.Statement as Statement[]);
    const dynamoActions = (list: Statement[]) =>
      list.flatMap((s) => asArray(s.Action)).filter((a) => a.startsWith("dynamodb:"));

    it("is one on-demand DynamoDB table, keyed pk (HASH) + sk (RANGE) strings, as lib/ledger.ts expects", () => {
      expect(ofType("AWS::DynamoDB::Table").map(([name]) => name)).toEqual(["LedgerTable"]);
      const props = table().Properties as Json;
      expect(props.TableName).toBe("scm-withdraw-dev-ledger");
      expect(props.BillingMode).toBe("PAY_PER_REQUEST");
      expect(props.ProvisionedThroughput).toBeUndefined();
      expect(props.KeySchema).toEqual([
        { AttributeName: LEDGER_TABLE_SCHEMA.partitionKey, KeyType: "HASH" },
        { AttributeName: LEDGER_TABLE_SCHEMA.sortKey, KeyType: "RANGE" },
      ]);
      expect(props.AttributeDefinitions).toEqual([
        { AttributeName: "pk", AttributeType: "S" },
        { AttributeName: "sk", AttributeType: "S" },
        { AttributeName: "certificate_id", AttributeType: "S" },
        { AttributeName: "request_id", AttributeType: "S" },
      ]);
      // A batch's status and its jobs are each one Query on the table; `job <id>` one Query per index.
      expect(props.GlobalSecondaryIndexes).toEqual(
        Object.values(LEDGER_TABLE_SCHEMA.indexes).map((index) => ({
          IndexName: index.name,
          KeySchema: [{ AttributeName: index.partitionKey, KeyType: "HASH" }],
          Projection: { ProjectionType: "KEYS_ONLY" },
        })),
      );
      expect(props.LocalSecondaryIndexes).toBeUndefined();
    });

    it("is encrypted at rest and expires items through TTL on expires_at", () => {
      const props = table().Properties as Json;
      expect(props.SSESpecification).toEqual({ SSEEnabled: true });
      expect(props.TimeToLiveSpecification).toEqual({ AttributeName: LEDGER_TABLE_SCHEMA.ttlAttribute, Enabled: true });
    });

    it("is given to both functions as LEDGER_TABLE, and the worker's configuration accepts it", () => {
      const name = (table().Properties as Json).TableName;
      expect(fn().Environment.Variables.LEDGER_TABLE).toBe(name);
      expect((resources().CleanupLambdaFunction.Properties as Json).Environment.Variables.LEDGER_TABLE).toBe(name);
      const vars = {
        ...(fn().Environment.Variables as Json),
        WITHDRAWAL_DLQ_URL: "https://sqs.eu-west-1.amazonaws.com/123456789012/scm-withdraw-dev-withdrawals-dlq",
      };
      expect(loadConfig(vars as Record<string, string>).ledgerTable).toBe(name);
      expect(template.Outputs.LedgerTableName.Value).toEqual({ Ref: "LedgerTable" });
    });

    it("lets the worker do UpdateItem on the table only, nothing else in DynamoDB", () => {
      const granted = statements().filter((s) => asArray(s.Action).some((a) => a.startsWith("dynamodb:")));
      expect(granted).toHaveLength(1);
      expect(asArray(granted[0]!.Action)).toEqual(["dynamodb:UpdateItem"]);
      expect(resourcesOf(granted[0]!)).toEqual([getAtt("LedgerTable", "Arn")]);
      expect(dynamoActions(statements())).toEqual(["dynamodb:UpdateItem"]);
    });

    it("lets the sweep record queued jobs (batch read, batch write, update, delete) on the table only", () => {
      const granted = cleanupStatements().filter((s) => asArray(s.Action).some((a) => a.startsWith("dynamodb:")));
      expect(granted).toHaveLength(1);
      expect(resourcesOf(granted[0]!)).toEqual([getAtt("LedgerTable", "Arn")]);
      expect(dynamoActions(cleanupStatements()).sort()).toEqual([
        "dynamodb:BatchGetItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:DeleteItem",
        "dynamodb:UpdateItem",
      ]);
      // Neither role may read a batch back or scan: that is the operators' job (batch status/report).
      for (const action of ["dynamodb:Query", "dynamodb:Scan", "dynamodb:GetItem", "dynamodb:*"]) {
        expect(dynamoActions([...statements(), ...cleanupStatements()])).not.toContain(action);
      }
    });
  });

  describe("the deployment zip", () => {
    it("holds only the ESM bundle and its source map", () => {
      expect([...zip.keys()].sort()).toEqual([
        "handlers/cleanup.mjs",
        "handlers/cleanup.mjs.map",
        "handlers/withdraw.mjs",
        "handlers/withdraw.mjs.map",
      ]);
    });

    it("leaves the AWS SDK out of the bundle (the nodejs24.x runtime provides it)", () => {
      const bundle = zip.get("handlers/withdraw.mjs")!;
      expect(bundle.length).toBeLessThan(MAX_BUNDLE_BYTES);
      const code = bundle.toString("utf8");
      // The SDK is imported, not inlined: every "@aws-sdk/..." or "@smithy/..." literal is an import specifier.
      expect(code).toMatch(/(?:from\s*|import\s*\(\s*)"@aws-sdk\/client-sqs"/);
      // Only the Secrets Manager client is imported at module level (it is needed for the first batch);
      // SQS (dead letters) and DynamoDB (the optional ledger) are dynamic imports, so a cold start does
      // not load them. A static import anywhere in the bundle would be hoisted and load at start.
      const staticImports = [...code.matchAll(/from\s*"(@aws-sdk\/[^"]+)"/g)].map((m) => m[1]);
      expect([...new Set(staticImports)]).toEqual(["@aws-sdk/client-secrets-manager"]);
      const literals = code.match(/"@(?:aws-sdk|smithy)\/[^"]*"/g) ?? [];
      const imports = code.match(/(?:from\s*|import\s*\(\s*)"@(?:aws-sdk|smithy)\/[^"]*"/g) ?? [];
      expect(literals.length).toBe(imports.length);
    });

    it.each(["withdraw", "cleanup"])(
      "signs AK/SK with its own signer: Huawei's SDK (a devDependency, the tests' oracle) is not in the %s bundle",
      (name) => {
        const sources = JSON.parse(zip.get(`handlers/${name}.mjs.map`)!.toString("utf8")).sources as string[];
        expect(sources.some((s) => s.endsWith("lib/aksk-signer.ts"))).toBe(true);
        expect(sources.filter((s) => /@huaweicloud|node_modules\/(moment|lodash)\//.test(s))).toEqual([]);
      },
    );

    it("defines require for CommonJS dependencies and links its source map", () => {
      const code = zip.get("handlers/withdraw.mjs")!.toString("utf8");
      expect(
        code.startsWith(
          'import { createRequire as __scmCreateRequire } from "node:module"; const require = __scmCreateRequire(import.meta.url);',
        ),
      ).toBe(true);
      expect(code.trimEnd().endsWith("//# sourceMappingURL=withdraw.mjs.map")).toBe(true);
      expect(
        JSON.parse(zip.get("handlers/withdraw.mjs.map")!.toString("utf8")).sources.some((s: string) =>
          s.endsWith("handlers/withdraw.ts"),
        ),
      ).toBe(true);
    });
  });
});

/** A minimal ZIP reader (stored and deflated entries): enough for the Framework's artifact. */
function readZip(buffer: Buffer): Map<string, Buffer> {
  const EOCD = 0x06054b50;
  let eocd = buffer.length - 22;
  while (eocd >= 0 && buffer.readUInt32LE(eocd) !== EOCD) eocd--;
  if (eocd < 0) throw new Error("not a zip file");
  const count = buffer.readUInt16LE(eocd + 10);
  let offset = buffer.readUInt32LE(eocd + 16);
  const files = new Map<string, Buffer>();
  for (let i = 0; i < count; i++) {
    if (buffer.readUInt32LE(offset) !== 0x02014b50) throw new Error("bad central directory");
    const method = buffer.readUInt16LE(offset + 10);
    const compressedSize = buffer.readUInt32LE(offset + 20);
    const nameLength = buffer.readUInt16LE(offset + 28);
    const extraLength = buffer.readUInt16LE(offset + 30);
    const commentLength = buffer.readUInt16LE(offset + 32);
    const localHeader = buffer.readUInt32LE(offset + 42);
    const name = buffer.toString("utf8", offset + 46, offset + 46 + nameLength);
    const dataStart = localHeader + 30 + buffer.readUInt16LE(localHeader + 26) + buffer.readUInt16LE(localHeader + 28);
    const data = buffer.subarray(dataStart, dataStart + compressedSize);
    if (!name.endsWith("/")) files.set(name, method === 0 ? data : inflateRawSync(data));
    offset += 46 + nameLength + extraLength + commentLength;
  }
  return files;
}
