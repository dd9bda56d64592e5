import type { Bitfield } from '@swarmdrop/protocol';

/**
 * Which chunk a connection should fetch next. A chunk is requested from one
 * source at a time; chunks reserved for the owner's initial batch are left to
 * the owner link while it runs. Pure bookkeeping: no I/O.
 */
export class PiecePicker {
  private readonly held: Bitfield;
  private readonly inFlight = new Map<number, string>();
  private readonly reserved = new Set<number>();

  constructor(held: Bitfield) {
    this.held = held;
  }

  /**
   * The first of `candidates` (chunks a remote has) that we still lack, nobody
   * is fetching, and `allowed` accepts; marks it taken by `source`. Chunks we
   * now hold are dropped from `candidates` on the way, so over a download each
   * is looked at a bounded number of times, not once per pick.
   */
  pick(
    source: string,
    candidates: Set<number>,
    allowed: (index: number) => boolean,
  ): number | undefined {
    for (const i of candidates) {
      if (this.held.has(i)) {
        candidates.delete(i);
        continue;
      }
      if (this.inFlight.has(i) || !allowed(i)) continue;
      this.inFlight.set(i, source);
      return i;
    }
    return undefined;
  }

  /** True when one of `candidates` is a chunk we lack that `allowed` accepts (in flight or not). */
  wantsAny(candidates: Set<number>, allowed: (index: number) => boolean): boolean {
    for (const i of candidates) {
      if (this.held.has(i)) {
        candidates.delete(i);
        continue;
      }
      if (allowed(i)) return true;
    }
    return false;
  }

  /** True when we lack chunk `index`. */
  lacks(index: number): boolean {
    return !this.held.has(index);
  }

  /** Gives chunk `index` back (its source failed or went away). */
  release(index: number): void {
    this.inFlight.delete(index);
  }

  isInFlight(index: number): boolean {
    return this.inFlight.has(index);
  }

  reserve(indexes: Iterable<number>): void {
    for (const i of indexes) this.reserved.add(i);
  }

  unreserve(indexes: Iterable<number>): void {
    for (const i of indexes) this.reserved.delete(i);
  }

  isReserved(index: number): boolean {
    return this.reserved.has(index);
  }
}
