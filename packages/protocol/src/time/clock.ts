/**
 * Time, injected: schedulers, rate estimators and policies read `now()` from
 * a Clock instead of calling Date.now(), so unit tests drive them with a
 * ManualClock and never wait on wall time.
 *
 * The pure parts read only `now()` (a `Clock`) and never set timers: their
 * owner calls them on its own timer, from a `TimerClock`. Give every part of
 * one process the same clock (`systemClock`): times from two clocks
 * (Date.now and performance.now) cannot be compared.
 */
export interface Clock {
  /** Milliseconds on a clock that never goes backwards; only differences mean anything. */
  now(): number;
}

/** performance.now(): monotonic, unlike Date.now(), which jumps when NTP steps the wall clock. */
export const MONOTONIC_CLOCK: Clock = { now: () => performance.now() };

/** A timer that a TimerClock set; `cancel()` is a no-op once it has run. */
export interface Timer {
  cancel(): void;
}

/**
 * A clock that also sets timers: what a service's schedulers (fallback,
 * stall cut, re-announce, backoff) run on. `systemClock` in
 * `@swarmdrop/protocol/node` is the real one; tests use a ManualClock.
 */
export interface TimerClock extends Clock {
  /** Runs `fn` once after `ms`. A real clock's timer does not keep the process alive. */
  setTimeout(fn: () => void, ms: number): Timer;
  /** Runs `fn` every `ms` until cancelled. */
  setInterval(fn: () => void, ms: number): Timer;
}

interface PendingTimer {
  at: number;
  readonly everyMs: number | undefined;
  readonly fn: () => void;
  readonly seq: number;
}

/**
 * A clock that moves only when told: for tests and simulations.
 * `advance(ms)` runs every timer that falls due on the way, in order, each
 * at its own time (timers due at the same moment in the order they were set).
 */
export class ManualClock implements TimerClock {
  private nowMs: number;
  private seq = 0;
  private readonly pending = new Set<PendingTimer>();

  constructor(startMs = 0) {
    this.nowMs = startMs;
  }

  now(): number {
    return this.nowMs;
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
    if (!(ms >= 0)) throw new RangeError(`cannot advance a clock by ${ms} ms`);
    const end = this.nowMs + ms;
    for (;;) {
      let next: PendingTimer | undefined;
      for (const p of this.pending) {
        if (p.at <= end && (!next || p.at < next.at || (p.at === next.at && p.seq < next.seq)))
          next = p;
      }
      if (!next) break;
      this.nowMs = next.at;
      if (next.everyMs === undefined) this.pending.delete(next);
      else next.at += next.everyMs;
      next.fn();
    }
    this.nowMs = end;
  }

  private add(fn: () => void, ms: number, everyMs: number | undefined): Timer {
    const p: PendingTimer = { at: this.nowMs + Math.max(0, ms), everyMs, fn, seq: this.seq++ };
    this.pending.add(p);
    return { cancel: () => this.pending.delete(p) };
  }
}

/** A random number in [0, 1): injected so that tie-breaks and rotations are reproducible in tests. */
export type Rng = () => number;

/**
 * A small seeded generator (mulberry32): the same seed gives the same
 * sequence, so a test with ties can name the order it expects.
 */
export function seededRng(seed: number): Rng {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** An integer in [0, n). */
export function randomBelow(rng: Rng, n: number): number {
  return Math.min(n - 1, Math.floor(rng() * n));
}
