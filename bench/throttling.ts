/**
 * Comparison 5: throttling without knowing the limit. One SCM simulator enforces a gateway limit of L
 * calls per sliding second (429 `APIG.0308` above it, stating the limit in `error_msg` as Huawei's
 * gateway does); the client is not told L. 1, 2 and 5 containers withdraw from one shared backlog,
 * each with its own worker (`createWorker`, the real retry loop), its own SCM client and its own
 * limiter, sharing nothing, as Lambda containers do:
 * - adaptive: the limiter every container now builds (`createAdaptiveLimiter`, no `SCM_MAX_RPS`);
 * - static: today's fixed limiter at the documented setting, `SCM_MAX_RPS` = L / maximumConcurrency (5).
 * A container takes 10 jobs at a time (one SQS batch); jobs the worker hands back go to the end of the
 * backlog (the queue's redelivery, without the visibility timeout's wait). Both limiters run at the
 * same time, each against its own simulator.
 */
import { loadConfig } from "../lib/config.ts";
import { discardMetrics } from "../lib/metrics.ts";
import { silentLogger } from "../lib/logger.ts";
import { buildWithdrawalBody } from "../lib/message.ts";
import { createAdaptiveLimiter, createRateLimiter, GATEWAY_HEADROOM, type RateLimiter } from "../lib/rate-limiter.ts";
import { createScmClient } from "../lib/scm-client.ts";
import { createWorker, type WorkerConfig } from "../lib/worker.ts";
import { sqsRecord } from "../local/lambda-shapes.ts";
import type { ScmSimulator } from "../local/scm-simulator.ts";
import { fixed, type Row, type Section } from "./report.ts";
import { BENCH_TOKEN, certificateIds, seedUnderReview, type BenchStack } from "./stack.ts";

export interface ThrottlingOptions {
  /** The simulator's gateway limit L, calls per sliding second; the clients are not told. */
  limit: number;
  containers: readonly number[];
  latencyMs: number;
  /** How long each scenario runs, and the start-up left out of the steady-state figures. */
  durationMs: number;
  warmupMs: number;
  /** serverless.yml's maximumConcurrency: the static limiter's documented setting is L / this. */
  maximumConcurrency: number;
}

export const THROTTLING_DEFAULTS: ThrottlingOptions = {
  limit: 50,
  containers: [1, 2, 5],
  latencyMs: 50,
  durationMs: 8000,
  warmupMs: 2000,
  maximumConcurrency: 5,
};

/** The worker at every default setting, read by the one config schema (not a copy of its defaults). */
const WORKER_CONFIG: WorkerConfig = loadConfig({
  SCM_ENDPOINT: "http://127.0.0.1",
  SCM_TOKEN_SECRET_ID: "scm-withdraw/token",
  WITHDRAWAL_DLQ_URL: "http://127.0.0.1/000000000000/withdrawals-dlq",
});

interface Figures {
  /** Withdrawals per second and 429 share, in the steady window (after the warm-up) and over the whole run. */
  rate: number;
  share: number;
  wholeRate: number;
  wholeShare: number;
  calls: number;
  throttled: number;
  /** Each container's rate at the end, calls/s. */
  finalRates: number[];
}

/** A job for `id`, whose message id (`m-<id>`) says which certificate a batch item failure is about. */
function record(id: string) {
  const body = buildWithdrawalBody({ certificate_id: id, source: "bulk", batch_id: "throttling" });
  return sqsRecord(body, { messageId: `m-${id}` });
}

/** One container: its own SCM client, limiter and worker, taking 10 jobs at a time until `until`. */
async function runContainer(sim: ScmSimulator, backlog: string[], limiter: RateLimiter, until: number): Promise<void> {
  const scm = createScmClient({ endpoint: sim.url, timeoutMs: 10_000, maxSockets: 10 });
  const worker = createWorker({
    config: WORKER_CONFIG,
    scm,
    tokens: { getToken: async () => BENCH_TOKEN, refresh: async () => BENCH_TOKEN },
    sendDeadLetter: async () => {},
    logger: silentLogger,
    limiter,
    metrics: discardMetrics,
  });
  try {
    while (Date.now() < until && backlog.length > 0) {
      const ids = backlog.splice(0, 10);
      const remaining = until + 5000 - Date.now();
      const response = await worker.processBatch(
        { Records: ids.map(record) },
        { getRemainingTimeInMillis: () => remaining },
      );
      for (const failure of response.batchItemFailures) backlog.push(failure.itemIdentifier.slice(2));
    }
  } finally {
    scm.close();
  }
}

async function runScenario(
  stack: BenchStack,
  options: ThrottlingOptions,
  containers: number,
  kind: "adaptive" | "static",
): Promise<Figures> {
  const sim = await stack.startSim({ latencyMs: options.latencyMs, rateLimitPerSecond: options.limit });
  try {
    const ids = certificateIds(`t${kind[0]}${containers}`, Math.ceil((options.limit * options.durationMs) / 1000) * 2);
    seedUnderReview(sim, ids);
    const backlog = [...ids];
    const limiters = Array.from({ length: containers }, () =>
      kind === "adaptive"
        ? createAdaptiveLimiter()
        : createRateLimiter(options.limit / options.maximumConcurrency, undefined, { headroom: GATEWAY_HEADROOM }),
    );
    const started = Date.now();
    await Promise.all(limiters.map((limiter) => runContainer(sim, backlog, limiter, started + options.durationMs)));
    const ended = started + options.durationMs;
    const cancels = sim.calls.filter((c) => c.kind === "cancel" && c.at < ended);
    const steady = cancels.filter((c) => c.at >= started + options.warmupMs);
    const figures = (calls: typeof cancels, seconds: number) => ({
      rate: calls.filter((c) => c.status === 200).length / seconds,
      share: calls.length === 0 ? 0 : calls.filter((c) => c.status === 429).length / calls.length,
    });
    const whole = figures(cancels, options.durationMs / 1000);
    const steadyFigures = figures(steady, (options.durationMs - options.warmupMs) / 1000);
    return {
      rate: steadyFigures.rate,
      share: steadyFigures.share,
      wholeRate: whole.rate,
      wholeShare: whole.share,
      calls: cancels.length,
      throttled: cancels.filter((c) => c.status === 429).length,
      finalRates: limiters.map((l) => l.rate()),
    };
  } finally {
    await sim.close();
  }
}

export async function benchThrottling(
  stack: BenchStack,
  options: ThrottlingOptions = THROTTLING_DEFAULTS,
): Promise<Section> {
  const L = options.limit;
  const pct = (x: number) => `${fixed(x * 100, 1)} %`;
  const rows: Row[] = [];
  const notes: string[] = [];
  for (const n of options.containers) {
    // Side by side, at the same time (each against its own simulator): the machine's load hits both alike.
    const [adaptive, fixedRate] = await Promise.all([
      runScenario(stack, options, n, "adaptive"),
      runScenario(stack, options, n, "static"),
    ]);
    rows.push(
      {
        comparison: "5",
        metric: `withdrawals/s, ${n} container${n > 1 ? "s" : ""} (limit ${L}/s; adaptive vs static)`,
        value: `${fixed(adaptive.rate, 1)}/s`,
        baseline: `${fixed(fixedRate.rate, 1)}/s`,
        ratio: `${fixed(adaptive.rate / L, 2)}× limit`,
        target: `≥ 0.9× limit (${fixed(0.9 * L, 0)}/s)`,
        pass: adaptive.rate >= 0.9 * L,
      },
      {
        comparison: "5",
        metric: `429s / all calls, ${n} container${n > 1 ? "s" : ""}`,
        value: pct(adaptive.share),
        baseline: pct(fixedRate.share),
        target: "≤ 3 %",
        pass: adaptive.share <= 0.03,
      },
    );
    const describe = (name: string, f: Figures) =>
      `${name}: ${fixed(f.rate, 1)}/s and ${pct(f.share)} 429s in the steady window; ` +
      `over the whole ${options.durationMs / 1000} s, start included: ${fixed(f.wholeRate, 1)}/s, ` +
      `${f.throttled} of ${f.calls} calls answered 429 (${pct(f.wholeShare)}); ` +
      `final rates ${f.finalRates.map((r) => fixed(r, 1)).join(", ")} calls/s.`;
    notes.push(`${n} container${n > 1 ? "s" : ""}: ${describe("adaptive", adaptive)} ${describe("static", fixedRate)}`);
  }
  return {
    title: "5. Throttling without knowing the limit",
    rows,
    notes: [
      `Simulator: ${options.latencyMs} ms per call, at most ${L} SCM calls per sliding second (429 \`APIG.0308\` ` +
        `above, \`error_msg\` stating \`limit:${L},time:1 second\`, no \`Retry-After\`). The clients are not told L.`,
      "Containers: each a `createWorker` (the real retry loop: 3 attempts, 200 ms backoff base) with its own SCM " +
        "client and limiter, taking 10 jobs at a time from one shared backlog; handed-back jobs go to the end of the " +
        "backlog. Adaptive: `createAdaptiveLimiter` with no `SCM_MAX_RPS` (no limit until the first 429). Static: " +
        `today's fixed limiter at the documented setting, \`SCM_MAX_RPS\` = L / ${options.maximumConcurrency} ` +
        `(maximumConcurrency) = ${L / options.maximumConcurrency}/s per container. ` +
        "Both at once, each against its own simulator.",
      `Each scenario runs ${options.durationMs / 1000} s; the table's figures are the steady window after the first ` +
        `${options.warmupMs / 1000} s (withdrawals = cancel-cert calls answered 200; 429 share = 429 answers / ` +
        "cancel-cert calls). The whole-run figures, start-up included, are below.",
      ...notes,
    ],
  };
}
