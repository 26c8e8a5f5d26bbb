/**
 * Comparison 2: connection reuse. Measured during comparison 1's run (the same 1,000 calls): the
 * SCM simulator counts the TCP connections it accepted, so keep-alive shows as few connections for
 * many calls. The baseline is the Powertools handler's `fetch` (Node's built-in client).
 */
import type { ScmSimulator } from "../local/scm-simulator.ts";
import { fixed, type Section } from "./report.ts";

/** Connections per 1,000 cancel-cert calls the simulator received. */
export function connectionsPer1000(sim: ScmSimulator): { connections: number; calls: number; per1000: number } {
  const calls = sim.calls.filter((c) => c.kind === "cancel").length;
  const connections = sim.stats.connectionsOpened;
  return { connections, calls, per1000: calls === 0 ? Number.NaN : (connections / calls) * 1000 };
}

export function connectionReuseSection(
  ours: ScmSimulator,
  powertools: ScmSimulator,
  batchConcurrency: number,
): Section {
  const mine = connectionsPer1000(ours);
  const theirs = connectionsPer1000(powertools);
  return {
    title: "2. Connection reuse",
    rows: [
      {
        comparison: "2",
        metric: "connections opened per 1,000 calls",
        value: fixed(mine.per1000, 1),
        baseline: fixed(theirs.per1000, 1),
        target: `≤ BATCH_CONCURRENCY (${batchConcurrency})`,
        pass: mine.per1000 <= batchConcurrency,
      },
    ],
    notes: [
      `The simulator counts the TCP connections it accepted (\`stats.connectionsOpened\`): ${mine.connections} for ${mine.calls} cancel-cert calls from scm-withdraw during comparison 1 (keep-alive agent, \`maxSockets = BATCH_CONCURRENCY\`); ${theirs.connections} for ${theirs.calls} calls from the Powertools handler's \`fetch\`.`,
    ],
  };
}
