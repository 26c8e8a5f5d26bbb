/**
 * Comparison 1: worker throughput (and the run comparison 2, connection reuse, is measured on).
 *
 * Three containers (child processes, each a cold Lambda container running a deployable bundle), each
 * with its own SCM simulator at 50 ms per call, sharing the local Secrets Manager and the DLQ:
 * - scm-withdraw: the real `handlers/withdraw.ts` at `BATCH_CONCURRENCY=10`;
 * - (b) Powertools: `bench/powertools-handler.ts` (`BatchProcessor` + `processPartialResponse`);
 * - (a) sequential: `bench/sequential-handler.ts` (one record at a time, the same SCM client).
 * scm-withdraw and Powertools get their batches alternately (one container busy at a time), so a
 * change in the machine's load hits both alike.
 */
import type { SQSEvent } from "aws-lambda";
import { sqsEvent, sqsRecord } from "../local/lambda-shapes.ts";
import type { Bundles } from "./bundles.ts";
import { connectionReuseSection } from "./connection-reuse.ts";
import { failedIds, startContainer, type Container, type Invocation } from "./containers.ts";
import { PROJECT_ROOT } from "../scripts/build.mjs";
import { fixed, mb, median, percentile, ratio, versionOf, type Section } from "./report.ts";
import { certificateIds, seedUnderReview, type BenchStack } from "./stack.ts";

export interface ThroughputOptions {
  messages: number;
  batchSize: number;
  latencyMs: number;
  batchConcurrency: number;
  /** Messages for the sequential baseline (its rate is latency-bound: 1 call per latency). */
  sequentialMessages: number;
}

export const THROUGHPUT_DEFAULTS: ThroughputOptions = {
  messages: 1000,
  batchSize: 10,
  latencyMs: 50,
  batchConcurrency: 10,
  sequentialMessages: 200,
};

interface Measured {
  invocations: Invocation[];
  messages: number;
  failures: number;
}

function batches(ids: readonly string[], size: number): SQSEvent[] {
  const events: SQSEvent[] = [];
  for (let i = 0; i < ids.length; i += size) {
    events.push(
      sqsEvent(
        ...ids.slice(i, i + size).map((id) => sqsRecord({ certificate_id: id, source: "bulk", batch_id: "bench" })),
      ),
    );
  }
  return events;
}

const rate = (m: Measured) => m.messages / (m.invocations.reduce((sum, i) => sum + i.wallMs, 0) / 1000);

export async function benchThroughput(
  stack: BenchStack,
  bundles: Bundles,
  options: ThroughputOptions = THROUGHPUT_DEFAULTS,
): Promise<Section[]> {
  const { messages, batchSize, latencyMs, batchConcurrency } = options;
  const sims = {
    ours: await stack.startSim({ latencyMs }),
    powertools: await stack.startSim({ latencyMs }),
    sequential: await stack.startSim({ latencyMs }),
  };
  const ids = {
    ours: certificateIds("tpours", messages),
    powertools: certificateIds("tppt", messages),
    sequential: certificateIds("tpseq", options.sequentialMessages),
  };
  for (const key of ["ours", "powertools", "sequential"] as const) seedUnderReview(sims[key], ids[key]);
  const events = {
    ours: batches(ids.ours, batchSize),
    powertools: batches(ids.powertools, batchSize),
    sequential: batches(ids.sequential, batchSize),
  };

  const containers: Container[] = [];
  try {
    const ours = await startContainer(
      bundles,
      "throughput-scm-withdraw",
      bundles.withdraw.outfile,
      stack.handlerEnv(sims.ours, { BATCH_CONCURRENCY: String(batchConcurrency) }),
    );
    containers.push(ours);
    const powertools = await startContainer(
      bundles,
      "throughput-powertools",
      bundles.powertools.outfile,
      stack.handlerEnv(sims.powertools),
    );
    containers.push(powertools);
    const sequential = await startContainer(
      bundles,
      "throughput-sequential",
      bundles.sequential.outfile,
      stack.handlerEnv(sims.sequential),
    );
    containers.push(sequential);

    const measured: Record<"ours" | "powertools" | "sequential", Measured> = {
      ours: { invocations: [], messages: 0, failures: 0 },
      powertools: { invocations: [], messages: 0, failures: 0 },
      sequential: { invocations: [], messages: 0, failures: 0 },
    };
    const run = async (key: keyof typeof measured, container: Container, event: SQSEvent) => {
      const invocation = await container.invoke(event);
      measured[key].invocations.push(invocation);
      measured[key].messages += event.Records.length;
      measured[key].failures += failedIds(event, invocation).length;
    };
    for (let i = 0; i < events.ours.length; i++) {
      // Alternate who goes first, so neither always follows the other.
      if (i % 2 === 0) {
        await run("ours", ours, events.ours[i]!);
        await run("powertools", powertools, events.powertools[i]!);
      } else {
        await run("powertools", powertools, events.powertools[i]!);
        await run("ours", ours, events.ours[i]!);
      }
    }
    for (const event of events.sequential) await run("sequential", sequential, event);

    const rss = {
      ours: await ours.stats(),
      powertools: await powertools.stats(),
      sequential: await sequential.stats(),
    };
    const withdrawn = (key: keyof typeof sims) => ids[key].filter((id) => sims[key].withdrawals(id) === 1).length;
    const durations = (key: keyof typeof measured) => measured[key].invocations.map((i) => i.durationMs);
    const rates = {
      ours: rate(measured.ours),
      powertools: rate(measured.powertools),
      sequential: rate(measured.sequential),
    };
    const p50 = median(durations("ours"));
    const p99 = percentile(durations("ours"), 99);
    const simStats = sims.ours.stats;
    const ptStats = sims.powertools.stats;
    const allDone =
      withdrawn("ours") === messages &&
      withdrawn("powertools") === messages &&
      withdrawn("sequential") === options.sequentialMessages;
    const noFailures = measured.ours.failures + measured.powertools.failures + measured.sequential.failures === 0;

    const throughput: Section = {
      title: "1. Worker throughput",
      rows: [
        {
          comparison: "1",
          metric: "throughput vs Powertools (b)",
          value: `${fixed(rates.ours, 0)} msg/s`,
          baseline: `${fixed(rates.powertools, 0)} msg/s`,
          ratio: ratio(rates.ours, rates.powertools),
          target: "≥ 1.0×",
          pass: rates.ours >= rates.powertools,
        },
        {
          comparison: "1",
          metric: "throughput vs one at a time (a)",
          value: `${fixed(rates.ours, 0)} msg/s`,
          baseline: `${fixed(rates.sequential, 1)} msg/s`,
          ratio: ratio(rates.ours, rates.sequential),
          target: "≥ 8×",
          pass: rates.ours >= 8 * rates.sequential,
        },
        {
          comparison: "1",
          metric: `p50 batch time (latency ${latencyMs} ms)`,
          value: `${fixed(p50)} ms`,
          baseline: `${fixed(median(durations("powertools")))} ms`,
          ratio: `${fixed(p50 / latencyMs, 2)}× latency`,
          target: `≤ 1.3× latency (${fixed(1.3 * latencyMs, 0)} ms)`,
          pass: p50 <= 1.3 * latencyMs,
        },
        {
          comparison: "1",
          metric: "p99 batch time",
          value: `${fixed(p99)} ms`,
          baseline: `${fixed(percentile(durations("powertools"), 99))} ms`,
        },
        {
          comparison: "1",
          metric: "peak RSS of the container",
          value: mb(rss.ours.maxRssKb),
          baseline: `${mb(rss.powertools.maxRssKb)} (b), ${mb(rss.sequential.maxRssKb)} (a)`,
        },
        {
          comparison: "1",
          metric: "max calls in flight (simulator)",
          value: String(simStats.maxInFlight),
          baseline: String(ptStats.maxInFlight),
          target: `≤ BATCH_CONCURRENCY (${batchConcurrency})`,
          pass: simStats.maxInFlight <= batchConcurrency,
        },
        {
          comparison: "1",
          metric: "every message withdrawn once, no failures",
          value:
            allDone && noFailures ? "yes" : `no (${withdrawn("ours")}/${messages}, failures ${measured.ours.failures})`,
          baseline: `${withdrawn("powertools")}/${messages} (b), ${withdrawn("sequential")}/${options.sequentialMessages} (a)`,
          target: "all",
          pass: allDone && noFailures,
        },
      ],
      notes: [
        `${messages} messages in batches of ${batchSize} through the real handler's deployable bundle (\`handlers/withdraw.ts\` built as \`npm run build\` does: minified, AWS SDK external) in its own Node process, invoked back to back like a warm container; SCM simulator at ${latencyMs} ms per call; Secrets Manager and the DLQ (fauxqs) local. \`BATCH_CONCURRENCY=${batchConcurrency}\`, every other setting at its default (\`LOG_LEVEL=info\`: the handler's logs are written, to a file).`,
        `(b) Powertools: \`BatchProcessor\` + \`processPartialResponse\` (@aws-lambda-powertools/batch ${versionOf("@aws-lambda-powertools/batch", PROJECT_ROOT)}), \`SecretsProvider\` (@aws-lambda-powertools/parameters ${versionOf("@aws-lambda-powertools/parameters", PROJECT_ROOT)}) for the token, \`fetch\` for the call (\`bench/powertools-handler.ts\`), the same ${messages} messages in the same batches, alternated batch by batch with scm-withdraw.`,
        `(a) one record at a time: \`bench/sequential-handler.ts\`, the project's SCM client in a \`for … await\` loop; ${options.sequentialMessages} messages (its rate is bound by the latency, one call per ${latencyMs} ms, so more messages would only take longer).`,
        "Throughput = messages / the sum of the invocations' times as the event source sees them (handler time plus the IPC round trip). Batch times are handler time measured inside the container, first (cold) batch included. Peak RSS is the container process's `maxRSS`.",
        `The Powertools handler had up to ${ptStats.maxInFlight} calls in flight (it runs a batch's records all at once).`,
      ],
    };
    return [throughput, connectionReuseSection(sims.ours, sims.powertools, batchConcurrency)];
  } finally {
    await Promise.all(containers.map((c) => c.close()));
  }
}
