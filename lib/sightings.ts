/**
 * When the cleanup sweep first saw each certificate under review. SCM's listing gives no submission
 * time (only `expire_time`), so "stale" (`CLEANUP_MIN_AGE`) can only be measured from the sweep's own
 * first sighting, remembered in the ledger table (`LEDGER_TABLE`), one small item per certificate:
 *
 * | item | pk | sk | attributes |
 * | --- | --- | --- | --- |
 * | sighting | `SEEN#<certificate_id>` | `SEEN` | certificate_id, status, first/last_seen_at (ms), expires_at |
 *
 * One `UpdateItem` per certificate and run: `first_seen_at = if_not_exists(first_seen_at, now)`, so the
 * first sighting sticks however many sweeps race (the same guarantee as a put conditioned on
 * `attribute_not_exists`, in one call that also refreshes `last_seen_at` and the TTL and returns the
 * old item). A clock must start over when the certificate leaves review, or an application made again
 * later would look old at once: the sweep forgets a certificate when it enqueues its withdrawal
 * ({@link Sightings.forget}), and one not seen for {@link SIGHTING_GAP_MS} (withdrawn by hand, then
 * applied for again) starts over too. Both can only delay a withdrawal, never hasten one. Items
 * expire {@link SIGHTING_TTL_DAYS} days after the last sighting.
 *
 * Like the ledger, a failed write never stops the sweep: the certificate's age is then unknown, and
 * with `CLEANUP_MIN_AGE` set the sweep does not enqueue it (`age_unknown`).
 */
import type { AttributeValue, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { forEachConcurrently } from "./concurrency.ts";
import { describeError } from "./errors.ts";
import type { Logger } from "./logger.ts";

/** Not seen for longer than this: it left review in between; its clock starts over (so sweep more often). */
export const SIGHTING_GAP_MS = 10 * 86_400_000;
export const SIGHTING_TTL_DAYS = 30;
/** Writes in flight at once (DynamoDB on-demand takes far more; this keeps a sweep's burst small). */
const CONCURRENCY = 8;
/** One write's time limit: a sweep lists at most a few hundred certificates. */
const WRITE_TIMEOUT_MS = 3000;

export interface Sightings {
  /**
   * Records that these certificates are under review now. Returns when each was first seen (ms since
   * the epoch); a certificate whose write failed is missing from the map.
   */
  record(certificates: readonly { id: string; status: string }[]): Promise<Map<string, number>>;
  /** Forgets these certificates (their withdrawal was enqueued): seen again, their clock starts over. */
  forget(ids: readonly string[]): Promise<void>;
}

export interface SightingsOptions {
  client: Pick<DynamoDBClient, "send">;
  tableName: string;
  logger: Logger;
  now?: () => number;
}

export const sightingKey = (certificateId: string) => ({ pk: `SEEN#${certificateId}`, sk: "SEEN" });

export function createSightings(options: SightingsOptions): Sightings {
  const now = options.now ?? Date.now;
  const N = (n: number): AttributeValue => ({ N: String(n) });
  const S = (s: string): AttributeValue => ({ S: s });

  /** One certificate: the update, and the rare second one that restarts a clock after a gap. */
  async function recordOne(id: string, status: string, at: number): Promise<number> {
    const { UpdateItemCommand } = await import("@aws-sdk/client-dynamodb");
    const key = sightingKey(id);
    const signal = () => ({ abortSignal: AbortSignal.timeout(WRITE_TIMEOUT_MS) });
    const { Attributes: old } = await options.client.send(
      new UpdateItemCommand({
        TableName: options.tableName,
        Key: { pk: S(key.pk), sk: S(key.sk) },
        UpdateExpression:
          "SET first_seen_at = if_not_exists(first_seen_at, :now), last_seen_at = :now, " +
          "certificate_id = :id, #st = :st, expires_at = :exp",
        ExpressionAttributeNames: { "#st": "status" },
        ExpressionAttributeValues: {
          ":now": N(at),
          ":id": S(id),
          ":st": S(status),
          ":exp": N(Math.floor(at / 1000) + SIGHTING_TTL_DAYS * 86_400),
        },
        ReturnValues: "ALL_OLD",
      }),
      signal(),
    );
    const firstSeen = Number(old?.first_seen_at?.N);
    const lastSeen = Number(old?.last_seen_at?.N);
    if (!Number.isFinite(firstSeen)) return at;
    if (Number.isFinite(lastSeen) && at - lastSeen <= SIGHTING_GAP_MS) return firstSeen;
    // Only if no other sweep restarted it meanwhile (then its time, about now, stands).
    try {
      await options.client.send(
        new UpdateItemCommand({
          TableName: options.tableName,
          Key: { pk: S(key.pk), sk: S(key.sk) },
          UpdateExpression: "SET first_seen_at = :now",
          ConditionExpression: "first_seen_at = :old",
          ExpressionAttributeValues: { ":now": N(at), ":old": N(firstSeen) },
        }),
        signal(),
      );
    } catch (error) {
      if ((error as { name?: unknown }).name !== "ConditionalCheckFailedException") throw error;
    }
    return at;
  }

  async function forgetOne(id: string): Promise<void> {
    const { DeleteItemCommand } = await import("@aws-sdk/client-dynamodb");
    const key = sightingKey(id);
    const command = new DeleteItemCommand({ TableName: options.tableName, Key: { pk: S(key.pk), sk: S(key.sk) } });
    await options.client.send(command, { abortSignal: AbortSignal.timeout(WRITE_TIMEOUT_MS) });
  }

  /** Runs `task` for each id, a few at once; failures are logged (the first, then a count), never thrown. */
  async function forEach(event: string, ids: readonly string[], task: (index: number) => Promise<void>): Promise<void> {
    const failures: string[] = [];
    await forEachConcurrently(ids, CONCURRENCY, async (id, index) => {
      try {
        await task(index);
      } catch (error) {
        if (failures.push(id) === 1) options.logger.warn(event, { certificateId: id, error: describeError(error) });
      }
    });
    if (failures.length > 1) options.logger.warn(event, { count: failures.length, sample: failures.slice(0, 20) });
  }

  return {
    async record(certificates) {
      const at = now();
      const firstSeen = new Map<string, number>();
      await forEach(
        "cleanup_sighting_failed",
        certificates.map((c) => c.id),
        async (i) => {
          const { id, status } = certificates[i]!;
          firstSeen.set(id, await recordOne(id, status, at));
        },
      );
      return firstSeen;
    },
    forget: (ids) => forEach("cleanup_sighting_forget_failed", ids, (i) => forgetOne(ids[i]!)),
  };
}
