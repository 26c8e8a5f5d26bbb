/**
 * Baseline (a) for `npm run bench`: the hand-written handler that makes the same calls one record at
 * a time. It uses the project's own SCM client (keep-alive) and token provider, so the only difference
 * from `handlers/withdraw.ts` is the `for ... await` loop over the records.
 */
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import type { SQSBatchResponse, SQSEvent } from "aws-lambda";
import { parseWithdrawalBody } from "../lib/message.ts";
import { createScmClient } from "../lib/scm-client.ts";
import { createTokenProvider, secretsManagerReader } from "../lib/token-provider.ts";

const env = process.env;
const scm = createScmClient({ endpoint: env.SCM_ENDPOINT ?? "", timeoutMs: Number(env.SCM_TIMEOUT_MS || 10_000) });
const tokens = createTokenProvider({
  readSecret: secretsManagerReader(new SecretsManagerClient({}), env.SCM_TOKEN_SECRET_ID ?? ""),
  ttlMs: 300_000,
});

export const handler = async (event: SQSEvent): Promise<SQSBatchResponse> => {
  const failures: { itemIdentifier: string }[] = [];
  for (const record of event.Records) {
    const parsed = parseWithdrawalBody(record.body);
    if (!parsed.ok) continue;
    const result = await scm.cancelCert(parsed.request.certificate_id, await tokens.getToken());
    if (result.kind !== "answer" || result.status !== 200) failures.push({ itemIdentifier: record.messageId });
  }
  return { batchItemFailures: failures };
};
