/**
 * The one concurrency helper: run work over items with at most `limit` in flight, in order of start.
 * Each item's `task` settles its own outcome; a task that throws rejects the whole run (a bug), so
 * callers that must never throw catch inside their task.
 */

/** Runs `task` over `items`, at most `limit` at once (at least one). */
export async function forEachConcurrently<T>(
  items: readonly T[],
  limit: number,
  task: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const index = next++;
      await task(items[index]!, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, Math.floor(limit)), items.length) }, lane));
}
