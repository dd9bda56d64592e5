/**
 * Memory budgets, in bytes, never in chunk counts: a count of chunks is
 * 3 MiB at the default 100 KiB and 2 GiB at 64 MiB, so any budget in chunks
 * made memory grow with --chunk-size. Each budget still allows one chunk,
 * whatever its size, or nothing could move; MAX_PIECE_LENGTH bounds that.
 */

/** Verified chunks a store keeps in memory for serving (shared by every connection). */
export const DEFAULT_CACHE_BYTES = 8 * 1024 * 1024;
/** Free chunk buffers a pool keeps for reuse. */
export const DEFAULT_POOL_BYTES = 8 * 1024 * 1024;

/** How many chunks of `chunkBytes` fit in `budgetBytes`: at least one. */
export function chunksWithin(budgetBytes: number, chunkBytes: number): number {
  return Math.max(1, Math.floor(budgetBytes / Math.max(1, chunkBytes)));
}
