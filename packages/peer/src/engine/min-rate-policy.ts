import { BLOCK_SIZE, type Clock, OptionError } from '@swarmdrop/protocol';

/**
 * Below this a link is too slow to keep requests: 64 KiB/s is about 0.5
 * Mbit/s, a hundredth of the 40 Mbit/s links we benchmark on, and ten times
 * the 16 KiB per 2.5 s drip that pinned 21 chunks in issue 9.
 */
export const DEFAULT_MIN_RATE_BYTES_PER_SEC = 64 * 1024;
/**
 * How long a link may stay below the minimum, with requests in flight,
 * before they go to other links: long enough for a new TCP connection to
 * ramp up, short next to a download of a few seconds.
 */
export const DEFAULT_MIN_RATE_WINDOW_MS = 4_000;
/**
 * What a link on probation may still have in flight: one block, to prove it
 * has recovered. A probe that also sits for a window is taken away too, so
 * even the last block of a download is never pinned to a dead link.
 */
export const DEFAULT_PROBATION_IN_FLIGHT_BYTES = BLOCK_SIZE;

export interface MinRatePolicyOptions {
  readonly clock: Clock;
  readonly minRateBytesPerSec?: number;
  readonly windowMs?: number;
  readonly probationInFlightBytes?: number;
}

/** One download link, as the scheduler sees it at a review. */
export interface LinkSample {
  readonly id: string;
  /** Bytes asked of it and not yet received. */
  readonly bytesInFlight: number;
  /** Its download rate to us now (the Connection's RateEstimator). */
  readonly bytesPerSec: number;
}

/**
 * Stalls are solved by the scheduler, not by waiting: a link whose rate
 * stays below a minimum for a whole window, while it has requests, loses
 * them to the other links (the owner included), and is then held to one
 * block in flight ("probation") until its rate is back above the minimum.
 *
 * Why a rate and not "time since the last block": a link that drips one
 * correct block every 2.5 s never looks stalled to a 3 s timer, yet at
 * 6.5 KB/s it would take minutes to deliver the 21 chunks it holds (issue 9,
 * item 3). Pure: the caller samples its links, calls `review()` on its tick,
 * cancels the requests of the links it returns and gives them to the picker.
 */
export class MinRatePolicy {
  readonly minRateBytesPerSec: number;
  readonly windowMs: number;
  readonly probationInFlightBytes: number;
  private readonly clock: Clock;
  /** Since when (Clock ms) each link has been below the minimum with requests in flight. */
  private readonly belowSince = new Map<string, number>();
  private readonly probation = new Set<string>();

  constructor(options: MinRatePolicyOptions) {
    this.clock = options.clock;
    this.minRateBytesPerSec = options.minRateBytesPerSec ?? DEFAULT_MIN_RATE_BYTES_PER_SEC;
    this.windowMs = options.windowMs ?? DEFAULT_MIN_RATE_WINDOW_MS;
    this.probationInFlightBytes =
      options.probationInFlightBytes ?? DEFAULT_PROBATION_IN_FLIGHT_BYTES;
    if (!(this.minRateBytesPerSec >= 0)) {
      throw new OptionError(
        'minRateBytesPerSec',
        `must be 0 or more, got ${this.minRateBytesPerSec}`,
      );
    }
    if (!(this.windowMs > 0)) {
      throw new OptionError('windowMs', `must be a positive number of ms, got ${this.windowMs}`);
    }
  }

  /**
   * Looks at every link; returns the ids of those that must give up their
   * requests now. Each returned link is on probation from here on.
   */
  review(links: readonly LinkSample[]): string[] {
    const now = this.clock.now();
    const strip: string[] = [];
    for (const link of links) {
      if (link.bytesPerSec >= this.minRateBytesPerSec) {
        this.belowSince.delete(link.id);
        this.probation.delete(link.id);
        continue;
      }
      // Nothing asked of it: it cannot be slow at delivering, and its window starts with its next request.
      if (link.bytesInFlight <= 0) {
        this.belowSince.delete(link.id);
        continue;
      }
      const since = this.belowSince.get(link.id);
      if (since === undefined) {
        this.belowSince.set(link.id, now);
      } else if (now - since >= this.windowMs) {
        strip.push(link.id);
        this.probation.add(link.id);
        this.belowSince.delete(link.id);
      }
    }
    return strip;
  }

  /** True while the link must keep to `probationInFlightBytes`. */
  onProbation(id: string): boolean {
    return this.probation.has(id);
  }

  /** The most a link may have in flight: `normalBytes` unless it is on probation. */
  maxInFlightBytes(id: string, normalBytes: number): number {
    return this.probation.has(id)
      ? Math.min(normalBytes, this.probationInFlightBytes)
      : normalBytes;
  }

  /** The link is gone. */
  forget(id: string): void {
    this.belowSince.delete(id);
    this.probation.delete(id);
  }
}
