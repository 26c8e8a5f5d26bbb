/**
 * Moves of DLQ messages overlapped with the scan that finds them (`dlq redrive`). Messages gather into
 * groups of up to `groupSize` (a few receives of 10); up to `inFlight` groups are moved at once. With
 * the ledger, a group costs one BatchGetItem and a few BatchWriteItem calls before it is sent; moving
 * one receive's 10 at a time, each waiting for its own writes, held redrive to 1/12 of its rate.
 */
export interface MovePipeline<T> {
  /** Adds messages; starts a move when a group is full, or at once when nothing is moving (a small DLQ). Waits for room. */
  add(items: readonly T[]): Promise<void>;
  /** Moves what is gathered and waits for every move. A move that throws rejects here. */
  drain(): Promise<void>;
  /** Waits for every move, whatever they end in (before the scan releases what it holds). */
  settle(): Promise<void>;
  /** Messages gathered or being moved. */
  readonly pending: number;
  readonly idle: boolean;
}

export function createMovePipeline<T>(
  move: (group: T[]) => Promise<void>,
  options: { groupSize: number; inFlight: number },
): MovePipeline<T> {
  const moves = new Set<Promise<void>>();
  let group: T[] = [];
  let moving = 0;
  const start = async () => {
    const items = group;
    group = [];
    if (items.length === 0) return;
    moving += items.length;
    const task: Promise<void> = move(items).finally(() => {
      moving -= items.length;
      moves.delete(task);
    });
    moves.add(task);
    while (moves.size >= options.inFlight) await Promise.race(moves);
  };
  return {
    async add(items) {
      group.push(...items);
      if (group.length >= options.groupSize || moves.size === 0) await start();
    },
    async drain() {
      await start();
      await Promise.all(moves);
    },
    async settle() {
      await Promise.allSettled(moves);
    },
    get pending() {
      return group.length + moving;
    },
    get idle() {
      return group.length === 0 && moves.size === 0;
    },
  };
}
