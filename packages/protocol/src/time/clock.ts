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
  cancelled: boolean;
}

function earlier(a: PendingTimer, b: PendingTimer): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/**
 * A clock that moves only when told: for tests and simulations.
 * `advance(ms)` runs every timer that falls due on the way, in order, each
 * at its own time (timers due at the same moment in the order they were set).
 * Timers wait in a binary heap (cancelled ones are dropped when they reach
 * the top), so a simulation with thousands of them pays log n per timer.
 */
export class ManualClock implements TimerClock {
  private nowMs: number;
  private seq = 0;
  private readonly heap: PendingTimer[] = [];
  private live = 0;

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
    return this.live;
  }

  /** When the next timer is due (Clock ms), or undefined when none waits: a simulation's next event. */
  nextAt(): number | undefined {
    this.dropCancelled();
    return this.heap[0]?.at;
  }

  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`cannot advance a clock by ${ms} ms`);
    const end = this.nowMs + ms;
    for (;;) {
      this.dropCancelled();
      const next = this.heap[0];
      if (!next || next.at > end) break;
      this.nowMs = next.at;
      this.pop();
      if (next.everyMs === undefined) {
        next.cancelled = true;
        this.live--;
      } else {
        // It keeps its seq: among timers due together, the one set first still runs first.
        next.at += next.everyMs;
        this.push(next);
      }
      next.fn();
    }
    this.nowMs = end;
  }

  private add(fn: () => void, ms: number, everyMs: number | undefined): Timer {
    const p: PendingTimer = {
      at: this.nowMs + Math.max(0, ms),
      everyMs,
      fn,
      seq: this.seq++,
      cancelled: false,
    };
    this.push(p);
    this.live++;
    return {
      cancel: () => {
        if (p.cancelled) return;
        p.cancelled = true;
        this.live--;
      },
    };
  }

  private dropCancelled(): void {
    while (this.heap.length > 0 && this.heap[0]!.cancelled) this.pop();
  }

  private push(p: PendingTimer): void {
    const heap = this.heap;
    let i = heap.length;
    heap.push(p);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!earlier(p, heap[parent]!)) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = p;
  }

  private pop(): void {
    const heap = this.heap;
    const last = heap.pop()!;
    if (heap.length === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= heap.length) break;
      const r = l + 1;
      const c = r < heap.length && earlier(heap[r]!, heap[l]!) ? r : l;
      if (!earlier(heap[c]!, last)) break;
      heap[i] = heap[c]!;
      i = c;
    }
    heap[i] = last;
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
