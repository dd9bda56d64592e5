/**
 * Decides each swarmdrop peer's initial batch: about `ceil(chunks / expected)`
 * chunks, taken from those held by the fewest peers so far (ties go to the
 * lowest ID), so peers joining one at a time get disjoint batches that
 * together cover the file. Pure: no I/O, no clock.
 */
export class BatchAssigner {
  readonly pieceCount: number;
  readonly batchSize: number;
  readonly expectedPeers: number;
  /** How many peers are known to hold, or were assigned, each chunk. */
  private readonly copies: Uint32Array;
  private readonly batches = new Map<string, readonly number[]>();
  private readonly holds = new Map<string, Set<number>>();

  constructor(pieceCount: number, expectedPeers: number) {
    if (!Number.isInteger(expectedPeers) || expectedPeers < 1) {
      throw new RangeError(`expectedPeers must be a positive integer, got ${expectedPeers}`);
    }
    this.pieceCount = pieceCount;
    this.expectedPeers = expectedPeers;
    this.batchSize = Math.min(pieceCount, Math.ceil(pieceCount / expectedPeers));
    this.copies = new Uint32Array(pieceCount);
  }

  /** The batch of the peer known as `key` (its listening address); the same batch on every call. */
  assign(key: string): readonly number[] {
    const known = this.batches.get(key);
    if (known) return known;
    const order = Array.from({ length: this.pieceCount }, (_, i) => i);
    order.sort((a, b) => this.copies[a]! - this.copies[b]! || a - b);
    const batch = order.slice(0, this.sizeOfNextBatch()).sort((a, b) => a - b);
    this.batches.set(key, batch);
    for (const index of batch) this.noteHolds(key, index);
    return batch;
  }

  /**
   * Until `expectedPeers` batches are out, split the chunks nobody holds
   * evenly over the peers still expected (21 chunks, 5 peers: 5,4,4,4,4), so
   * the first batches are disjoint and cover the file; after that, a full batch.
   */
  private sizeOfNextBatch(): number {
    const remainingPeers = this.expectedPeers - this.batches.size;
    const uncovered = this.copies.reduce((n, c) => n + (c === 0 ? 1 : 0), 0);
    if (remainingPeers > 0 && uncovered > 0) return Math.ceil(uncovered / remainingPeers);
    return this.batchSize;
  }

  batchOf(key: string): readonly number[] | undefined {
    return this.batches.get(key);
  }

  /** Records that `key` holds `index` (from its `have`s), so later batches favour rarer chunks. */
  noteHolds(key: string, index: number): void {
    if (index < 0 || index >= this.pieceCount) return;
    let set = this.holds.get(key);
    if (!set) {
      set = new Set();
      this.holds.set(key, set);
    }
    if (set.has(index)) return;
    set.add(index);
    this.copies[index]!++;
  }

  /** Forgets `key` entirely (a peer that went away): its batch and the copies it counted for. */
  forget(key: string): void {
    for (const index of this.holds.get(key) ?? []) this.copies[index]!--;
    this.holds.delete(key);
    this.batches.delete(key);
  }

  /** Copies of chunk `index` the owner knows of. */
  copiesOf(index: number): number {
    return this.copies[index] ?? 0;
  }
}
