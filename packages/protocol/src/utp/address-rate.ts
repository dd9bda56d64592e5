/**
 * Token buckets keyed by source address, on the caller's clock: what the µTP
 * endpoint uses to rate-limit the SYNs it answers and the RESETs it sends,
 * per address. Pure: time comes from `now()`, nothing sets a timer.
 *
 * UDP's source address can be forged, so the table of buckets is itself
 * something a remote can grow: it holds at most `maxAddresses`, and the
 * address heard from least recently goes first. A bucket forgotten that way
 * starts full again when its address comes back, which is what a new
 * address gets anyway.
 */

export interface AddressRateOptions {
  /** Tokens a bucket gains per second. */
  readonly perSecond: number;
  /** Tokens a bucket holds at most, and starts with. */
  readonly burst: number;
  /** Buckets kept at most. */
  readonly maxAddresses: number;
  /** Milliseconds on a clock that never goes backwards. */
  readonly now: () => number;
}

interface Bucket {
  tokens: number;
  atMs: number;
}

export class AddressRate {
  /** Takes refused for want of a token (tests, stats). */
  refused = 0;
  private readonly options: AddressRateOptions;
  private readonly buckets = new Map<string, Bucket>();

  constructor(options: AddressRateOptions) {
    for (const field of ['perSecond', 'burst', 'maxAddresses'] as const) {
      const value = options[field];
      if (!(value > 0) || !Number.isFinite(value))
        throw new RangeError(`${field} must be a positive number, not ${value}`);
    }
    this.options = options;
  }

  /** Buckets held now. */
  get size(): number {
    return this.buckets.size;
  }

  /** Takes one token from `address`'s bucket: false when it has none. */
  take(address: string): boolean {
    const now = this.options.now();
    let bucket = this.buckets.get(address);
    if (bucket) {
      // Re-inserted, so the Map's order runs from least to most recently heard.
      this.buckets.delete(address);
      bucket.tokens = Math.min(
        this.options.burst,
        bucket.tokens + (Math.max(0, now - bucket.atMs) * this.options.perSecond) / 1000,
      );
      bucket.atMs = now;
    } else {
      bucket = { tokens: this.options.burst, atMs: now };
      if (this.buckets.size >= this.options.maxAddresses) {
        const oldest = this.buckets.keys().next().value;
        if (oldest !== undefined) this.buckets.delete(oldest);
      }
    }
    this.buckets.set(address, bucket);
    if (bucket.tokens < 1) {
      this.refused++;
      return false;
    }
    bucket.tokens -= 1;
    return true;
  }
}
