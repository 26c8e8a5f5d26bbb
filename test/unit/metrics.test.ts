import { describe, expect, it } from "vitest";
import {
  COUNTERS,
  createMetricsRecorder,
  emfSink,
  LATENCY_METRIC,
  MAX_VALUES_PER_METRIC,
  METRICS_NAMESPACE,
  METRICS_SERVICE,
  toEmfDocuments,
  type EmfDocument,
  type InvocationMetrics,
} from "../../lib/metrics.ts";

/** CloudWatch's standard units (PutMetricData `Unit`), the only ones EMF accepts. */
const UNITS = new Set([
  "Seconds",
  "Microseconds",
  "Milliseconds",
  "Bytes",
  "Kilobytes",
  "Megabytes",
  "Gigabytes",
  "Terabytes",
  "Bits",
  "Kilobits",
  "Megabits",
  "Gigabits",
  "Terabits",
  "Percent",
  "Count",
  "Bytes/Second",
  "Kilobytes/Second",
  "Megabytes/Second",
  "Gigabytes/Second",
  "Terabytes/Second",
  "Bits/Second",
  "Kilobits/Second",
  "Megabits/Second",
  "Gigabits/Second",
  "Terabits/Second",
  "Count/Second",
  "None",
]);

/**
 * The rules of the EMF specification that a document can break, checked one by one:
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
 */
function specProblems(doc: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const aws = doc._aws as Record<string, unknown> | undefined;
  if (typeof aws !== "object" || aws === null) return ["_aws must be an object"];
  if (!Number.isInteger(aws.Timestamp) || (aws.Timestamp as number) <= 0)
    problems.push("_aws.Timestamp must be ms since the epoch");
  const directives = aws.CloudWatchMetrics;
  if (!Array.isArray(directives) || directives.length === 0)
    return [...problems, "_aws.CloudWatchMetrics must be a non-empty array"];
  for (const directive of directives as Record<string, unknown>[]) {
    const namespace = directive.Namespace;
    if (typeof namespace !== "string" || namespace.length < 1 || namespace.length > 255)
      problems.push("Namespace must be 1-255 characters");
    const dimensionSets = directive.Dimensions as unknown;
    if (!Array.isArray(dimensionSets)) problems.push("Dimensions must be an array of DimensionSets");
    else
      for (const set of dimensionSets) {
        if (!Array.isArray(set) || set.length > 30) problems.push("a DimensionSet must be an array of at most 30 keys");
        else
          for (const key of set) {
            const value = doc[key as string];
            if (typeof value !== "string" || value.length < 1 || value.length > 1024)
              problems.push(`dimension ${String(key)} must be a root string member of 1-1024 characters`);
          }
      }
    const metrics = directive.Metrics as unknown;
    if (!Array.isArray(metrics) || metrics.length > 100) {
      problems.push("Metrics must be an array of at most 100 MetricDefinitions");
      continue;
    }
    const names = new Set<string>();
    for (const metric of metrics as Record<string, unknown>[]) {
      const name = metric.Name;
      if (typeof name !== "string" || name.length < 1 || name.length > 255) {
        problems.push("a metric Name must be 1-255 characters");
        continue;
      }
      if (names.has(name)) problems.push(`metric ${name} is defined twice in one directive`);
      names.add(name);
      if (metric.Unit !== undefined && !UNITS.has(metric.Unit as string))
        problems.push(`metric ${name} has unknown unit ${String(metric.Unit)}`);
      const value = doc[name];
      const isNumber = (v: unknown) => typeof v === "number" && Number.isFinite(v);
      if (Array.isArray(value)) {
        if (value.length === 0 || value.length > 100 || !value.every(isNumber))
          problems.push(`metric ${name}'s values array must hold 1-100 numbers`);
      } else if (!isNumber(value)) problems.push(`metric ${name} must be a root number member`);
    }
  }
  if (Buffer.byteLength(JSON.stringify(doc)) > 1024 * 1024) problems.push("a document must be at most 1 MB");
  return problems;
}

const zeroCounts = () => Object.fromEntries(COUNTERS.map((c) => [c, 0])) as InvocationMetrics["counts"];
const T = Date.parse("2026-11-27T10:00:00.000Z");

describe("the metrics recorder", () => {
  it("starts every counter at zero, so an idle invocation still publishes zeros", () => {
    expect(createMetricsRecorder().snapshot()).toEqual({
      counts: zeroCounts(),
      deadLetteredByReason: {},
      scmLatencyMs: [],
    });
  });

  it("counts dead letters in total and per reason, and rounds latencies", () => {
    const recorder = createMetricsRecorder();
    recorder.count("Withdrawn");
    recorder.count("Retried", 2);
    recorder.deadLettered("not_found");
    recorder.deadLettered("not_found");
    recorder.deadLettered("invalid_message");
    recorder.scmLatency(12.4);
    recorder.scmLatency(12.6);
    recorder.scmLatency(Number.NaN);
    const snapshot = recorder.snapshot();
    expect(snapshot.counts).toMatchObject({ Withdrawn: 1, Retried: 2, DeadLettered: 3 });
    expect(snapshot.deadLetteredByReason).toEqual({ not_found: 2, invalid_message: 1 });
    expect(snapshot.scmLatencyMs).toEqual([12, 13]);
  });

  it("hands out snapshots that later counting does not change", () => {
    const recorder = createMetricsRecorder();
    const before = recorder.snapshot();
    recorder.count("Withdrawn");
    recorder.scmLatency(5);
    expect(before.counts.Withdrawn).toBe(0);
    expect(before.scmLatencyMs).toEqual([]);
  });
});

describe("the EMF documents", () => {
  it("put every counter and the latencies in one document under Service=scm-withdraw", () => {
    const [doc, ...rest] = toEmfDocuments(
      {
        counts: { ...zeroCounts(), Withdrawn: 3, Throttled: 1 },
        deadLetteredByReason: {},
        scmLatencyMs: [40, 41, 950],
      },
      T,
    );
    expect(rest).toEqual([]);
    expect(specProblems(doc!)).toEqual([]);
    expect(doc).toEqual({
      _aws: {
        Timestamp: T,
        CloudWatchMetrics: [
          {
            Namespace: "ScmWithdraw",
            Dimensions: [["Service"]],
            Metrics: [
              ...COUNTERS.map((Name) => ({ Name, Unit: "Count" })),
              { Name: "ScmLatency", Unit: "Milliseconds" },
            ],
          },
        ],
      },
      Service: "scm-withdraw",
      ...zeroCounts(),
      Withdrawn: 3,
      Throttled: 1,
      ScmLatency: [40, 41, 950],
    });
  });

  it("leave ScmLatency out entirely when no SCM call was made (an empty values array is not a value)", () => {
    const [doc] = toEmfDocuments(
      {
        counts: { ...zeroCounts(), TokenUnavailable: 1, LeftForRetry: 10 },
        deadLetteredByReason: {},
        scmLatencyMs: [],
      },
      T,
    );
    expect(specProblems(doc!)).toEqual([]);
    expect(doc).not.toHaveProperty(LATENCY_METRIC);
    expect(doc!._aws.CloudWatchMetrics[0]!.Metrics.map((m) => m.Name)).not.toContain(LATENCY_METRIC);
    expect(doc).toMatchObject({ TokenUnavailable: 1, LeftForRetry: 10 });
  });

  it("publish DeadLettered per FailureReason in one more document per reason (one value per dimension per document)", () => {
    const docs = toEmfDocuments(
      {
        counts: { ...zeroCounts(), DeadLettered: 3 },
        deadLetteredByReason: { forbidden: 2, invalid_message: 1 },
        scmLatencyMs: [5],
      },
      T,
    );
    for (const doc of docs) expect(specProblems(doc)).toEqual([]);
    expect(docs).toHaveLength(3);
    expect(docs[0]).toMatchObject({ Service: "scm-withdraw", DeadLettered: 3 });
    expect(docs[0]!._aws.CloudWatchMetrics[0]!.Dimensions).toEqual([["Service"]]);
    const perReason = docs.slice(1).map((d) => ({
      dims: d._aws.CloudWatchMetrics[0]!.Dimensions,
      metrics: d._aws.CloudWatchMetrics[0]!.Metrics,
      reason: d.FailureReason,
      count: d.DeadLettered,
    }));
    expect(perReason).toEqual([
      {
        dims: [["Service", "FailureReason"]],
        metrics: [{ Name: "DeadLettered", Unit: "Count" }],
        reason: "forbidden",
        count: 2,
      },
      {
        dims: [["Service", "FailureReason"]],
        metrics: [{ Name: "DeadLettered", Unit: "Count" }],
        reason: "invalid_message",
        count: 1,
      },
    ]);
    for (const doc of docs.slice(1))
      expect(Object.keys(doc).sort()).toEqual(["DeadLettered", "FailureReason", "Service", "_aws"]);
  });

  it("split more than 100 latencies into further documents, none over the spec's 100 values", () => {
    const latencies = Array.from({ length: 250 }, (_, i) => i);
    const docs = toEmfDocuments({ counts: zeroCounts(), deadLetteredByReason: {}, scmLatencyMs: latencies }, T);
    for (const doc of docs) expect(specProblems(doc)).toEqual([]);
    const published = docs.flatMap((d) => (d[LATENCY_METRIC] as number[] | undefined) ?? []);
    expect(published).toEqual(latencies);
    expect(docs.map((d) => (d[LATENCY_METRIC] as number[]).length)).toEqual([
      MAX_VALUES_PER_METRIC,
      MAX_VALUES_PER_METRIC,
      50,
    ]);
    // The counters are published once, not once per document.
    expect(docs.filter((d) => "Withdrawn" in d)).toHaveLength(1);
  });

  it("are what the spec checker rejects when broken (the checker itself works)", () => {
    const [doc] = toEmfDocuments({ counts: zeroCounts(), deadLetteredByReason: {}, scmLatencyMs: [1] }, T);
    expect(specProblems({ ...doc!, Service: undefined })).toContain(
      "dimension Service must be a root string member of 1-1024 characters",
    );
    expect(specProblems({ ...doc!, ScmLatency: Array.from({ length: 101 }, () => 1) })).toContain(
      "metric ScmLatency's values array must hold 1-100 numbers",
    );
    expect(specProblems({ ...doc!, Withdrawn: "1" })).toContain("metric Withdrawn must be a root number member");
  });
});

describe("the EMF sink", () => {
  it("writes each document as exactly one JSON line, in namespace ScmWithdraw", () => {
    const written: string[] = [];
    emfSink((line) => written.push(line))(
      { counts: { ...zeroCounts(), DeadLettered: 1 }, deadLetteredByReason: { rejected: 1 }, scmLatencyMs: [7] },
      T,
    );
    expect(written).toHaveLength(2);
    for (const line of written) {
      expect(line.endsWith("\n")).toBe(true);
      expect(line.slice(0, -1)).not.toContain("\n");
      const doc = JSON.parse(line) as EmfDocument;
      expect(specProblems(doc)).toEqual([]);
      expect(doc._aws.CloudWatchMetrics[0]!.Namespace).toBe(METRICS_NAMESPACE);
      expect(doc.Service).toBe(METRICS_SERVICE);
    }
  });
});
