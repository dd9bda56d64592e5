import { OptionError, type Rng } from '@swarmdrop/protocol';
import type { Timer, TimerClock } from '../clock.js';
import { backoffMs } from '../dialers.js';

/**
 * Retries of one address after a failed dial before it is forgotten, until
 * the tracker lists it again. With REDIAL_MAX_DELAY_MS they are 0.25, 0.5,
 * 1, 2, 4 and 8 s apart (±20%): about 16 s of trying, half a re-announce
 * interval, which is what an address otherwise waited for a second chance.
 */
export const DEFAULT_REDIAL_ATTEMPTS = 6;
/** Longest wait between two dials of one address. */
export const REDIAL_MAX_DELAY_MS = 8_000;

export interface RedialerOptions {
  /** Retries per address after its first failed dial (default DEFAULT_REDIAL_ATTEMPTS). */
  readonly maxAttempts?: number;
  /** Addresses being retried at once; a failure beyond that is not retried (the tracker lists it again). */
  readonly maxAddresses: number;
  /** Longest wait between two dials of one address (default REDIAL_MAX_DELAY_MS). */
  readonly maxDelayMs?: number;
}

export interface RedialerComponents {
  readonly clock: TimerClock;
  /** The jitter of the waits (Math.random by default). */
  readonly rng?: Rng;
}

interface Retrying {
  /** Dials of this address that failed in a row. */
  failures: number;
  /** The next dial, while waiting for it. */
  timer: Timer | undefined;
}

/**
 * When a swarm peer dials an address again after a failed dial: with
 * exponential backoff and jitter on the injected clock, a bounded number of
 * times per address and for a bounded number of addresses at once. An
 * address that keeps failing is forgotten: the next announce that lists it
 * starts it afresh. It keeps no connections; the session dials when told.
 */
export class Redialer {
  readonly maxAttempts: number;
  readonly maxAddresses: number;
  readonly maxDelayMs: number;
  private readonly components: RedialerComponents;
  private readonly retrying = new Map<string, Retrying>();
  private closed = false;

  constructor(components: RedialerComponents, options: RedialerOptions) {
    this.components = components;
    this.maxAttempts = options.maxAttempts ?? DEFAULT_REDIAL_ATTEMPTS;
    this.maxAddresses = options.maxAddresses;
    this.maxDelayMs = options.maxDelayMs ?? REDIAL_MAX_DELAY_MS;
    for (const [field, value] of [
      ['maxAttempts', this.maxAttempts],
      ['maxAddresses', this.maxAddresses],
    ] as const) {
      if (!Number.isInteger(value) || value < 0)
        throw new OptionError(field, `must be a non-negative integer, got ${value}`);
    }
    if (!(this.maxDelayMs > 0))
      throw new OptionError('maxDelayMs', `must be above 0, got ${this.maxDelayMs}`);
  }

  /**
   * A dial of `address` failed: `redial` runs after the backoff unless this
   * address has failed too often (it is forgotten) or too many addresses are
   * being retried. True when a retry was scheduled.
   */
  failed(address: string, redial: () => void): boolean {
    if (this.closed) return false;
    let state = this.retrying.get(address);
    if (!state) {
      if (this.retrying.size >= this.maxAddresses) return false;
      state = { failures: 0, timer: undefined };
      this.retrying.set(address, state);
    }
    state.timer?.cancel();
    state.failures++;
    if (state.failures > this.maxAttempts) {
      this.retrying.delete(address);
      return false;
    }
    const retry = state;
    retry.timer = this.components.clock.setTimeout(
      () => {
        retry.timer = undefined;
        redial();
      },
      backoffMs(state.failures - 1, this.maxDelayMs, this.components.rng),
    );
    return true;
  }

  /** `address` connected, or is no longer worth a retry (connected the other way, no room): its count ends. */
  forget(address: string): void {
    this.retrying.get(address)?.timer?.cancel();
    this.retrying.delete(address);
  }

  /** A retry of `address` is due later: a dial now would come on top of it. */
  isWaiting(address: string): boolean {
    return this.retrying.get(address)?.timer !== undefined;
  }

  /** Addresses being retried (waiting, or their retry being dialled). */
  get size(): number {
    return this.retrying.size;
  }

  /** Cancels every retry; later failures schedule none. */
  close(): void {
    this.closed = true;
    for (const state of this.retrying.values()) state.timer?.cancel();
    this.retrying.clear();
  }
}
