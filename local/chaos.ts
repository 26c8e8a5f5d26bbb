/**
 * The chaos run (issue 7): thousands of jobs through the local pipeline while the SCM simulator
 * injects random faults per certificate and the event source is killed and restarted in the middle
 * of batches; then every job is reconciled against what the simulator and the DLQ hold.
 *
 * The promise it checks: every job ends in exactly one known place (withdrawn, or in the DLQ with its
 * reason), nothing is lost, nothing that should succeed is dead-lettered, no application is withdrawn
 * twice. The kills are the point: a killed batch is not finished by anyone; SQS's at-least-once
 * delivery brings its messages back after the visibility timeout, and a withdrawal SCM performed in a
 * killed batch must then end as `already_withdrawn`, not as a failure.
 *
 * The pieces are the real ones: fauxqs (SQS, with the DLQ and a redrive policy), the SCM simulator,
 * the local Secrets Manager endpoint, the real `handlers/withdraw.ts` in worker-thread "containers"
 * (`container-pool.ts`, the pipeline's own, whose `kill()` is the crash) and the event-source runner
 * (`runner.ts`). This module wires them itself, rather than through `startPipeline`, because it needs
 * two things the pipeline does not expose: killing the runner and its containers abruptly, and
 * starting a fresh generation of both.
 *
 * ```ts
 * const plan = planChaos({ jobs: 300, seed: 7 });
 * const report = await runChaos(plan);
 * console.log(formatAccounting(report));
 * if (!report.ok) process.exitCode = 1;
 * ```
 *
 * @module
 */
import type { SQSClient } from "@aws-sdk/client-sqs";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { FAILURE_REASONS, type FailureReason } from "../lib/classify.ts";
import { buildWithdrawalBody } from "../lib/message.ts";
import { createSender, type SendResult } from "../lib/producer.ts";
import { sleep } from "../lib/retry.ts";
import { createContainerPool, KilledError, localHandlerEnv, type ContainerPool } from "./container-pool.ts";
import { LOCAL } from "../cli/local-defaults.ts";
import { deadLetterReason, REDRIVE_POLICY_REASON, startLocalQueues, type InspectedMessage } from "./queues.ts";
import { createEventSourceRunner, type EventSourceRunner, type InvocationReport, type RunnerStats } from "./runner.ts";
import {
  faults,
  startScmSimulator,
  type CertificateInput,
  type CertificateStatus,
  type Fault,
  type ScmSimulator,
} from "./scm-simulator.ts";
import type { AkSkCredentials } from "../lib/aksk-signer.ts";
import { startSecretsManagerServer } from "./secrets-manager-server.ts";

// ---------------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------------

/**
 * Defaults for a chaos run. Short timings so a run takes seconds; `maxReceiveCount` is production's
 * 5, which leaves room for kills: a transient-only job needs at most 2 receives (see `planChaos`).
 */
export const CHAOS_DEFAULTS = {
  jobs: 3000,
  /** Kills of the runner and its containers, spread over the run. */
  kills: 5,
  /** Batches in flight at once (containers): the event source's maximum concurrency as deployed (serverless.yml). */
  maxConcurrency: 5,
  batchSize: 10,
  /** A killed batch's messages come back this long after their last visibility extension. */
  visibilityTimeoutSeconds: 1,
  /** The worker's MAX_RECEIVE_COUNT (production's value); the queue's redrive policy is this + 2. */
  maxReceiveCount: 5,
  /** The worker's MAX_ATTEMPTS (its default): SCM calls per record per invocation. */
  maxAttempts: 3,
  /** SCM_TIMEOUT_MS: small, so "no answer" costs little, large enough for a busy 2-core machine. */
  scmTimeoutMs: 400,
  retryBaseDelayMs: 25,
  retryMaxDelayMs: 250,
  functionTimeoutMs: 60_000,
  /** Give up waiting for the queue to empty after this long (the run then fails: jobs unfinished). */
  drainTimeoutMs: 600_000,
} as const;

/** The redrive policy's `maxReceiveCount` is this much above the worker's, as in serverless.yml. */
const REDRIVE_MARGIN = 2;

/** The DLQ key for messages the queue's redrive policy moved there (defined with the queues). */
export { REDRIVE_POLICY_REASON };

// ---------------------------------------------------------------------------------------------
// Seeded randomness
// ---------------------------------------------------------------------------------------------

/** A small seeded generator (mulberry32): the same seed gives the same plan on any machine. */
export function seededRandom(seed: number) {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (min: number, max: number): number => min + Math.floor(next() * (max - min + 1));
  const weighted = <T>(entries: readonly (readonly [T, number])[]): T => {
    const total = entries.reduce((sum, [, weight]) => sum + weight, 0);
    let roll = next() * total;
    for (const [value, weight] of entries) {
      roll -= weight;
      if (roll < 0) return value;
    }
    return entries[entries.length - 1]![0];
  };
  return { next, int, weighted };
}

// ---------------------------------------------------------------------------------------------
// The plan
// ---------------------------------------------------------------------------------------------

/** What a job's certificate does to the worker. */
export const PROFILES = [
  /** Under review, no fault: withdrawn at the first call. */
  "clean",
  /** Under review, 1 to 2·MAX_ATTEMPTS−1 transient faults first (5xx, 429, resets, hangs, late answers). */
  "transient",
  /** Under review, answered slowly but within the timeout. */
  "slow",
  /** Under review; SCM withdraws it but the answer is lost (reset, hang, drip or late answer after the effect): acknowledged as already withdrawn. */
  "answer_lost",
  /** A second job for a certificate another job also withdraws. */
  "duplicate",
  /** Already withdrawn before the run (PAID or CANCELCHECKING): SCM.0010, the details say so. */
  "already_withdrawn",
  /** Issued (ISSUED): SCM.0010, the details show nothing under review: `rejected`. */
  "rejected",
  /** The token's user may not touch it: 403 `forbidden`. */
  "forbidden",
  /** Unknown to SCM: 404 `not_found`. */
  "not_found",
  /** Every cancel-cert fails transiently: `retries_exhausted` on receive MAX_RECEIVE_COUNT. */
  "always_failing",
  /** The body is not a valid job: `invalid_message`, SCM never called. */
  "malformed",
] as const;
export type Profile = (typeof PROFILES)[number];

/** Share of each profile among the jobs (percent). */
export const PROFILE_WEIGHTS: Readonly<Record<Profile, number>> = {
  clean: 34,
  transient: 25,
  slow: 6,
  answer_lost: 6,
  duplicate: 2,
  already_withdrawn: 6,
  rejected: 4,
  forbidden: 4,
  not_found: 4,
  always_failing: 4,
  malformed: 5,
};

/** Where a job must end. */
export type ExpectedOutcome = "withdrawn" | "already_withdrawn" | FailureReason;

/** One fault the plan injects: one-shot (used by one call, in order) or persistent (every call). */
export interface PlannedFault {
  label: string;
  call: "cancel" | "detail";
  fault: Fault;
}

export interface PlannedJob {
  index: number;
  /** The job's `request_id` (malformed bodies carry it too, as text, so each body is unique). */
  requestId: string;
  /** The certificate the job names; undefined for a malformed body. */
  certificateId: string | undefined;
  body: string;
  profile: Profile;
  expected: ExpectedOutcome;
  /** One-shot faults queued for the certificate (shared with a duplicate job, if any). */
  faults: PlannedFault[];
  /** The persistent fault of an `always_failing` certificate. */
  persistent: PlannedFault | undefined;
  /** A short human description: profile and faults. */
  description: string;
}

export interface ChaosSettings {
  jobs: number;
  seed: number;
  kills: number;
  maxConcurrency: number;
  batchSize: number;
  visibilityTimeoutSeconds: number;
  maxReceiveCount: number;
  maxAttempts: number;
  scmTimeoutMs: number;
  retryBaseDelayMs: number;
  retryMaxDelayMs: number;
  functionTimeoutMs: number;
  drainTimeoutMs: number;
}

export interface ChaosPlan {
  settings: ChaosSettings;
  jobs: PlannedJob[];
  /** The certificates to add to the simulator (not-found ones are absent on purpose). */
  certificates: CertificateInput[];
  /** When to kill: fractions of the jobs decided, ascending, one per kill (one in each equal slice of 5% to 90%). */
  killAt: number[];
  /** How long the event source stays down after each kill, ms. */
  downtimeMs: number[];
  /** Where each kill lands (alternating, from a seeded start). */
  killModes: KillMode[];
}

/** A plan's size and shape, from {@link planChaos}'s options. */
export type ChaosOptions = Partial<ChaosSettings>;

/**
 * Builds the run's plan from a seed: which certificate each job names, what the simulator does to it,
 * where the job must end, and when the kills happen. Nothing random is left for the run except timing.
 *
 * Fault counts are kept inside what the worker absorbs: a transient-only certificate gets at most
 * 2·MAX_ATTEMPTS − 1 transient faults, so it is withdrawn by its second receive at the latest, leaving
 * MAX_RECEIVE_COUNT − 2 receives for kills to waste before it could be dead-lettered.
 */
export function planChaos(options: ChaosOptions = {}): ChaosPlan {
  const settings: ChaosSettings = {
    jobs: options.jobs ?? CHAOS_DEFAULTS.jobs,
    seed: options.seed ?? Math.floor(Math.random() * 2 ** 31),
    kills: options.kills ?? CHAOS_DEFAULTS.kills,
    maxConcurrency: options.maxConcurrency ?? CHAOS_DEFAULTS.maxConcurrency,
    batchSize: options.batchSize ?? CHAOS_DEFAULTS.batchSize,
    visibilityTimeoutSeconds: options.visibilityTimeoutSeconds ?? CHAOS_DEFAULTS.visibilityTimeoutSeconds,
    maxReceiveCount: options.maxReceiveCount ?? CHAOS_DEFAULTS.maxReceiveCount,
    maxAttempts: options.maxAttempts ?? CHAOS_DEFAULTS.maxAttempts,
    scmTimeoutMs: options.scmTimeoutMs ?? CHAOS_DEFAULTS.scmTimeoutMs,
    retryBaseDelayMs: options.retryBaseDelayMs ?? CHAOS_DEFAULTS.retryBaseDelayMs,
    retryMaxDelayMs: options.retryMaxDelayMs ?? CHAOS_DEFAULTS.retryMaxDelayMs,
    functionTimeoutMs: options.functionTimeoutMs ?? CHAOS_DEFAULTS.functionTimeoutMs,
    drainTimeoutMs: options.drainTimeoutMs ?? CHAOS_DEFAULTS.drainTimeoutMs,
  };
  const { jobs: count, seed, maxAttempts, maxReceiveCount, scmTimeoutMs } = settings;
  if (!Number.isInteger(count) || count < 1 || count > 1_000_000)
    throw new RangeError(`jobs must be an integer from 1 to 1000000 (got ${count})`);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff)
    throw new RangeError(`seed must be an integer from 0 to 4294967295 (got ${seed})`);
  if (!Number.isInteger(settings.kills) || settings.kills < 0 || settings.kills > 1000)
    throw new RangeError(`kills must be an integer from 0 to 1000 (got ${settings.kills})`);
  if (!Number.isInteger(settings.maxConcurrency) || settings.maxConcurrency < 1 || settings.maxConcurrency > 32)
    throw new RangeError(`concurrency must be an integer from 1 to 32 (got ${settings.maxConcurrency})`);
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 10)
    throw new RangeError(`maxAttempts must be an integer from 1 to 10 (got ${maxAttempts})`);
  // A transient-only job may need 2 receives; at least 2 more must be left for kills to waste.
  if (!Number.isInteger(maxReceiveCount) || maxReceiveCount < 4)
    throw new RangeError(`maxReceiveCount must be an integer of at least 4 (got ${maxReceiveCount})`);

  const random = seededRandom(seed);
  const maxTransient = 2 * maxAttempts - 1;

  // Transient faults on cancel-cert. Those marked `done` let SCM perform the withdrawal first.
  const late = (): PlannedFault => ({
    label: "late",
    call: "cancel",
    fault: faults.delay(scmTimeoutMs + random.int(100, 400)),
  });
  const cancelFaults: readonly (readonly [() => PlannedFault, number])[] = [
    [() => ({ label: "500", call: "cancel", fault: faults.internalError() }), 14],
    [() => ({ label: "502", call: "cancel", fault: faults.badGateway(false) }), 6],
    [() => ({ label: "503", call: "cancel", fault: faults.unavailable() }), 10],
    [() => ({ label: "504", call: "cancel", fault: faults.gatewayTimeout() }), 6],
    [() => ({ label: "429", call: "cancel", fault: faults.throttle() }), 10],
    [() => ({ label: "429+Retry-After", call: "cancel", fault: faults.throttle(1) }), 2],
    [() => ({ label: "reset", call: "cancel", fault: faults.reset() }), 10],
    [() => ({ label: "hang", call: "cancel", fault: faults.hang() }), 6],
    [late, 3],
  ];
  const detailFaults: readonly (readonly [() => PlannedFault, number])[] = [
    [() => ({ label: "detail 500", call: "detail", fault: faults.internalError() }), 3],
    [() => ({ label: "detail 503", call: "detail", fault: faults.unavailable() }), 2],
    [() => ({ label: "detail 429", call: "detail", fault: faults.throttle() }), 2],
    [() => ({ label: "detail reset", call: "detail", fault: faults.reset() }), 2],
    [() => ({ label: "detail hang", call: "detail", fault: faults.hang() }), 1],
  ];
  const answerLost: readonly (readonly [() => PlannedFault, number])[] = [
    [() => ({ label: "reset after effect", call: "cancel", fault: faults.reset({ afterEffect: true }) }), 4],
    [() => ({ label: "hang after effect", call: "cancel", fault: faults.hang({ afterEffect: true }) }), 3],
    [() => ({ label: "drip past timeout", call: "cancel", fault: faults.drip(20, { padTo: 120 }) }), 2],
    [late, 2],
  ];
  const alwaysFaults: readonly (readonly [() => PlannedFault, number])[] = [
    [() => ({ label: "always 500", call: "cancel", fault: faults.internalError() }), 4],
    [() => ({ label: "always 503", call: "cancel", fault: faults.unavailable() }), 3],
    [() => ({ label: "always 429", call: "cancel", fault: faults.throttle() }), 2],
    [() => ({ label: "always reset", call: "cancel", fault: faults.reset() }), 2],
    [() => ({ label: "always hang", call: "cancel", fault: faults.hang() }), 1],
  ];
  const some = (menu: readonly (readonly [() => PlannedFault, number])[], n: number) =>
    Array.from({ length: n }, () => random.weighted(menu)());
  /** 0 to `max` faults, fewer more likely. */
  const fewTransient = (max: number) =>
    some(cancelFaults, random.weighted(Array.from({ length: max + 1 }, (_, k) => [k, max + 1 - k] as const)));

  const profileMenu = PROFILES.map((p) => [p, PROFILE_WEIGHTS[p]] as const);
  const jobs: PlannedJob[] = [];
  const certificates: CertificateInput[] = [];
  /** Jobs whose certificate a duplicate may name (under review, expected withdrawn). */
  const reusable: PlannedJob[] = [];
  const idOf = (index: number) => `chaos${String(index).padStart(11, "0")}`;
  const batchId = `chaos-${seed}`;

  for (let index = 0; index < count; index++) {
    let profile = random.weighted(profileMenu);
    if (profile === "duplicate" && reusable.length === 0) profile = "clean";
    const requestId = `chaos-${seed}-${index}`;
    let certificateId: string | undefined = idOf(index);
    let expected: ExpectedOutcome = "withdrawn";
    let planned: PlannedFault[] = [];
    let persistent: PlannedFault | undefined;
    let body: string | undefined;
    let status: CertificateStatus | undefined = "CHECKING";
    let forbidden = false;

    switch (profile) {
      case "clean":
        break;
      case "transient":
        planned = some(
          cancelFaults,
          random.weighted(Array.from({ length: maxTransient }, (_, k) => [k + 1, maxTransient - k] as const)),
        );
        break;
      case "slow":
        planned = [
          random.next() < 0.7
            ? { label: "slow", call: "cancel", fault: faults.delay(random.int(20, Math.floor(scmTimeoutMs / 3))) }
            : { label: "slow drip", call: "cancel", fault: faults.drip(1000) },
        ];
        break;
      case "answer_lost":
        planned = [random.weighted(answerLost)(), ...fewTransient(Math.min(2, maxTransient - 1))];
        break;
      case "duplicate": {
        const original = reusable[random.int(0, reusable.length - 1)]!;
        certificateId = original.certificateId;
        status = undefined; // the original job's certificate
        break;
      }
      case "already_withdrawn":
        status = random.next() < 0.8 ? "PAID" : "CANCELCHECKING";
        expected = "already_withdrawn";
        planned = random.next() < 0.3 ? [random.weighted(detailFaults)()] : fewTransient(1);
        break;
      case "rejected":
        status = "ISSUED";
        expected = "rejected";
        planned = random.next() < 0.3 ? [random.weighted(detailFaults)()] : fewTransient(2);
        break;
      case "forbidden":
        forbidden = true;
        expected = "forbidden";
        planned = fewTransient(2);
        break;
      case "not_found":
        status = undefined; // never added to the simulator
        expected = "not_found";
        planned = fewTransient(2);
        break;
      case "always_failing":
        persistent = random.weighted(alwaysFaults)();
        expected = "retries_exhausted";
        break;
      case "malformed":
        certificateId = undefined;
        status = undefined;
        expected = "invalid_message";
        body = malformedBody(random.int(0, MALFORMED_SHAPES - 1), requestId, idOf(index));
        break;
    }

    body ??= buildWithdrawalBody({
      certificate_id: certificateId!,
      request_id: requestId,
      source: "bulk",
      batch_id: batchId,
      reason: `chaos: ${profile}`,
    });
    if (status !== undefined && certificateId !== undefined)
      certificates.push({ id: certificateId, status, forbidden, name: `chaos-${profile}` });
    const labels = [...planned.map((f) => f.label), ...(persistent ? [persistent.label] : [])];
    const job: PlannedJob = {
      index,
      requestId,
      certificateId,
      body,
      profile,
      expected,
      faults: planned,
      persistent,
      description: labels.length > 0 ? `${profile} (${labels.join(", ")})` : profile,
    };
    jobs.push(job);
    if (profile === "clean" || profile === "transient" || profile === "slow") reusable.push(job);
  }

  // Spread over the run: one kill at a random point of each equal slice of 5% to 90% decided.
  const slice = 0.85 / Math.max(1, settings.kills);
  const killAt = Array.from({ length: settings.kills }, (_, i) => 0.05 + (i + random.next()) * slice);
  const downtimeMs = killAt.map(() => random.int(50, 400));
  const firstMode = random.int(0, 1);
  const killModes = killAt.map((_, i): KillMode => ((i + firstMode) % 2 === 0 ? "mid_invocation" : "before_delete"));
  return { settings, jobs, certificates, killAt, downtimeMs, killModes };
}

const MALFORMED_SHAPES = 10;

/** Bodies the schema refuses, each made unique by the job's request id (the DLQ keeps bodies byte for byte). */
function malformedBody(shape: number, requestId: string, id: string): string {
  switch (shape) {
    case 0:
      return `this is not json (${requestId})`;
    case 1:
      return JSON.stringify({ certificate_id: "../../etc/passwd", request_id: requestId });
    case 2:
      return JSON.stringify({ certificate_id: id.slice(0, 15), request_id: requestId });
    case 3:
      return JSON.stringify({ request_id: requestId, source: "bulk" });
    case 4:
      return JSON.stringify({ certificate_id: id, source: "robot", request_id: requestId });
    case 5:
      return JSON.stringify([requestId, id]);
    case 6:
      return JSON.stringify({ certificate_id: id, reason: "x".repeat(300), request_id: requestId });
    case 7:
      return `{"certificate_id":"${id}","request_id":"${requestId}"`;
    case 8:
      return `{"certificate_id":1234567890123456,"request_id":"${requestId}"}`;
    default:
      return JSON.stringify({ certificate_id: `${id.slice(0, 12)}%2e%2e`, request_id: requestId });
  }
}

/** Adds the plan's certificates and faults to a simulator. */
export function applyPlan(sim: ScmSimulator, plan: ChaosPlan): void {
  for (const certificate of plan.certificates) sim.addCertificate(certificate);
  for (const job of plan.jobs) {
    if (job.certificateId === undefined) continue;
    for (const { call, fault } of job.faults) sim.inject({ certificateId: job.certificateId, call }, fault);
    if (job.persistent)
      sim.injectAlways({ certificateId: job.certificateId, call: job.persistent.call }, job.persistent.fault);
  }
}

/** How many jobs of each expected outcome the plan has. */
export function expectedCounts(plan: ChaosPlan): Record<ExpectedOutcome, number> {
  const counts = Object.fromEntries(OUTCOME_ORDER.map((o) => [o, 0])) as Record<ExpectedOutcome, number>;
  for (const job of plan.jobs) counts[job.expected] += 1;
  return counts;
}

const OUTCOME_ORDER: readonly ExpectedOutcome[] = ["withdrawn", "already_withdrawn", ...FAILURE_REASONS];

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

/**
 * How a kill lands. Both are abrupt (nothing is waited for); they differ in the moment:
 * - `mid_invocation`: while batches run in the containers (SCM calls and DLQ sends half done);
 * - `before_delete`: right after a handler answered, before the runner deletes what it acknowledged.
 */
export type KillMode = "mid_invocation" | "before_delete";

/** One kill of the event source and its containers. */
export interface KillEvent {
  /** 1-based. */
  number: number;
  /** Ms since the run started. */
  atMs: number;
  /** Share of the jobs decided when it happened. */
  decided: number;
  mode: KillMode;
  /** Records the handler had acknowledged whose delete was never sent (`before_delete`). */
  deletesDropped: number;
  /** Invocations running in a container at that moment (each one a batch lost). */
  invocationsKilled: number;
  /** Records in those batches and in batches received but not yet handed over. */
  recordsKilled: number;
  /** SQS calls of the dead event source that failed after the kill (deletes, visibility extensions, receives). */
  sqsCallsLost: number;
  /** Ms from the kill until a new event source with fresh containers was polling. */
  restartMs: number;
}

export interface ChaosProgressEvent {
  type: "enqueued" | "kill" | "tick" | "drained";
  elapsedMs: number;
  decided: number;
  total: number;
  kill?: KillEvent;
}

export interface ChaosRunOptions {
  /** Every line the handler writes (its JSON logs), e.g. to a log file. */
  onLogLine?: (line: string) => void;
  onProgress?: (event: ChaosProgressEvent) => void;
  /** The token the simulator accepts and the secret holds. Default: the local demo token. */
  token?: string;
  /** Sign every SCM call with this AK/SK pair (the secret holds `{"aksk": ...}`) instead of a token. */
  aksk?: AkSkCredentials;
  /**
   * Called once the jobs are on the queue, before the event source starts. For tests that tamper
   * with a run (delete a message, forge a dead letter) to prove the reconciliation notices.
   */
  afterEnqueue?: (stack: {
    sqs: SQSClient;
    queueUrl: string;
    dlqUrl: string;
    sim: ScmSimulator;
  }) => Promise<void> | void;
}

/** Where one job actually ended. */
export type ActualOutcome = ExpectedOutcome | typeof REDRIVE_POLICY_REASON | "still_queued" | "lost";

/** A job that did not end where the plan says, with what is known about it. */
export interface Discrepancy {
  kind:
    | "lost"
    | "still_queued"
    | "wrongly_dead_lettered"
    | "wrong_reason"
    | "wrongly_acknowledged"
    | "double_withdrawal"
    | "unexpected_dead_letter";
  job: PlannedJob | undefined;
  actual: ActualOutcome | undefined;
  evidence: string;
}

export interface ChaosReport {
  plan: ChaosPlan;
  ok: boolean;
  expected: Record<ExpectedOutcome, number>;
  actual: Record<ActualOutcome, number>;
  /** Jobs under review that were withdrawn, whose final answer was "already withdrawn" (answer lost, killed batch, or a duplicate job). */
  recoveredAsAlreadyWithdrawn: number;
  /** Redrive-policy moves explained by kills that wasted the job's last receives (accepted for `retries_exhausted`). */
  redriveExplainedByKills: number;
  /** Extra DLQ copies of a job already in the DLQ (the batch was killed after its DLQ send: at-least-once). */
  duplicateDeadLetters: number;
  /** Certificates SCM withdrew more than once. */
  doubleWithdrawals: number;
  discrepancies: Discrepancy[];
  kills: KillEvent[];
  runner: RunnerStats;
  /** SCM requests the simulator received (cancel-cert and details), and how many answered with an injected fault. */
  scmCalls: number;
  faultsUsed: number;
  /** One-shot faults the plan queued, and how many were never used (the certificate was decided before reaching them). */
  faultsPlanned: number;
  faultsUnused: number;
  /** The handler's error-level log lines, by event (none expected: kills and faults are not errors). */
  handlerErrors: Record<string, number>;
  /** Event-loop delay of the process running SQS, the simulator and the runner, ms. */
  eventLoopDelayMs: { p99: number; max: number };
  elapsedMs: number;
  jobsPerSecond: number;
}

interface Generation {
  number: number;
  sqs: SQSClient;
  pool: ContainerPool;
  runner: EventSourceRunner;
  killed: boolean;
  killSwitch: () => void;
  stopped: Promise<void> | undefined;
  lostSqsCalls: number;
  /** Set to kill the generation from inside the next acknowledged invocation's report, before its delete. */
  armed: ((report: InvocationReport) => void) | undefined;
}

/**
 * Runs a plan: starts everything on 127.0.0.1 (free ports), enqueues the jobs, kills and restarts the
 * event source at the plan's moments, waits until the queue is empty, and reconciles every job.
 * Always closes what it started, also when it throws.
 */
export async function runChaos(plan: ChaosPlan, options: ChaosRunOptions = {}): Promise<ChaosReport> {
  const { settings } = plan;
  const token = options.token ?? LOCAL.demoToken;
  const region = LOCAL.region;
  const closers: (() => Promise<unknown> | unknown)[] = [];
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  closers.push(() => lag.disable());

  try {
    // ---- SQS ----
    const queues = await startLocalQueues({
      region,
      visibilityTimeoutSeconds: settings.visibilityTimeoutSeconds,
      redriveMaxReceiveCount: settings.maxReceiveCount + REDRIVE_MARGIN,
    });
    closers.push(() => queues.close());
    const { endpoint: sqsEndpoint, sqs, queueUrl, queueArn, dlqUrl } = queues;

    // ---- SCM and Secrets Manager ----
    const sim = await startScmSimulator({ tokens: [token], accessKeys: options.aksk ? [options.aksk] : [] });
    closers.push(() => sim.close());
    applyPlan(sim, plan);
    const faultsPlanned = sim.pendingFaults();
    const { aksk } = options;
    const stored = aksk && { access_key: aksk.accessKey, secret_key: aksk.secretKey, domain_id: aksk.domainId };
    const secret = stored ? JSON.stringify({ aksk: stored }) : token;
    const secrets = await startSecretsManagerServer({ [LOCAL.secretId]: secret });
    closers.push(() => secrets.close());

    // ---- what the handler says about each message ----
    const events = new Map<string, string[]>();
    const decidedIds = new Set<string>();
    const FINAL = new Set(["withdrawal_succeeded", "withdrawal_already_withdrawn", "withdrawal_dead_lettered"]);
    const handlerErrors: Record<string, number> = {};
    const onLogLine = (line: string) => {
      options.onLogLine?.(line);
      if (line.includes('"level":"error"')) {
        const event = /"event":"([a-z_]+)"/.exec(line)?.[1] ?? "unknown";
        handlerErrors[event] = (handlerErrors[event] ?? 0) + 1;
      }
      if (!line.includes('"event":"withdrawal_') && !line.includes('"event":"dead_letter_failed"')) return;
      let entry: {
        event?: string;
        messageId?: string;
        receiveCount?: number;
        reason?: string;
        status?: number;
        errorCode?: string;
        attempt?: number;
      };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        return;
      }
      if (typeof entry.messageId !== "string" || typeof entry.event !== "string") return;
      if (entry.event === "withdrawal_retrying") return; // one per retried call: too many to keep
      const detail = [entry.reason, entry.status, entry.errorCode].filter((x) => x !== undefined).join(" ");
      const list = events.get(entry.messageId) ?? [];
      list.push(
        `${entry.event.replace("withdrawal_", "")}@receive${entry.receiveCount ?? "?"}${detail ? `(${detail})` : ""}`,
      );
      events.set(entry.messageId, list);
      if (FINAL.has(entry.event)) decidedIds.add(entry.messageId);
    };

    const handlerEnv: Record<string, string> = {
      ...localHandlerEnv({
        scmEndpoint: sim.url,
        secretsEndpoint: secrets.url,
        secretsCredentials: secrets.credentials,
        sqsEndpoint,
        dlqUrl,
        maxReceiveCount: settings.maxReceiveCount,
        region,
      }),
      MAX_ATTEMPTS: String(settings.maxAttempts),
      SCM_TIMEOUT_MS: String(settings.scmTimeoutMs),
      RETRY_BASE_DELAY_MS: String(settings.retryBaseDelayMs),
      RETRY_MAX_DELAY_MS: String(settings.retryMaxDelayMs),
      // The 429s here are injected faults, not a rate: an adaptive limiter would rightly slow down on them.
      SCM_RATE_LIMIT: "fixed",
      // A record left for retry comes back within one local visibility timeout, as before the backoff.
      RETRY_VISIBILITY_SCHEDULE: `${settings.visibilityTimeoutSeconds}s`,
    };

    // ---- the event source, in generations: a kill ends one, a restart begins the next ----
    const reports: InvocationReport[] = [];
    const generations: Generation[] = [];
    /**
     * The next generation's containers boot in the background while the current one works, so a
     * restart costs the planned downtime rather than seconds of TypeScript compilation per thread.
     * Each is still a fresh container: its first invocation reads the secret and opens connections.
     */
    const bootPool = (): Promise<ContainerPool> => {
      const pool = createContainerPool(handlerEnv, onLogLine);
      closers.push(() => pool.kill());
      const warmed = pool.warm(settings.maxConcurrency).then(() => pool);
      warmed.catch(() => {});
      return warmed;
    };
    let standby: Promise<ContainerPool> | undefined = bootPool();
    const startGeneration = async (bootNext: boolean): Promise<Generation> => {
      const number = generations.length + 1;
      let killSwitch: () => void = () => {};
      const killedSignal = new Promise<never>((_, reject) => {
        killSwitch = () => reject(new KilledError("the event source"));
      });
      killedSignal.catch(() => {});
      // Its own SQS client: once killed, every call it makes fails, including calls already on the
      // wire (their answers are dropped), so a delete that had not completed never happens.
      const generationSqs = queues.client();
      const generation: Partial<Generation> & { killed: boolean; lostSqsCalls: number } = {
        number,
        killed: false,
        lostSqsCalls: 0,
        armed: undefined,
      };
      generationSqs.middlewareStack.add(
        (next) => async (args) => {
          if (generation.killed) {
            generation.lostSqsCalls += 1;
            throw new KilledError("the event source");
          }
          try {
            return await Promise.race([next(args), killedSignal]);
          } catch (error) {
            if (error instanceof KilledError) generation.lostSqsCalls += 1;
            throw error;
          }
        },
        { step: "initialize", name: "chaosKillSwitch" },
      );
      const pool = await (standby ?? bootPool());
      standby = bootNext ? bootPool() : undefined;
      const runner = createEventSourceRunner({
        sqs: generationSqs,
        queueUrl,
        queueArn,
        region,
        invoke: pool.invoke,
        visibilityTimeoutSeconds: settings.visibilityTimeoutSeconds,
        batchSize: settings.batchSize,
        maxConcurrency: settings.maxConcurrency,
        functionTimeoutMs: settings.functionTimeoutMs,
        waitTimeSeconds: 1,
        functionName: `scm-withdraw-chaos-${number}`,
        onInvocation: (report) => {
          reports.push(report);
          // Called after the handler answered and before the runner deletes the acknowledged records.
          const fire = generation.armed;
          if (fire && (report.outcome === "success" || report.outcome === "partial") && report.succeeded.length > 0) {
            generation.armed = undefined;
            fire(report);
          }
        },
        // Expected after a kill (the dead source's calls fail); anything else shows in the results.
        onError: () => {},
      });
      Object.assign(generation, { sqs: generationSqs, pool, runner, killSwitch, stopped: undefined });
      const ready = generation as Generation;
      generations.push(ready);
      closers.push(async () => {
        ready.killed = true;
        ready.killSwitch();
        await ready.pool.kill();
        await (ready.stopped ?? ready.runner.stop());
        ready.sqs.destroy();
      });
      runner.start();
      return ready;
    };

    // ---- enqueue (the first containers boot meanwhile) ----
    const started = Date.now();
    const elapsed = () => Date.now() - started;
    const progress = (type: ChaosProgressEvent["type"], kill?: KillEvent) =>
      options.onProgress?.({
        type,
        elapsedMs: elapsed(),
        decided: decidedIds.size,
        total: plan.jobs.length,
        ...(kill ? { kill } : {}),
      });
    const messageIdOf = new Map<number, string>();
    const sendFailures: SendResult<number>[] = [];
    const sender = createSender<number>({
      sqs,
      queueUrl,
      onResult: (result) => {
        if (result.ok) messageIdOf.set(result.key, result.messageId);
        else sendFailures.push(result);
      },
    });
    for (const job of plan.jobs) await sender.push({ key: job.index, body: job.body });
    await sender.flush();
    if (sendFailures.length > 0)
      throw new Error(
        `could not enqueue ${sendFailures.length} of ${plan.jobs.length} jobs (first: ${sendFailures[0]!.ok ? "" : sendFailures[0]!.error})`,
      );
    await options.afterEnqueue?.({ sqs, queueUrl, dlqUrl, sim });
    progress("enqueued");
    let current = await startGeneration(plan.killAt.length > 0);
    const isIdle = async () => {
      if (current.runner.inFlight > 0) return false;
      const { queue } = await queues.counts();
      return queue.waiting + queue.inFlight === 0;
    };

    // ---- kills ----
    const kills: KillEvent[] = [];
    const ticker = setInterval(() => progress("tick"), 2000);
    closers.push(() => clearInterval(ticker));
    const drainDeadline = started + settings.drainTimeoutMs;
    for (const [i, fraction] of plan.killAt.entries()) {
      // Wait for the moment: enough jobs decided, and a batch running in a container right now.
      let finished = false;
      for (;;) {
        if (Date.now() > drainDeadline) break;
        // Each generation does some work before it dies (no crash loop), and dies mid-batch.
        const worked = current.runner.stats().invocations >= settings.maxConcurrency;
        if (worked && decidedIds.size >= fraction * plan.jobs.length && current.pool.busy > 0) break;
        if (decidedIds.size >= plan.jobs.length && (await isIdle())) {
          finished = true;
          break;
        }
        await sleep(5);
      }
      if (finished || Date.now() > drainDeadline) break;

      const victim = current;
      const reportsBefore = reports.length;
      let mode = plan.killModes[i] ?? "mid_invocation";
      let deletesDropped = 0;
      if (mode === "before_delete") {
        // Die between a handler's answer and the delete of what it acknowledged: the work is done
        // (withdrawals, DLQ sends) but SQS is never told, so those messages come back.
        const trigger = await new Promise<InvocationReport | undefined>((resolve) => {
          const timer = setTimeout(() => resolve(undefined), 10_000);
          victim.armed = (report) => {
            clearTimeout(timer);
            victim.killed = true;
            victim.killSwitch();
            resolve(report);
          };
        });
        victim.armed = undefined;
        if (trigger) deletesDropped = trigger.succeeded.length;
        else mode = "mid_invocation";
      }
      const killedAt = Date.now();
      const decidedAtKill = decidedIds.size / plan.jobs.length;
      const invocationsKilled = victim.pool.busy;
      // Abruptly, in this order: the event source's SQS calls start failing (a delete or visibility
      // extension on the wire is dropped), its pollers stop (without waiting for anything), and the
      // containers are terminated whatever they are doing (an SCM call, a DLQ send).
      victim.killed = true;
      victim.killSwitch();
      victim.stopped = victim.runner.stop();
      await victim.pool.kill();
      await sleep(plan.downtimeMs[i] ?? 0);
      current = await startGeneration(i + 1 < plan.killAt.length);
      await victim.stopped;
      const killedReports = reports
        .slice(reportsBefore)
        .filter((r) => r.outcome === "error" && r.error?.includes("was killed"));
      const kill: KillEvent = {
        number: i + 1,
        mode,
        deletesDropped,
        atMs: killedAt - started,
        decided: decidedAtKill,
        invocationsKilled,
        recordsKilled: killedReports.reduce((sum, r) => sum + r.messageIds.length, 0),
        sqsCallsLost: victim.lostSqsCalls,
        restartMs: Date.now() - killedAt,
      };
      kills.push(kill);
      progress("kill", kill);
    }

    // ---- drain ----
    for (let idleLooks = 0; idleLooks < 2; ) {
      if (Date.now() > drainDeadline) break;
      idleLooks = (await isIdle()) ? idleLooks + 1 : 0;
      await sleep(100);
    }
    const elapsedMs = elapsed();
    clearInterval(ticker);
    progress("drained");
    await current.runner.stop();
    current.stopped = Promise.resolve();
    lag.disable();

    // ---- reconcile ----
    const [deadLetters, leftovers] = await Promise.all([queues.messages("dlq"), queues.messages("queue")]);

    const runnerStats = sumRunnerStats(generations.map((g) => g.runner.stats()));
    const report = reconcile({
      plan,
      sim,
      messageIdOf,
      deadLetters,
      leftovers,
      events,
      reports,
      kills,
      runner: runnerStats,
      faultsPlanned,
      handlerErrors,
      elapsedMs,
      eventLoopDelayMs: { p99: lag.percentile(99) / 1e6, max: lag.max / 1e6 },
    });
    return report;
  } finally {
    for (const close of closers.splice(0).reverse()) {
      try {
        await close();
      } catch {
        // Best effort: one failing closer must not keep the others open.
      }
    }
  }
}

function sumRunnerStats(all: RunnerStats[]): RunnerStats {
  const total: RunnerStats = {
    invocations: 0,
    records: 0,
    redeliveries: 0,
    byOutcome: { success: 0, partial: 0, error: 0, timeout: 0, invalid_response: 0 },
    inFlight: 0,
    queueErrors: 0,
  };
  for (const stats of all) {
    total.invocations += stats.invocations;
    total.records += stats.records;
    total.redeliveries += stats.redeliveries;
    total.inFlight += stats.inFlight;
    total.queueErrors += stats.queueErrors;
    for (const key of Object.keys(total.byOutcome) as (keyof RunnerStats["byOutcome"])[])
      total.byOutcome[key] += stats.byOutcome[key];
  }
  return total;
}

// ---------------------------------------------------------------------------------------------
// Reconciliation
// ---------------------------------------------------------------------------------------------

interface ReconcileInput {
  plan: ChaosPlan;
  sim: ScmSimulator;
  messageIdOf: Map<number, string>;
  deadLetters: InspectedMessage[];
  leftovers: InspectedMessage[];
  events: Map<string, string[]>;
  reports: InvocationReport[];
  kills: KillEvent[];
  runner: RunnerStats;
  faultsPlanned: number;
  handlerErrors: Record<string, number>;
  elapsedMs: number;
  eventLoopDelayMs: { p99: number; max: number };
}

/**
 * Decides where each job ended, from evidence outside the worker wherever possible: the DLQ's
 * messages (matched by body, which the worker keeps byte for byte), the simulator's certificates
 * (withdrawn = SCM performed the withdrawal), the queue's leftovers, and, for certificates that were
 * already withdrawn before the run (nothing changes in SCM), the handler's acknowledgement line.
 */
function reconcile(input: ReconcileInput): ChaosReport {
  const { plan, sim } = input;
  const byBody = new Map(plan.jobs.map((job) => [job.body, job]));
  const discrepancies: Discrepancy[] = [];

  // Kills per message: deliveries that were in a killed batch.
  const killedDeliveries = new Map<string, number>();
  for (const r of input.reports) {
    if (r.outcome !== "error" || !r.error?.includes("was killed")) continue;
    for (const id of r.messageIds) killedDeliveries.set(id, (killedDeliveries.get(id) ?? 0) + 1);
  }
  const deliveries = new Map<string, number[]>();
  for (const r of input.reports) {
    for (const [i, id] of r.messageIds.entries())
      deliveries.set(id, [...(deliveries.get(id) ?? []), r.receiveCounts[i] ?? 0]);
  }

  // The DLQ, by job.
  const lettersOf = new Map<number, InspectedMessage[]>();
  let duplicateDeadLetters = 0;
  for (const letter of input.deadLetters) {
    const job = byBody.get(letter.body);
    if (!job) {
      discrepancies.push({
        kind: "unexpected_dead_letter",
        job: undefined,
        actual: undefined,
        evidence: `a DLQ message matching no job: ${letter.body.slice(0, 120)}`,
      });
      continue;
    }
    const list = lettersOf.get(job.index) ?? [];
    if (list.length > 0) duplicateDeadLetters += 1;
    list.push(letter);
    lettersOf.set(job.index, list);
  }
  const queued = new Set(input.leftovers.map((m) => m.body));
  /** The handler's last acknowledgement of the message, if any. */
  const acknowledgement = (jobEvents: string[]): "withdrawn" | "already_withdrawn" | undefined => {
    for (const e of [...jobEvents].reverse()) {
      if (e.startsWith("succeeded@")) return "withdrawn";
      if (e.startsWith("already_withdrawn@")) return "already_withdrawn";
    }
    return undefined;
  };

  const actual = Object.fromEntries(
    [...OUTCOME_ORDER, REDRIVE_POLICY_REASON, "still_queued", "lost"].map((o) => [o, 0]),
  ) as Record<ActualOutcome, number>;
  let recoveredAsAlreadyWithdrawn = 0;
  let redriveExplainedByKills = 0;
  const initialStatus = new Map(plan.certificates.map((c) => [c.id, c.status]));

  for (const job of plan.jobs) {
    const messageId = input.messageIdOf.get(job.index);
    const letters = lettersOf.get(job.index) ?? [];
    const certificate = job.certificateId ? sim.certificate(job.certificateId) : undefined;
    const before = job.certificateId === undefined ? undefined : initialStatus.get(job.certificateId);
    const wasUnderReview = before === "CHECKING";
    const wasWithdrawnBefore = before === "PAID" || before === "CANCELCHECKING";
    const jobEvents = messageId ? (input.events.get(messageId) ?? []) : [];
    const kills = messageId ? (killedDeliveries.get(messageId) ?? 0) : 0;

    // A message leaves the queue only when the runner deletes it after the handler acknowledged it
    // (its outcome line arrives before its result), or when it is dead-lettered: so a job is
    // withdrawn when the handler acknowledged it AND SCM shows the withdrawal.
    let outcome: ActualOutcome;
    const ack = acknowledgement(jobEvents);
    if (letters.length > 0) {
      const reasons = new Set(letters.map(deadLetterReason));
      outcome = (reasons.size === 1 ? [...reasons][0] : [...reasons].join("+")) as ActualOutcome;
    } else if (queued.has(job.body)) {
      outcome = "still_queued";
    } else if (ack === undefined) {
      outcome = "lost";
    } else if (wasUnderReview) {
      // Acknowledged, but an application SCM never withdrew is still under review: lost.
      outcome =
        certificate?.status === "CANCELCHECKING" && sim.withdrawals(job.certificateId!) >= 1 ? "withdrawn" : "lost";
    } else if (wasWithdrawnBefore) {
      outcome = certificate?.status === initialStatus.get(job.certificateId!) ? "already_withdrawn" : "lost";
    } else {
      outcome = ack; // acknowledged although it should have been dead-lettered
    }
    actual[outcome] = (actual[outcome] ?? 0) + 1;

    const evidence = () =>
      [
        `request_id ${job.requestId}`,
        `message ${messageId ?? "?"}`,
        `plan: ${job.description}`,
        job.certificateId
          ? `SCM: ${certificate ? `${certificate.status}, ${sim.withdrawals(job.certificateId)} withdrawal(s)` : "unknown certificate"}`
          : "",
        `receives: [${(messageId ? deliveries.get(messageId) : undefined)?.join(", ") ?? ""}]`,
        `killed in ${kills} batch(es)`,
        `handler: ${jobEvents.join(" → ") || "no outcome line"}`,
        letters.length > 0
          ? `DLQ: ${letters.map((l) => `${deadLetterReason(l)} (http ${l.messageAttributes?.http_status?.StringValue ?? "-"}, ${l.messageAttributes?.error_code?.StringValue ?? "-"}, receive ${l.messageAttributes?.receive_count?.StringValue ?? "-"})`).join("; ")}`
          : "",
      ]
        .filter(Boolean)
        .join("; ");

    if (outcome === job.expected) {
      if (outcome === "withdrawn" && jobEvents.some((e) => e.startsWith("already_withdrawn@")))
        recoveredAsAlreadyWithdrawn += 1;
      continue;
    }
    // The queue's own safety net may move a still-failing job whose last receives kills wasted.
    if (outcome === REDRIVE_POLICY_REASON && job.expected === "retries_exhausted" && kills >= REDRIVE_MARGIN) {
      redriveExplainedByKills += 1;
      continue;
    }
    const expectedToSucceed = job.expected === "withdrawn" || job.expected === "already_withdrawn";
    const kind: Discrepancy["kind"] =
      outcome === "lost"
        ? "lost"
        : outcome === "still_queued"
          ? "still_queued"
          : expectedToSucceed && letters.length > 0
            ? "wrongly_dead_lettered"
            : !expectedToSucceed && letters.length > 0
              ? "wrong_reason"
              : "wrongly_acknowledged";
    discrepancies.push({ kind, job, actual: outcome, evidence: evidence() });
  }

  // No application may be withdrawn twice, whatever the jobs say.
  let doubleWithdrawals = 0;
  for (const id of new Set(plan.jobs.map((j) => j.certificateId).filter((id): id is string => id !== undefined))) {
    const count = sim.withdrawals(id);
    if (count > 1) {
      doubleWithdrawals += 1;
      discrepancies.push({
        kind: "double_withdrawal",
        job: plan.jobs.find((j) => j.certificateId === id),
        actual: undefined,
        evidence: `${id} withdrawn ${count} times`,
      });
    }
  }

  const calls = sim.calls.filter((c) => c.kind === "cancel" || c.kind === "detail");
  return {
    plan,
    ok: discrepancies.length === 0,
    expected: expectedCounts(plan),
    actual,
    recoveredAsAlreadyWithdrawn,
    redriveExplainedByKills,
    duplicateDeadLetters,
    doubleWithdrawals,
    discrepancies,
    kills: input.kills,
    runner: input.runner,
    scmCalls: calls.length,
    faultsUsed: calls.filter((c) => c.fault !== undefined).length,
    faultsPlanned: input.faultsPlanned,
    faultsUnused: sim.pendingFaults(),
    handlerErrors: input.handlerErrors,
    eventLoopDelayMs: input.eventLoopDelayMs,
    elapsedMs: input.elapsedMs,
    jobsPerSecond: plan.jobs.length / (input.elapsedMs / 1000),
  };
}

// ---------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------

/** What the plan contains, for the start of a run: jobs per profile, faults per kind. */
export function formatPlan(plan: ChaosPlan): string {
  const perProfile = new Map<Profile, number>();
  const perFault = new Map<string, number>();
  for (const job of plan.jobs) {
    perProfile.set(job.profile, (perProfile.get(job.profile) ?? 0) + 1);
    for (const fault of job.faults) perFault.set(fault.label, (perFault.get(fault.label) ?? 0) + 1);
    if (job.persistent) perFault.set(job.persistent.label, (perFault.get(job.persistent.label) ?? 0) + 1);
  }
  const profiles = PROFILES.filter((p) => perProfile.has(p))
    .map((p) => `${p} ${perProfile.get(p)}`)
    .join(", ");
  const faultList = [...perFault.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([label, n]) => `${label} ${n}`)
    .join(", ");
  return `jobs by profile: ${profiles}\nfaults injected: ${faultList}`;
}

/** The accounting table: expected vs actual per outcome, then the invariants and the run's figures. */
export function formatAccounting(report: ChaosReport): string {
  const { expected, actual, plan } = report;
  const deadLetterReasons = OUTCOME_ORDER.filter((o) => o !== "withdrawn" && o !== "already_withdrawn");
  const expectedDlq = deadLetterReasons.reduce((sum, r) => sum + expected[r], 0);
  const actualDlq = deadLetterReasons.reduce((sum, r) => sum + (actual[r] ?? 0), 0) + actual[REDRIVE_POLICY_REASON];
  const count = (kind: Discrepancy["kind"]) => report.discrepancies.filter((d) => d.kind === kind).length;
  const check = (value: number) => (value === 0 ? "ok" : "FAIL");

  const rows: [string, string, string, string][] = [
    ["outcome", "expected", "actual", ""],
    [
      "withdrawn (SCM withdrew it)",
      `${expected.withdrawn}`,
      `${actual.withdrawn}`,
      expected.withdrawn === actual.withdrawn ? "ok" : "FAIL",
    ],
    [
      "  acknowledged as already withdrawn",
      "",
      `${report.recoveredAsAlreadyWithdrawn}`,
      "(answer lost, batch killed, or a duplicate job)",
    ],
    [
      "already withdrawn before the run",
      `${expected.already_withdrawn}`,
      `${actual.already_withdrawn}`,
      expected.already_withdrawn === actual.already_withdrawn ? "ok" : "FAIL",
    ],
    ["dead-lettered (jobs in the DLQ)", `${expectedDlq}`, `${actualDlq}`, expectedDlq === actualDlq ? "ok" : "FAIL"],
    ...deadLetterReasons
      .filter((r) => expected[r] > 0 || (actual[r] ?? 0) > 0)
      .map((r): [string, string, string, string] => [
        `  ${r}`,
        `${expected[r]}`,
        `${actual[r] ?? 0}`,
        expected[r] === (actual[r] ?? 0) ? "ok" : "FAIL",
      ]),
    ...(actual[REDRIVE_POLICY_REASON] > 0
      ? [
          [
            `  moved by the redrive policy`,
            "0",
            `${actual[REDRIVE_POLICY_REASON]}`,
            `${report.redriveExplainedByKills} explained by kills`,
          ] as [string, string, string, string],
        ]
      : []),
    ["lost", "0", `${count("lost")}`, check(count("lost"))],
    ["still on the queue", "0", `${count("still_queued")}`, check(count("still_queued"))],
    ["wrongly dead-lettered", "0", `${count("wrongly_dead_lettered")}`, check(count("wrongly_dead_lettered"))],
    ["dead-lettered with a wrong reason", "0", `${count("wrong_reason")}`, check(count("wrong_reason"))],
    [
      "acknowledged instead of dead-lettered",
      "0",
      `${count("wrongly_acknowledged")}`,
      check(count("wrongly_acknowledged")),
    ],
    ["DLQ messages matching no job", "0", `${count("unexpected_dead_letter")}`, check(count("unexpected_dead_letter"))],
    ["double withdrawals", "0", `${report.doubleWithdrawals}`, check(report.doubleWithdrawals)],
    [
      "duplicate DLQ copies of one job",
      "",
      `${report.duplicateDeadLetters}`,
      "(killed after its DLQ send: at-least-once)",
    ],
  ];
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
  const table = rows.map(([label, exp, act, note]) =>
    `  ${label.padEnd(widths[0]!)}  ${exp.padStart(widths[1]!)}  ${act.padStart(widths[2]!)}  ${note}`.trimEnd(),
  );

  const { runner, kills } = report;
  const killed = kills.reduce((sum, k) => sum + k.invocationsKilled, 0);
  const killedRecords = kills.reduce((sum, k) => sum + k.recordsKilled, 0);
  const lostCalls = kills.reduce((sum, k) => sum + k.sqsCallsLost, 0);
  const dropped = kills.reduce((sum, k) => sum + k.deletesDropped, 0);
  const midway = kills.filter((k) => k.mode === "mid_invocation").length;
  const restart =
    kills.length > 0
      ? `; restarts took ${Math.min(...kills.map((k) => k.restartMs))} to ${Math.max(...kills.map((k) => k.restartMs))} ms`
      : "";
  const figures = [
    `  kills / restarts            ${kills.length} / ${kills.length} (planned ${plan.killAt.length}; ${midway} mid-invocation, ${kills.length - midway} between an answer and its delete)`,
    `  lost to the kills           ${killed} batches terminated in their containers (${killedRecords} records), ${dropped} acknowledged records whose delete never happened, ${lostCalls} SQS calls dropped${restart}`,
    `  deliveries                  ${runner.records} in ${runner.invocations} batches (${runner.redeliveries} redeliveries); batches: ${runner.byOutcome.success} success, ${runner.byOutcome.partial} partial, ${runner.byOutcome.error} killed/failed, ${runner.byOutcome.timeout} timed out`,
    `  SCM                         ${report.scmCalls} calls, ${report.faultsUsed} answered with an injected fault (${report.faultsPlanned} one-shot faults planned, ${report.faultsUnused} never reached; the rest persistent)`,
    `  handler error lines         ${
      Object.entries(report.handlerErrors)
        .map(([event, n]) => `${event} ${n}`)
        .join(", ") || "none"
    }`,
    `  elapsed                     ${(report.elapsedMs / 1000).toFixed(1)} s from the first enqueue to an empty queue: ${report.jobsPerSecond.toFixed(0)} jobs/s`,
    `  event-loop delay            p99 ${report.eventLoopDelayMs.p99.toFixed(0)} ms, max ${report.eventLoopDelayMs.max.toFixed(0)} ms (SQS, simulator and runner share one thread)`,
  ];
  return [
    ...table,
    "",
    ...figures,
    "",
    report.ok ? "RESULT: every job accounted for" : `RESULT: FAILED (${report.discrepancies.length} discrepancies)`,
  ].join("\n");
}

/** The discrepancies, one line each with their evidence (at most `limit`). */
export function formatDiscrepancies(report: ChaosReport, limit = 20): string {
  const lines = report.discrepancies
    .slice(0, limit)
    .map((d) => `  ${d.kind}: expected ${d.job?.expected ?? "-"}, got ${d.actual ?? "-"}; ${d.evidence}`);
  if (report.discrepancies.length > limit) lines.push(`  ... and ${report.discrepancies.length - limit} more`);
  return lines.join("\n");
}
