/**
 * CloudWatch metrics in Embedded Metric Format (EMF), hand-written: a few lines instead of a
 * Powertools dependency, because every kilobyte of the bundle is paid at each cold start.
 *
 * The worker counts what happens during one invocation in a {@link MetricsRecorder} and hands the
 * totals to a {@link MetricsSink} once, at the end of `processBatch`. The default sink writes EMF
 * documents to stdout, one JSON line each; in Lambda, CloudWatch Logs turns them into metrics with no
 * API call and no extra permission.
 *
 * Lines per invocation ({@link toEmfDocuments}):
 * - always one line with every counter (zeros included, so graphs and alarms see "nothing happened"
 *   instead of "no data") and the SCM latencies, dimension `Service`;
 * - one more line per dead-letter reason seen, with `DeadLettered` under `Service` + `FailureReason`
 *   (one EMF document holds one value per dimension, so each reason needs its own document);
 * - one more line per further 100 latencies (an EMF values array holds at most 100 numbers).
 *
 * Spec: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
 */
import type { FailureReason } from "./classify.ts";

export const METRICS_NAMESPACE = "ScmWithdraw";
/** The value of the `Service` dimension on every metric. */
export const METRICS_SERVICE = "scm-withdraw";

/** Counters, summed over one invocation (unit `Count`). */
export const COUNTERS = [
  /** Records acknowledged because SCM answered 2xx. */
  "Withdrawn",
  /** Records acknowledged because the certificate had nothing under review any more. */
  "AlreadyWithdrawn",
  /** Records sent to the DLQ (also published per `FailureReason`). */
  "DeadLettered",
  /** Records reported in `batchItemFailures` (SQS delivers them again). */
  "LeftForRetry",
  /** SCM calls retried inside the invocation after a transient failure. */
  "Retried",
  /** SCM answers that were throttling: HTTP 429 or `APIG.0308`/`APIGW.0308`. */
  "Throttled",
  /** Times the token could not be obtained (Secrets Manager or IAM down, secret unusable). */
  "TokenUnavailable",
  /** DLQ sends that failed (the record is left for redelivery instead). */
  "DeadLetterFailed",
  /**
   * Ledger writes (claims and outcomes) that failed or were skipped while the ledger was considered
   * down (`LEDGER_TABLE`; see lib/ledger.ts). The job's fate is unaffected; only its record is missing.
   */
  "LedgerWriteFailed",
  /**
   * Records left for retry whose next delivery could not be delayed (`RETRY_VISIBILITY_SCHEDULE`):
   * they come back after the queue's visibility timeout instead; their fate is unaffected.
   */
  "VisibilityChangeFailed",
] as const;
export type Counter = (typeof COUNTERS)[number];

/** The latency metric: one value per SCM call (cancel-cert and details), in milliseconds. */
export const LATENCY_METRIC = "ScmLatency";
/** "Values arrays … MUST NOT contain more than 100 values" (EMF spec, target members). */
export const MAX_VALUES_PER_METRIC = 100;

/** What one invocation counted. */
export interface InvocationMetrics {
  counts: Record<Counter, number>;
  /** Dead-lettered records per `failure_reason`; only reasons that occurred. */
  deadLetteredByReason: Partial<Record<FailureReason, number>>;
  /** One entry per SCM call, in ms. */
  scmLatencyMs: number[];
}

/** Receives one invocation's metrics; `timestamp` is ms since the epoch. */
export type MetricsSink = (metrics: InvocationMetrics, timestamp: number) => void;

export interface MetricsRecorder {
  count(name: Counter, n?: number): void;
  /** Counts one dead-lettered record: `DeadLettered` and its reason. */
  deadLettered(reason: FailureReason): void;
  scmLatency(ms: number): void;
  snapshot(): InvocationMetrics;
}

export function createMetricsRecorder(): MetricsRecorder {
  const counts = Object.fromEntries(COUNTERS.map((name) => [name, 0])) as Record<Counter, number>;
  const byReason: Partial<Record<FailureReason, number>> = {};
  const latencies: number[] = [];
  return {
    count(name, n = 1) {
      counts[name] += n;
    },
    deadLettered(reason) {
      counts.DeadLettered += 1;
      byReason[reason] = (byReason[reason] ?? 0) + 1;
    },
    scmLatency(ms) {
      if (Number.isFinite(ms) && ms >= 0) latencies.push(Math.round(ms));
    },
    snapshot: () => ({ counts: { ...counts }, deadLetteredByReason: { ...byReason }, scmLatencyMs: [...latencies] }),
  };
}

/** One EMF document (a plain object; serialise with `JSON.stringify`). */
export type EmfDocument = Record<string, unknown> & {
  _aws: {
    Timestamp: number;
    CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[];
  };
};

/** The EMF documents for one invocation's metrics (see the module comment for the layout). */
export function toEmfDocuments(metrics: InvocationMetrics, timestamp: number): EmfDocument[] {
  const document = (
    dimensions: Record<string, string>,
    values: Record<string, number | number[]>,
    units: Record<string, string>,
  ): EmfDocument => ({
    _aws: {
      Timestamp: timestamp,
      CloudWatchMetrics: [
        {
          Namespace: METRICS_NAMESPACE,
          Dimensions: [Object.keys(dimensions)],
          Metrics: Object.keys(values).map((name) => ({ Name: name, Unit: units[name] ?? "Count" })),
        },
      ],
    },
    ...dimensions,
    ...values,
  });
  const service = { Service: METRICS_SERVICE };
  const latencyUnit = { [LATENCY_METRIC]: "Milliseconds" };
  const chunks: number[][] = [];
  for (let i = 0; i < metrics.scmLatencyMs.length; i += MAX_VALUES_PER_METRIC)
    chunks.push(metrics.scmLatencyMs.slice(i, i + MAX_VALUES_PER_METRIC));

  const [firstLatencies, ...moreLatencies] = chunks;
  const documents = [
    document(
      service,
      { ...metrics.counts, ...(firstLatencies ? { [LATENCY_METRIC]: firstLatencies } : {}) },
      latencyUnit,
    ),
  ];
  for (const [reason, count] of Object.entries(metrics.deadLetteredByReason)) {
    if (count) documents.push(document({ ...service, FailureReason: reason }, { DeadLettered: count }, {}));
  }
  for (const values of moreLatencies) documents.push(document(service, { [LATENCY_METRIC]: values }, latencyUnit));
  return documents;
}

/** A sink that writes each EMF document as one JSON line (default: to stdout, like the logger). */
export function emfSink(write: (line: string) => void = (line) => process.stdout.write(line)): MetricsSink {
  return (metrics, timestamp) => {
    for (const document of toEmfDocuments(metrics, timestamp)) write(`${JSON.stringify(document)}\n`);
  };
}

/** A sink that drops everything (tools and tests that do not want metric lines). */
export const discardMetrics: MetricsSink = () => {};
