/**
 * Time, injected: schedulers, rate estimators and policies read `now()` from
 * a Clock instead of calling Date.now(), so unit tests drive them with a
 * ManualClock and never wait on wall time.
 *
 * Only `now()`: the pure parts never set timers, their owner calls them on
 * its own timer. The peer's `Clock` (packages/peer/src/clock.ts, with
 * timers) is a superset and can be passed as is. Give every part of one
 * process the same clock: times from two clocks (Date.now and
 * performance.now) cannot be compared.
 */
export interface Clock {
  /** Milliseconds on a clock that never goes backwards; only differences mean anything. */
  now(): number;
}

/** performance.now(): monotonic, unlike Date.now(), which jumps when NTP steps the wall clock. */
export const MONOTONIC_CLOCK: Clock = { now: () => performance.now() };

/** A clock that moves only when told: for tests and simulations. */
export class ManualClock implements Clock {
  private nowMs: number;

  constructor(startMs = 0) {
    this.nowMs = startMs;
  }

  now(): number {
    return this.nowMs;
  }

  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`cannot advance a clock by ${ms} ms`);
    this.nowMs += ms;
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
