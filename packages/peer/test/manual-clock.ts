import type { Clock, Timer } from '../src/index.js';

interface Pending {
  at: number;
  readonly everyMs: number | undefined;
  readonly fn: () => void;
  readonly seq: number;
}

/**
 * A clock that moves only when the test says so: `advance(ms)` runs every
 * timer that falls due on the way, in order, each at its own time.
 */
export class ManualClock implements Clock {
  private time = 1_000_000;
  private seq = 0;
  private readonly pending = new Set<Pending>();

  now(): number {
    return this.time;
  }

  setTimeout(fn: () => void, ms: number): Timer {
    return this.add(fn, ms, undefined);
  }

  setInterval(fn: () => void, ms: number): Timer {
    return this.add(fn, ms, Math.max(1, ms));
  }

  /** Timers waiting to run. */
  get timers(): number {
    return this.pending.size;
  }

  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      let next: Pending | undefined;
      for (const p of this.pending) {
        if (p.at <= end && (!next || p.at < next.at || (p.at === next.at && p.seq < next.seq)))
          next = p;
      }
      if (!next) break;
      this.time = next.at;
      if (next.everyMs === undefined) this.pending.delete(next);
      else next.at += next.everyMs;
      next.fn();
    }
    this.time = end;
  }

  private add(fn: () => void, ms: number, everyMs: number | undefined): Timer {
    const p: Pending = { at: this.time + Math.max(0, ms), everyMs, fn, seq: this.seq++ };
    this.pending.add(p);
    return { cancel: () => this.pending.delete(p) };
  }
}
