/**
 * Comparison 5: throttling. The SCM simulator enforces a gateway limit (20 calls per sliding second,
 * 429 `APIG.0308` above it, like Huawei's API gateway), 500 jobs are queued on fauxqs, and the event
 * source model (`event-source.ts`) feeds them in batches of 10 to `maximumConcurrency` containers
 * (child processes running the real handler bundle), as `serverless.yml` deploys it.
 *
 * Run twice, side by side: with `SCM_MAX_RPS` = limit / maximumConcurrency (the documented way to
 * set it: the account-wide rate is SCM_MAX_RPS × maximumConcurrency), and with the limiter off.
 */
import { GetQueueAttributesCommand } from "@aws-sdk/client-sqs";
import { buildWithdrawalBody } from "../lib/message.ts";
import { GATEWAY_HEADROOM } from "../lib/rate-limiter.ts";
import { createSender } from "../lib/producer.ts";
import type { Bundles } from "./bundles.ts";
import { startContainer, type Container } from "./containers.ts";
import { runEventSource } from "./event-source.ts";
import { fixed, type Section } from "./report.ts";
import { certificateIds, seedUnderReview, type BenchStack } from "./stack.ts";

export interface ThrottlingOptions {
  /** The simulator's gateway limit, calls per second. */
  limit: number;
  jobs: number;
  /** Containers = the event source's maximumConcurrency (serverless.yml: 5). */
  containers: number;
  latencyMs: number;
  /** The queue's visibility timeout in the bench, s (production: 365 s; shorter here so handed-back records return within the run). */
  visibilityTimeoutS: number;
  /** Give up on a scenario after this long. */
  timeoutMs: number;
}

export const THROTTLING_DEFAULTS: ThrottlingOptions = { limit: 20, jobs: 500, containers: 5, latencyMs: 50, visibilityTimeoutS: 5, timeoutMs: 60_000 };

interface Scenario {
  name: string;
  elapsedS: number;
  calls: number;
  throttled: number;
  withdrawn: number;
  doubleWithdrawals: number;
  deadLettered: number;
  handedBack: number;
  timedOut: boolean;
  acknowledged: number;
}

async function runScenario(stack: BenchStack, bundles: Bundles, options: ThrottlingOptions, name: string, maxRps: number | undefined): Promise<Scenario> {
  const sim = await stack.startSim({ latencyMs: options.latencyMs, rateLimitPerSecond: options.limit });
  const ids = certificateIds(`th${name}`, options.jobs);
  seedUnderReview(sim, ids);
  const queueUrl = await stack.createQueue(`throttle-${name}`, { VisibilityTimeout: String(options.visibilityTimeoutS) });
  const dlqUrl = await stack.createQueue(`throttle-${name}-dlq`);

  const sender = createSender<string>({ sqs: stack.sqs, queueUrl });
  for (const id of ids) await sender.push({ key: id, body: buildWithdrawalBody({ certificate_id: id, source: "bulk", batch_id: `throttle-${name}` }) });
  await sender.flush();

  const env = stack.handlerEnv(sim, { WITHDRAWAL_DLQ_URL: dlqUrl, ...(maxRps === undefined ? {} : { SCM_MAX_RPS: String(maxRps) }) });
  const containers: Container[] = [];
  try {
    for (let i = 0; i < options.containers; i++) containers.push(await startContainer(bundles, `throttling-${name}-${i + 1}`, bundles.withdraw.outfile, env));
    const result = await runEventSource({ sqs: stack.sqs, queueUrl, containers, expected: options.jobs, timeoutMs: options.timeoutMs });
    const cancels = sim.calls.filter((c) => c.kind === "cancel");
    const attributes = await stack.sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ["ApproximateNumberOfMessages"] }));
    return {
      name,
      elapsedS: result.elapsedMs / 1000,
      calls: cancels.length,
      throttled: cancels.filter((c) => c.status === 429).length,
      withdrawn: ids.filter((id) => sim.withdrawals(id) > 0).length,
      doubleWithdrawals: ids.filter((id) => sim.withdrawals(id) > 1).length,
      deadLettered: Number(attributes.Attributes?.ApproximateNumberOfMessages ?? 0),
      handedBack: result.handedBack,
      timedOut: result.timedOut,
      acknowledged: result.acknowledged,
    };
  } finally {
    await Promise.all(containers.map((c) => c.close()));
    await sim.close();
  }
}

export async function benchThrottling(stack: BenchStack, bundles: Bundles, options: ThrottlingOptions = THROTTLING_DEFAULTS): Promise<Section> {
  const perContainer = options.limit / options.containers;
  const on = await runScenario(stack, bundles, options, "on", perContainer);
  const off = await runScenario(stack, bundles, options, "off", undefined);
  const share = (s: Scenario) => (s.calls === 0 ? 0 : s.throttled / s.calls);
  const rate = (s: Scenario) => s.withdrawn / s.elapsedS;
  const pct = (x: number) => `${fixed(x * 100, 1)} %`;
  const describe = (s: Scenario) =>
    `${s.name === "on" ? `limiter on (SCM_MAX_RPS=${perContainer})` : "limiter off"}: ${s.calls} calls, ${s.throttled} answered 429, ${s.withdrawn} withdrawn, ${s.deadLettered} dead-lettered, ${s.handedBack} records handed back to the queue, ${fixed(s.elapsedS, 1)} s${s.timedOut ? ` (stopped at the ${options.timeoutMs / 1000} s cap with ${s.acknowledged}/${options.jobs} acknowledged)` : ""}${s.doubleWithdrawals > 0 ? `, ${s.doubleWithdrawals} withdrawn twice` : ""}.`;

  return {
    title: "5. Throttling",
    rows: [
      {
        comparison: "5",
        metric: "429s / all calls (limiter on vs off)",
        value: pct(share(on)),
        baseline: pct(share(off)),
        target: "≤ 5 %",
        pass: share(on) <= 0.05,
      },
      {
        comparison: "5",
        metric: `withdrawals/s (gateway limit ${options.limit}/s)`,
        value: `${fixed(rate(on), 1)}/s`,
        baseline: `${fixed(rate(off), 1)}/s`,
        ratio: `${fixed(rate(on) / options.limit, 2)}× limit`,
        target: `≥ 0.9× limit (${fixed(0.9 * options.limit, 0)}/s)`,
        pass: rate(on) >= 0.9 * options.limit && !on.timedOut,
      },
      {
        comparison: "5",
        metric: `jobs dead-lettered (of ${options.jobs})`,
        value: String(on.deadLettered),
        baseline: String(off.deadLettered),
      },
    ],
    notes: [
      `Simulator: ${options.latencyMs} ms per call, at most ${options.limit} SCM calls per sliding second (429 \`APIG.0308\` above, no \`Retry-After\`, as Huawei's gateway answers). ${options.jobs} jobs queued on fauxqs before the clock starts.`,
      `Event source model (\`bench/event-source.ts\`): ${options.containers} pollers, one per container (serverless.yml's \`maximumConcurrency: ${options.containers}\`), each receiving up to 10 messages with long polling, invoking its container (a child process running the real handler bundle, warm after its first batch) and deleting what the handler did not hand back. Handed-back records come back after the queue's visibility timeout, ${options.visibilityTimeoutS} s here (production: 365 s, so the limiter-off figures here are kinder than production would be); after \`MAX_RECEIVE_COUNT\` (5) receives the worker dead-letters them (\`retries_exhausted\`).`,
      `Limiter on: \`SCM_MAX_RPS=${perContainer}\` in each container, so the total is ${perContainer} × ${options.containers} = ${options.limit}/s, the gateway's limit (each container stays ${GATEWAY_HEADROOM * 100} % under it, \`GATEWAY_HEADROOM\` in lib/rate-limiter.ts). Every other setting at its default (3 attempts, 200 ms backoff base).`,
      "Withdrawals/s = certificates withdrawn / time from the first receive to the last acknowledgement. 429 share = 429 answers / all cancel-cert calls the simulator received.",
      describe(on),
      describe(off),
    ],
  };
}
