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

  /** The lowest chunk `remote` has that we lack, nobody is fetching, and `allowed` accepts; marks it taken by `source`. */
  pick(source: string, remote: Bitfield, allowed: (index: number) => boolean): number | undefined {
    for (let i = 0; i < this.held.size; i++) {
      if (this.held.has(i) || this.inFlight.has(i) || !remote.has(i) || !allowed(i)) continue;
      this.inFlight.set(i, source);
      return i;
    }
    return undefined;
  }

  /** True when `remote` has a chunk we lack that `allowed` accepts (in flight or not). */
  wantsAny(remote: Bitfield, allowed: (index: number) => boolean): boolean {
    for (let i = 0; i < this.held.size; i++) {
      if (!this.held.has(i) && remote.has(i) && allowed(i)) return true;
    }
    return false;
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
