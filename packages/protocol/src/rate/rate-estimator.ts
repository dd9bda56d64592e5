import type { Clock } from '../time/clock.js';

/** How far back a rate looks: long enough to smooth TCP's bursts, short enough to follow a link that slows. */
export const DEFAULT_RATE_WINDOW_MS = 10_000;
/** Width of one bucket of the sliding window. */
export const DEFAULT_RATE_BUCKET_MS = 500;

export interface RateEstimatorOptions {
  readonly clock: Clock;
  readonly windowMs?: number;
  readonly bucketMs?: number;
}

/**
 * Bytes per second over a sliding window, in fixed buckets so that recording
 * is O(1) and memory is bounded whatever the traffic. A link younger than the
 * window is averaged over its own age (at least one bucket), so a new fast
 * connection is not ranked as slow for its first ten seconds.
 */
export class RateEstimator {
  readonly windowMs: number;
  readonly bucketMs: number;
  /** Bytes recorded since creation. */
  total = 0;
  private readonly clock: Clock;
  private readonly startedAt: number;
  private readonly buckets: Float64Array;
  /** The absolute bucket number each slot holds, so stale slots are recognised without a sweep. */
  private readonly slotOf: Float64Array;

  constructor(options: RateEstimatorOptions) {
    this.clock = options.clock;
    this.windowMs = options.windowMs ?? DEFAULT_RATE_WINDOW_MS;
    this.bucketMs = options.bucketMs ?? DEFAULT_RATE_BUCKET_MS;
    if (!(this.bucketMs > 0) || !(this.windowMs >= this.bucketMs)) {
      throw new RangeError(
        `windowMs (${this.windowMs}) must be at least bucketMs (${this.bucketMs}) > 0`,
      );
    }
    const slots = Math.ceil(this.windowMs / this.bucketMs);
    this.buckets = new Float64Array(slots);
    this.slotOf = new Float64Array(slots).fill(-1);
    this.startedAt = this.clock.now();
  }

  record(bytes: number): void {
    if (!(bytes > 0)) return;
    this.total += bytes;
    const bucket = Math.floor(this.clock.now() / this.bucketMs);
    const slot = bucket % this.buckets.length;
    if (this.slotOf[slot] !== bucket) {
      this.slotOf[slot] = bucket;
      this.buckets[slot] = 0;
    }
    this.buckets[slot]! += bytes;
  }

  /** Bytes per second over the last `windowMs` (or the estimator's age, if younger). */
  bytesPerSecond(): number {
    const now = this.clock.now();
    const current = Math.floor(now / this.bucketMs);
    const oldest = current - this.buckets.length + 1;
    let bytes = 0;
    for (let slot = 0; slot < this.buckets.length; slot++) {
      const bucket = this.slotOf[slot]!;
      if (bucket >= oldest && bucket <= current) bytes += this.buckets[slot]!;
    }
    // The window is the full buckets behind us plus the part of the current one that has passed.
    const windowSpanMs =
      (this.buckets.length - 1) * this.bucketMs + (now - current * this.bucketMs);
    const spanMs = Math.max(this.bucketMs, Math.min(windowSpanMs, now - this.startedAt));
    return (bytes * 1000) / spanMs;
  }
}
