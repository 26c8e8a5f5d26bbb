/**
 * Who is asking for withdrawals, for the audit trail (`requested_by` in every job a producer sends):
 * the caller's AWS identity when talking to AWS, the OS user for the local pipeline, the function's
 * own name inside Lambda (the scheduled sweep).
 */
import { hostname, userInfo } from "node:os";

type AwsCredentials = { accessKeyId: string; secretAccessKey: string };

/** The Lambda function this code runs in (`lambda:<name>`), or undefined outside Lambda. */
export function lambdaRequester(env: Record<string, string | undefined> = process.env): string | undefined {
  const name = env.AWS_LAMBDA_FUNCTION_NAME;
  return name ? `lambda:${name}` : undefined;
}

/** The OS user on this machine (`local:<user>@<host>`): the local pipeline has no AWS identity to ask. */
export function localRequester(): string {
  let user: string;
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (a container's arbitrary uid): the environment is the next best thing.
    user = process.env.USER ?? process.env.USERNAME ?? `uid-${process.getuid?.() ?? "unknown"}`;
  }
  return `local:${user}@${hostname()}`;
}

/**
 * The caller's AWS principal ARN (STS GetCallerIdentity, which needs no IAM permission). The STS SDK
 * is imported here, on first use, so commands that never send anything do not load it.
 */
export async function awsRequester(
  options: { region?: string | undefined; timeoutMs?: number; endpoint?: string; credentials?: AwsCredentials } = {},
): Promise<string> {
  const { STSClient, GetCallerIdentityCommand } = await import("@aws-sdk/client-sts");
  const sts = new STSClient({
    ...(options.region ? { region: options.region } : {}),
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    ...(options.credentials ? { credentials: options.credentials } : {}),
    requestHandler: { connectionTimeout: 3000, requestTimeout: 10_000 },
  });
  try {
    const identity = await sts.send(new GetCallerIdentityCommand({}), {
      abortSignal: AbortSignal.timeout(options.timeoutMs ?? 15_000),
    });
    if (!identity.Arn) throw new Error("STS GetCallerIdentity answered without an Arn");
    return identity.Arn;
  } finally {
    sts.destroy();
  }
}
