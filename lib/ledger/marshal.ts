/**
 * Marshalling (the few attribute types the ledger uses: lib-dynamodb / util-dynamodb are not
 * installed), the update-expression builder, and item -> `LedgerJob`.
 */
import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { JOB_SK_PREFIX } from "./keys.ts";
import { JOB_STATES, type JobState, type LedgerJob } from "./types.ts";

export const S = (value: string): AttributeValue => ({ S: value });
export const N = (value: number): AttributeValue => ({ N: String(value) });
/** Empty strings are treated as absent (they say nothing, and key attributes refuse them). */
export const optionalS = (value: string | undefined): AttributeValue | undefined => (value ? S(value) : undefined);

/** Plain values from a DynamoDB item: S → string, N → number, BOOL, NULL → null, M and L recursively. */
export function unmarshal(item: Record<string, AttributeValue>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(item).map(([name, value]) => [name, unmarshalValue(value)]));
}

function unmarshalValue(value: AttributeValue): unknown {
  if (value.S !== undefined) return value.S;
  if (value.N !== undefined) return Number(value.N);
  if (value.BOOL !== undefined) return value.BOOL;
  if (value.NULL !== undefined) return null;
  if (value.M !== undefined) return unmarshal(value.M);
  if (value.L !== undefined) return value.L.map(unmarshalValue);
  if (value.SS !== undefined) return [...value.SS];
  if (value.NS !== undefined) return value.NS.map(Number);
  return undefined;
}

/**
 * Builds an update expression with placeholders for every name and value (so reserved words such as
 * `state`, `source` and `reason` need no care).
 */
export class UpdateBuilder {
  private readonly sets: string[] = [];
  private readonly removes: string[] = [];
  private readonly adds: string[] = [];
  private readonly names: Record<string, string> = {};
  private readonly values: Record<string, AttributeValue> = {};
  private valueCount = 0;

  name(attribute: string): string {
    const placeholder = `#${attribute}`;
    this.names[placeholder] = attribute;
    return placeholder;
  }

  value(value: AttributeValue): string {
    const placeholder = `:v${this.valueCount++}`;
    this.values[placeholder] = value;
    return placeholder;
  }

  set(attribute: string, value: AttributeValue): void {
    this.sets.push(`${this.name(attribute)} = ${this.value(value)}`);
  }

  /** Sets the attribute only if the item has none (first writer wins); nothing when `value` is undefined. */
  setIfMissing(attribute: string, value: AttributeValue | undefined): void {
    if (value === undefined) return;
    const name = this.name(attribute);
    this.sets.push(`${name} = if_not_exists(${name}, ${this.value(value)})`);
  }

  /** Sets the attribute, or removes it when `value` is undefined (a stale error must not survive). */
  setOrRemove(attribute: string, value: AttributeValue | undefined): void {
    if (value === undefined) this.removes.push(this.name(attribute));
    else this.set(attribute, value);
  }

  add(attribute: string, value: AttributeValue): void {
    this.adds.push(`${this.name(attribute)} ${this.value(value)}`);
  }

  build(condition?: string): {
    UpdateExpression?: string;
    ConditionExpression?: string;
    ExpressionAttributeNames?: Record<string, string>;
    ExpressionAttributeValues?: Record<string, AttributeValue>;
  } {
    const clauses = [
      this.sets.length ? `SET ${this.sets.join(", ")}` : "",
      this.removes.length ? `REMOVE ${this.removes.join(", ")}` : "",
      this.adds.length ? `ADD ${this.adds.join(", ")}` : "",
    ].filter(Boolean);
    return {
      ...(clauses.length ? { UpdateExpression: clauses.join(" ") } : {}),
      ...(condition ? { ConditionExpression: condition } : {}),
      ...(Object.keys(this.names).length ? { ExpressionAttributeNames: this.names } : {}),
      ...(Object.keys(this.values).length ? { ExpressionAttributeValues: this.values } : {}),
    };
  }
}

export function asState(value: unknown): JobState {
  return typeof value === "string" && (JOB_STATES as readonly string[]).includes(value)
    ? (value as JobState)
    : "queued";
}

export function toJob(item: Record<string, unknown>): LedgerJob {
  const str = (name: string) => (typeof item[name] === "string" ? (item[name] as string) : undefined);
  const num = (name: string) => (typeof item[name] === "number" ? (item[name] as number) : undefined);
  const sk = str("sk") ?? "";
  return {
    requestId: str("request_id") ?? sk.slice(JOB_SK_PREFIX.length + (str("certificate_id")?.length ?? 0) + 1),
    batchId: str("batch_id"),
    certificateId: str("certificate_id"),
    source: str("source"),
    requestedBy: str("requested_by"),
    requestReason: str("request_reason"),
    requestedAt: str("requested_at"),
    state: asState(item.state),
    reason: str("reason"),
    attempts: num("attempts") ?? 0,
    deliveries: num("deliveries") ?? 0,
    receiveCount: num("receive_count"),
    httpStatus: num("http_status"),
    errorCode: str("error_code"),
    errorMsg: str("error_msg"),
    messageId: str("message_id"),
    queuedAt: str("queued_at"),
    claimedAt: str("claimed_at"),
    requeuedAt: str("requeued_at"),
    updatedAt: str("updated_at"),
    finishedAt: str("finished_at"),
    expiresAt: num("expires_at"),
  };
}
