/**
 * Property-based tests of the REAL handler (`handlers/withdraw.ts`), its real SDK clients talking to
 * fauxqs and the Secrets Manager endpoint, and the SCM simulator over HTTP:
 *
 * - over message bodies (any string, any JSON, objects with random fields and near-valid ids), and
 * - over SCM answers (any status 100-599, any body: JSON errors, broken JSON, HTML, empty, huge,
 *   slow drips, resets, hangs), injected per certificate, once or for every call,
 *
 * the handler never throws, every record gets exactly one outcome (the response, the DLQ, the log
 * lines and the metrics all agree on it), a record is withdrawn only when SCM answered 200 with the
 * documented success body (or the status check said it already was), the outcome is the one the
 * outcome table of docs/contract.md gives, and no secret is printed, not even when SCM echoes the token back.
 */
import type { Message } from "@aws-sdk/client-sqs";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { faults, type Fault } from "../../local/scm-simulator.ts";
import { ERROR_CODES, ruleFor } from "../../lib/classify.ts";
import { parseWithdrawalBody } from "../../lib/message.ts";
import { lambdaContext, sqsEvent, sqsRecord } from "../support/lambda.ts";
import { capturedOutput } from "../support/secret-guard.ts";
import { TEST_TOKEN } from "../support/secrets.ts";
import { attributesOf, SECRET_ID, startStack, type Stack } from "../support/stack.ts";

type Handler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;

/** Small limits keep a run short: hangs and drips cost SCM_TIMEOUT_MS × MAX_ATTEMPTS at most. */
const MAX_ATTEMPTS = 2;
const MAX_RECEIVE_COUNT = 3;
const ENV = {
  SCM_TIMEOUT_MS: "300",
  MAX_ATTEMPTS: String(MAX_ATTEMPTS),
  RETRY_BASE_DELAY_MS: "1",
  RETRY_MAX_DELAY_MS: "5",
  MAX_RECEIVE_COUNT: String(MAX_RECEIVE_COUNT),
  BATCH_CONCURRENCY: "10",
  LOG_LEVEL: "info",
  // The 429s here are random answers, not a rate: an adaptive limiter would rightly slow down on them.
  SCM_RATE_LIMIT: "fixed",
};
/** The client's default cap on an answer body. */
const BODY_CAP = 64 * 1024;
/** Stands for the real token in generated SCM answers, so a printed counterexample never shows it. */
const TOKEN_MARK = "{{TOKEN}}";

const savedEnv = { ...process.env };
let stack: Stack;
let handler: Handler;
let run = 0;

beforeAll(async () => {
  stack = await startStack({ env: ENV });
  process.env = { ...savedEnv, ...stack.env };
  vi.resetModules();
  handler = (await import("../../handlers/withdraw.ts")).handler as unknown as Handler;
});
afterAll(async () => {
  process.env = savedEnv;
  await stack?.close();
});

// ---- outcomes -----------------------------------------------------------------------------------

type Outcome = "withdrawn" | "already" | "failed" | `dlq:${string}`;
const OUTCOME_EVENTS = [
  "withdrawal_succeeded",
  "withdrawal_already_withdrawn",
  "withdrawal_dead_lettered",
  "withdrawal_left_for_retry",
  "dead_letter_failed",
  "withdrawal_crashed",
];

interface RunResult {
  outcomes: Map<string, Outcome>;
  /** Per messageId, how many of its log lines name a timeout (retries and the final reason). */
  timeouts: Map<string, number>;
  lines: Record<string, unknown>[];
  letters: Message[];
}

/**
 * Runs one batch through the real handler and checks what must hold for any input: it resolves, and
 * the response, the DLQ, the log lines and the metrics give every record exactly one, consistent,
 * outcome. Returns each record's outcome.
 */
async function runBatch(records: SQSRecord[]): Promise<RunResult> {
  const offset = capturedOutput().length;
  const response = await handler(sqsEvent(...records), lambdaContext(30_000));
  const output = capturedOutput().slice(offset);
  const letters = await stack.drainDlq();

  // No secret in anything printed or dead-lettered.
  expect(output.includes(TEST_TOKEN), "the token was printed").toBe(false);
  expect(JSON.stringify(letters).includes(TEST_TOKEN), "the token reached the DLQ").toBe(false);

  const ids = records.map((r) => r.messageId);
  const failed = response.batchItemFailures.map((f) => f.itemIdentifier);
  expect(new Set(failed).size, "a record is reported twice").toBe(failed.length);
  for (const id of failed) expect(ids).toContain(id);

  const lettered = letters.map((l) => attributesOf(l).source_message_id!);
  expect(new Set(lettered).size, "a record is dead-lettered twice").toBe(lettered.length);
  for (const id of lettered) expect(ids).toContain(id);
  for (const id of failed) expect(lettered, "a record is both failed and dead-lettered").not.toContain(id);
  for (const letter of letters) {
    const record = records.find((r) => r.messageId === attributesOf(letter).source_message_id)!;
    // An empty body (which SQS refuses) travels as its JSON, `""`, and says so; any other, byte for byte.
    const encoded = attributesOf(letter).body_encoding === "json";
    expect(letter.Body, "the DLQ body is the original body, byte for byte").toBe(
      encoded ? JSON.stringify(record.body) : record.body,
    );
    if (encoded) expect(record.body).toBe("");
  }

  const lines = output
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const events = lines.filter((l) => typeof l.event === "string");
  expect(
    events.filter((l) => l.event === "batch_crashed" || l.event === "withdrawal_crashed"),
    "the worker crashed",
  ).toEqual([]);
  expect(events.filter((l) => l.event === "batch_processed")).toHaveLength(1);

  const outcomes = new Map<string, Outcome>();
  const timeouts = new Map<string, number>();
  for (const record of records) {
    const mine = events.filter((l) => l.messageId === record.messageId);
    const ends = mine.filter((l) => OUTCOME_EVENTS.includes(l.event as string));
    expect(
      ends.map((l) => l.event),
      `record ${JSON.stringify(record.body).slice(0, 200)} needs exactly one outcome line`,
    ).toHaveLength(1);
    const end = ends[0]!;
    const isFailed = failed.includes(record.messageId);
    const letter = letters.find((l) => attributesOf(l).source_message_id === record.messageId);
    let outcome: Outcome;
    switch (end.event) {
      case "withdrawal_succeeded":
      case "withdrawal_already_withdrawn":
        outcome = end.event === "withdrawal_succeeded" ? "withdrawn" : "already";
        expect(isFailed || letter !== undefined, `${outcome} but not acknowledged`).toBe(false);
        break;
      case "withdrawal_dead_lettered":
        outcome = `dlq:${String(end.reason)}`;
        expect(isFailed).toBe(false);
        expect(letter && attributesOf(letter).failure_reason, "the log and the DLQ disagree on the reason").toBe(
          end.reason,
        );
        break;
      default:
        outcome = "failed";
        expect(isFailed, `${String(end.event)} but not in batchItemFailures`).toBe(true);
        expect(letter).toBeUndefined();
    }
    outcomes.set(record.messageId, outcome);
    timeouts.set(record.messageId, mine.filter((l) => l.reason === "timeout" || l.lastReason === "timeout").length);
  }

  // The metrics say the same as the lines.
  const emf = lines.filter((l) => l._aws !== undefined);
  const main = emf.find((l) => "Withdrawn" in l)!;
  const count = (o: (x: Outcome) => boolean) => [...outcomes.values()].filter(o).length;
  expect(main).toMatchObject({
    Withdrawn: count((o) => o === "withdrawn"),
    AlreadyWithdrawn: count((o) => o === "already"),
    DeadLettered: count((o) => o.startsWith("dlq:")),
    LeftForRetry: count((o) => o === "failed"),
  });
  for (const doc of emf.filter((l) => l.FailureReason !== undefined)) {
    expect(doc.DeadLettered).toBe(count((o) => o === `dlq:${String(doc.FailureReason)}`));
  }
  return { outcomes, timeouts, lines: events, letters };
}

// ---- certificates -------------------------------------------------------------------------------

type CertState = "CHECKING" | "PAID" | "ISSUED" | "unknown" | "forbidden";
/** What a normal SCM does with a job for a certificate in this state (the outcome table). */
const NORMAL: Record<CertState | "CANCELCHECKING", Outcome> = {
  CHECKING: "withdrawn",
  CANCELCHECKING: "already",
  PAID: "already",
  ISSUED: "dlq:rejected",
  unknown: "dlq:not_found",
  forbidden: "dlq:forbidden",
};
/** The state after the simulator processed a cancel-cert (an `afterEffect` fault or a drip). */
const after = (state: CertState) => (state === "CHECKING" ? "CANCELCHECKING" : state);

function addCertificate(id: string, state: CertState): void {
  if (state === "unknown") return;
  if (state === "forbidden") stack.sim.addCertificate({ id, status: "CHECKING", forbidden: true });
  else stack.sim.addCertificate({ id, status: state });
}

async function freshRun(): Promise<number> {
  run += 1;
  stack.sim.reset({ certificates: true });
  stack.secrets.recover();
  stack.secrets.setSecret(SECRET_ID, TEST_TOKEN);
  return run;
}

// ---- property 1: message bodies -----------------------------------------------------------------

const KNOWN: Record<string, CertState> = {
  propCHECKING0001: "CHECKING",
  propPAID00000001: "PAID",
  propISSUED000001: "ISSUED",
  propFORBIDDEN001: "forbidden",
};

const alnum16 = fc.stringMatching(/^[A-Za-z0-9]{16}$/);
const nearValidId = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...Object.keys(KNOWN)) },
  { weight: 2, arbitrary: alnum16 },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9]{15}$/) },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9]{17}$/) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(
        alnum16,
        fc.integer({ min: 0, max: 15 }),
        fc.constantFrom("/", ".", "%", "?", "#", " ", "\u0000", "\n", "é", "-", "_", "\u202e"),
      )
      .map(([id, at, c]) => id.slice(0, at) + c + id.slice(at + 1)),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      "../../etc/passwd",
      "%2e%2e%2fcancel-cert",
      "scs1000000000001/../x",
      "SCS1000000000001 ",
      "",
    ),
  },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }) },
);
const looseString = fc.oneof(
  fc.string({ maxLength: 140 }),
  fc.string({ unit: "binary", maxLength: 20 }),
  fc.jsonValue({ maxDepth: 1 }),
);
const jobObject = fc
  .tuple(
    fc.record(
      {
        certificate_id: nearValidId,
        request_id: looseString,
        source: fc.oneof(fc.constantFrom("manual", "bulk", "cleanup"), looseString),
        batch_id: looseString,
        reason: fc.oneof(fc.string({ maxLength: 300 }), looseString),
        requested_at: fc.oneof(
          fc.date({ noInvalidDate: true, min: new Date(0), max: new Date(4e12) }).map((d) => d.toISOString()),
          looseString,
        ),
      },
      { requiredKeys: [] },
    ),
    fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }),
  )
  .map(([job, extra]) => ({ ...extra, ...job }));
const body = fc.oneof(
  { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 200 }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 100 }) },
  { weight: 2, arbitrary: fc.json({ maxDepth: 3 }) },
  { weight: 6, arbitrary: jobObject.map((o) => JSON.stringify(o)) },
  { weight: 1, arbitrary: jobObject.map((o) => JSON.stringify(o).slice(0, -1)) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      "",
      " ",
      "null",
      "[]",
      "{}",
      '"propCHECKING0001"',
      '{"certificate_id":"propCHECKING0001"} trailing',
    ),
  },
);
/**
 * Bodies the local DLQ surely stores: printable ASCII and whitespace, not empty. SQS refuses empty
 * bodies and some control characters; fauxqs 1.9.2 also refuses characters outside the BMP (emoji),
 * which real SQS accepts.
 */
const storable = (text: string) => text !== "" && /^[\t\n\r\x20-\x7e]*$/.test(text);

describe("the handler, over any message body", () => {
  it("never throws, gives every record exactly one outcome, and calls SCM only for valid jobs", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(body, { minLength: 1, maxLength: 10 }), async (bodies) => {
        await freshRun();
        for (const [id, state] of Object.entries(KNOWN)) addCertificate(id, state);
        const records = bodies.map((b) => sqsRecord(b));
        const { outcomes, lines } = await runBatch(records);

        const validIds = new Set<string>();
        for (const record of records) {
          const parsed = parseWithdrawalBody(record.body);
          const outcome = outcomes.get(record.messageId);
          if (parsed.ok) validIds.add(parsed.request.certificate_id);
          const expected = parsed.ok
            ? NORMAL[KNOWN[parsed.request.certificate_id] ?? "unknown"]
            : "dlq:invalid_message";
          if (outcome === "failed" && expected.startsWith("dlq:") && !storable(record.body)) {
            // A body the local queue cannot store (empty, or characters fauxqs refuses): the DLQ send
            // fails, so the record goes back to the queue rather than being lost.
            const end = lines.find(
              (l) => l.messageId === record.messageId && OUTCOME_EVENTS.includes(l.event as string),
            )!;
            expect(end).toMatchObject({ event: "dead_letter_failed", reason: expected.slice("dlq:".length) });
          } else {
            expect(outcome, `${parsed.ok ? "valid job" : "invalid body"} ${JSON.stringify(record.body)}`).toBe(
              expected,
            );
          }
        }
        // SCM only ever heard of certificates from valid jobs, once per certificate per batch.
        for (const call of stack.sim.calls) expect(validIds).toContain(call.certificateId);
        for (const id of validIds)
          expect(
            stack.sim.calls.filter((c) => c.kind === "cancel" && c.certificateId === id).length,
          ).toBeLessThanOrEqual(1);
      }),
      { numRuns: 40, endOnFailure: true },
    );
  });
});

// ---- property 2: SCM answers --------------------------------------------------------------------

type BodySpec =
  | { kind: "none" }
  | { kind: "error"; code: string; msg: string }
  | { kind: "raw"; text: string }
  | { kind: "json"; value: unknown };
type FaultSpec =
  | { kind: "answer"; status: number; body: BodySpec; retryAfter: string | undefined }
  | { kind: "reset" | "hang"; afterEffect: boolean }
  | { kind: "huge"; bytes: number; status: number; chunked: boolean; afterEffect: boolean }
  | { kind: "drip"; bytesPerSecond: number; padTo: number | undefined }
  | { kind: "delay"; ms: number };
interface CertPlan {
  state: CertState;
  mode: "once" | "always";
  fault: FaultSpec;
}

const status = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(200, 201, 204, 400, 401, 403, 404, 408, 409, 429, 500, 502, 503, 504) },
  { weight: 3, arbitrary: fc.integer({ min: 200, max: 599 }) },
  { weight: 1, arbitrary: fc.integer({ min: 300, max: 399 }) },
  { weight: 1, arbitrary: fc.integer({ min: 100, max: 199 }) },
);
const errorCode = fc.oneof(
  fc.constantFrom(...Object.keys(ERROR_CODES), "APIG.0202", "APIGW.0301", "SCM.0500", "SCM.0017"),
  fc.string({ maxLength: 20 }),
);
const errorMsg = fc.oneof(
  { weight: 3, arbitrary: fc.string({ maxLength: 80 }) },
  { weight: 1, arbitrary: fc.string({ minLength: 1000, maxLength: 1500 }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      `Incorrect IAM authentication information: ${TOKEN_MARK}`,
      `X-Auth-Token: ${TOKEN_MARK} rejected`,
    ),
  },
);
const bodySpec: fc.Arbitrary<BodySpec> = fc.oneof(
  { weight: 2, arbitrary: fc.constant({ kind: "none" as const }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant("error" as const), code: errorCode, msg: errorMsg }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("raw" as const),
      text: fc.oneof(
        fc.constantFrom(
          '{"error_code":"SCM.0500","error_msg":',
          "<html><body><h1>502 Bad Gateway</h1></body></html>",
          "",
          "null",
          `{"error_code":"${TOKEN_MARK}"}`,
        ),
        fc.string({ maxLength: 100 }),
      ),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("json" as const), value: fc.jsonValue({ maxDepth: 2 }) }) },
);
const faultSpec: fc.Arbitrary<FaultSpec> = fc.oneof(
  {
    weight: 10,
    arbitrary: fc.record({
      kind: fc.constant("answer" as const),
      status,
      body: bodySpec,
      retryAfter: fc.constantFrom(undefined, undefined, "0", "0.001", "soon", "-1", "Wed, 21 Oct 2015 07:28:00 GMT"),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constantFrom("reset" as const, "hang" as const), afterEffect: fc.boolean() }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("huge" as const),
      bytes: fc.constantFrom(BODY_CAP - 2048, 1_000_000, 5_000_000),
      status: fc.oneof(fc.constantFrom(200, 500, 503), fc.integer({ min: 200, max: 599 })),
      chunked: fc.boolean(),
      afterEffect: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("drip" as const),
      bytesPerSecond: fc.constantFrom(20, 200, 20_000),
      padTo: fc.constantFrom(undefined, 100, 2000),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("delay" as const), ms: fc.integer({ min: 0, max: 40 }) }) },
);
const certPlan: fc.Arbitrary<CertPlan> = fc.record({
  state: fc.constantFrom<CertState>("CHECKING", "CHECKING", "CHECKING", "PAID", "ISSUED", "unknown", "forbidden"),
  mode: fc.constantFrom("once" as const, "always" as const),
  fault: faultSpec,
});

const withToken = (text: string) => text.split(TOKEN_MARK).join(TEST_TOKEN);
function toFault(spec: FaultSpec): Fault {
  switch (spec.kind) {
    case "answer": {
      const headers = spec.retryAfter === undefined ? undefined : { "retry-after": spec.retryAfter };
      const b = spec.body;
      const payload =
        b.kind === "none"
          ? undefined
          : b.kind === "error"
            ? { error_code: withToken(b.code), error_msg: withToken(b.msg) }
            : b.kind === "raw"
              ? withToken(b.text)
              : b.value;
      return faults.answer(spec.status, payload, headers);
    }
    case "reset":
      return faults.reset({ afterEffect: spec.afterEffect });
    case "hang":
      return faults.hang({ afterEffect: spec.afterEffect });
    case "huge":
      return faults.huge(spec.bytes, { status: spec.status, chunked: spec.chunked, afterEffect: spec.afterEffect });
    case "drip":
      return faults.drip(spec.bytesPerSecond, spec.padTo === undefined ? {} : { padTo: spec.padTo });
    case "delay":
      return faults.delay(spec.ms);
  }
}

/** The `error_code` the client sees in an answer body (what `scm-client.ts` parses), if any. */
function codeSeen(spec: Extract<FaultSpec, { kind: "answer" }>): string | undefined {
  if (spec.status === 204 || spec.status === 304) return undefined; // no body on the wire
  const b = spec.body;
  if (b.kind === "none") return undefined;
  if (b.kind === "error") return withToken(b.code);
  let parsed: unknown = b.kind === "json" ? b.value : undefined;
  if (b.kind === "raw") {
    try {
      parsed = JSON.parse(withToken(b.text));
    } catch {
      return undefined;
    }
  } else if (typeof b.value === "string") {
    // A string body goes on the wire as-is, not as a JSON string.
    try {
      parsed = JSON.parse(b.value);
    } catch {
      return undefined;
    }
  }
  const code =
    typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>).error_code
      : undefined;
  return typeof code === "string" ? code : undefined;
}

type Kind =
  | "ok"
  | "unexpected"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "check"
  | "rejected"
  | "transient"
  | "informational";
/**
 * The outcome table (docs/contract.md) for one answer: status, `error_code` (the code table first, except under
 * 401), and for a 2xx whether the body is cancel-cert's documented success (`success`).
 */
function kindOf(statusCode: number, code: string | undefined, success = false): Kind {
  if (statusCode < 200) return "informational";
  if (statusCode === 401) return "unauthorized";
  const rule = ruleFor(code);
  if (rule?.decision === "retry") return "transient";
  if (rule?.decision === "check-status") return "check";
  if (rule?.decision === "dead-letter") return rule.reason === "unauthorized" ? "unauthorized" : rule.reason;
  if (statusCode < 300) return success && statusCode === 200 ? "ok" : "unexpected";
  if (statusCode === 403) return "forbidden";
  if (statusCode === 404) return "not_found";
  if (statusCode === 408 || statusCode === 429 || statusCode >= 500) return "transient";
  return "rejected";
}

/**
 * The outcomes the outcome table allows for one record, given its certificate's state and fault plan.
 * `timeoutsSeen` widens the set when a call timed out that should not have (a loaded machine): that
 * is a transient failure like any other, and the table's answer to it is the transient row.
 */
function allowed(plan: CertPlan, receiveCount: number, timeoutsSeen: number): Set<Outcome> {
  const transient: Outcome = receiveCount >= MAX_RECEIVE_COUNT ? "dlq:retries_exhausted" : "failed";
  const unexpected: Outcome = receiveCount >= MAX_RECEIVE_COUNT ? "dlq:unexpected_answer" : "failed";
  const { state, mode, fault } = plan;
  const normal = NORMAL[state];
  const afterwards = NORMAL[after(state)];
  const once = mode === "once";
  const out = new Set<Outcome>();
  let expectedTimeouts = 0;

  const byKind = (kind: Kind, processed: boolean) => {
    const next = processed ? afterwards : normal;
    switch (kind) {
      case "ok":
        return out.add("withdrawn");
      case "unauthorized":
        return out.add(once ? next : "dlq:unauthorized");
      case "forbidden":
      case "not_found":
      case "rejected":
        return out.add(`dlq:${kind}`);
      case "check":
        // The status check reads the details: a one-shot fault is gone by then, a persistent one answers it too.
        return out.add(once && (state === "PAID" || processed) ? "already" : "dlq:rejected");
      case "transient":
        return out.add(once ? next : transient);
      case "unexpected":
        return out.add(once ? next : unexpected);
      case "informational":
        // A 1xx is no final answer: the call times out (or node hands over a bare 101, which is "rejected").
        expectedTimeouts = once ? 1 : Infinity;
        out.add("dlq:rejected");
        return out.add(once ? next : transient);
    }
  };

  switch (fault.kind) {
    case "answer":
      byKind(kindOf(fault.status, codeSeen(fault)), false);
      break;
    case "huge":
      // Under the cap the body is read: an error body's code (SCM.0500), or for a 200 the documented success.
      byKind(
        kindOf(
          fault.status,
          fault.bytes <= BODY_CAP && fault.status >= 300 ? "SCM.0500" : undefined,
          fault.bytes <= BODY_CAP,
        ),
        fault.afterEffect,
      );
      break;
    case "reset":
    case "hang":
      if (fault.kind === "hang") expectedTimeouts = once ? 1 : Infinity;
      out.add(once ? (fault.afterEffect ? afterwards : normal) : transient);
      break;
    case "drip":
      // The simulator processes the call, then drips the real answer: in time or not, depending on the rate.
      expectedTimeouts = once ? 1 : Infinity;
      out.add(normal).add(afterwards);
      if (!once) out.add(transient);
      break;
    case "delay":
      out.add(normal);
      break;
  }
  if (timeoutsSeen > expectedTimeouts) out.add(transient).add(afterwards);
  return out;
}

describe("the handler, over any SCM answer", () => {
  it("never throws, gives every record exactly one outcome, the one the outcome table gives, and prints no secret", async () => {
    const input = fc.record({
      plans: fc.array(certPlan, { minLength: 1, maxLength: 5 }),
      jobs: fc.array(fc.record({ cert: fc.nat(), receiveCount: fc.constantFrom(1, 1, 2, MAX_RECEIVE_COUNT) }), {
        minLength: 1,
        maxLength: 7,
      }),
    });
    await fc.assert(
      fc.asyncProperty(input, async ({ plans, jobs }) => {
        const n = await freshRun();
        const ids = plans.map((_, i) => `prop${String(n).padStart(6, "0")}${String(i).padStart(6, "0")}`);
        plans.forEach((plan, i) => {
          addCertificate(ids[i]!, plan.state);
          if (plan.mode === "once") stack.sim.inject(ids[i]!, toFault(plan.fault));
          else stack.sim.injectAlways(ids[i]!, toFault(plan.fault));
        });
        const records = jobs.map((job) => ({
          job,
          plan: plans[job.cert % plans.length]!,
          id: ids[job.cert % plans.length]!,
          record: sqsRecord({ certificate_id: ids[job.cert % plans.length]! }, { receiveCount: job.receiveCount }),
        }));
        const { outcomes, timeouts } = await runBatch(records.map((r) => r.record));

        for (const { job, plan, id, record } of records) {
          const outcome = outcomes.get(record.messageId)!;
          const calls = stack.sim.calls.filter((c) => c.certificateId === id);
          const expected = allowed(plan, job.receiveCount, timeouts.get(record.messageId) ?? 0);
          expect(
            [...expected],
            `certificate ${plan.state}, fault ${plan.mode} ${JSON.stringify(plan.fault)}, receive count ${job.receiveCount}; SCM answered ${JSON.stringify(calls.map((c) => `${c.kind} ${c.status}`))}`,
          ).toContain(outcome);
          // Withdrawn only when SCM said 200; already withdrawn only after a status check said so.
          if (outcome === "withdrawn") expect(calls.some((c) => c.kind === "cancel" && c.status === 200)).toBe(true);
          if (outcome === "already")
            expect(calls.some((c) => c.kind === "detail" && c.status >= 200 && c.status < 300)).toBe(true);
          // Left for retry only while receives remain; after that, the DLQ says why.
          if (outcome === "failed") expect(job.receiveCount).toBeLessThan(MAX_RECEIVE_COUNT);
        }
        expect(stack.sim.calls.filter((c) => c.kind === "cancel").length).toBeLessThanOrEqual(
          plans.length * (MAX_ATTEMPTS + 1),
        );
      }),
      { numRuns: 50, endOnFailure: true },
    );
  });
});
