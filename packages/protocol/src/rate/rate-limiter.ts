import { OptionError } from '../errors.js';
import type { Timer, TimerClock } from '../time/clock.js';

/**
 * Most tokens the bucket saves up, as time at the limit. A quarter second
 * covers a late timer or a busy event loop (tokens keep accruing while the
 * process is stalled, so it catches up), yet an idle link bursts little.
 */
export const DEFAULT_RATE_LIMIT_BURST_MS = 250;

export interface RateLimiterOptions {
  /** The limit, bytes per second; more than 0 (no limit is no RateLimiter). */
  readonly bytesPerSecond: number;
  /** Tokens saved up at most, as milliseconds at the limit (default DEFAULT_RATE_LIMIT_BURST_MS). */
  readonly burstMs?: number;
  readonly clock: TimerClock;
}

interface Waiter {
  readonly wake: () => void;
}

/**
 * A token bucket, one per direction per process, shared by every
 * connection. Bytes are taken after the fact (`consume`), and the balance
 * may go below zero: a block already read from a socket or handed to us
 * cannot be split, so the debt is paid by waiting. While the balance is
 * negative, `blocked` is true and callers park with `whenAvailable`.
 *
 * The bucket starts empty, so the bytes that pass in any span from the
 * start never exceed the limit times the span (plus one unit in flight);
 * it fills to `burstMs` of tokens at most.
 *
 * Waiters are woken one at a time, oldest first, each time the balance is
 * back at zero or above: a woken caller gets one turn (one write, one read)
 * whatever the balance is when it runs, and queues again at the back. So a
 * busy connection cannot starve a slow one, and the limit holds over time.
 */
export class RateLimiter {
  readonly bytesPerSecond: number;
  readonly burstBytes: number;
  /** Bytes counted since creation. */
  total = 0;
  private readonly clock: TimerClock;
  private balance = 0;
  private updatedAt: number;
  private readonly waiters = new Set<Waiter>();
  private timer: Timer | undefined;

  constructor(options: RateLimiterOptions) {
    if (!(options.bytesPerSecond > 0) || !Number.isFinite(options.bytesPerSecond))
      throw new RangeError(
        `bytesPerSecond must be a positive number, not ${options.bytesPerSecond}`,
      );
    const burstMs = options.burstMs ?? DEFAULT_RATE_LIMIT_BURST_MS;
    if (!(burstMs >= 0)) throw new RangeError(`burstMs must be 0 or more, not ${burstMs}`);
    this.bytesPerSecond = options.bytesPerSecond;
    this.burstBytes = (options.bytesPerSecond * burstMs) / 1000;
    this.clock = options.clock;
    this.updatedAt = this.clock.now();
  }

  /** Tokens available now; negative while the bucket is in debt. */
  get available(): number {
    this.refill();
    return this.balance;
  }

  /** True while in debt: hold the next write or read until `whenAvailable` calls back. */
  get blocked(): boolean {
    return this.available < 0;
  }

  /** Callers waiting for their turn. */
  get waiting(): number {
    return this.waiters.size;
  }

  /** Takes `bytes` that crossed (or are about to cross) the socket; the balance may go negative. */
  consume(bytes: number): void {
    if (!(bytes > 0)) return;
    this.refill();
    this.balance -= bytes;
    this.total += bytes;
  }

  /**
   * Calls `wake` once, on a later turn of the clock, when it is this
   * caller's turn and the bucket is out of debt. Returns a cancel, for a
   * connection that closes while it waits.
   */
  whenAvailable(wake: () => void): () => void {
    const waiter: Waiter = { wake };
    this.waiters.add(waiter);
    this.schedule();
    return () => {
      this.waiters.delete(waiter);
      if (this.waiters.size === 0) this.cancelTimer();
    };
  }

  /** Drops every waiter without waking it (the service is stopping). */
  close(): void {
    this.waiters.clear();
    this.cancelTimer();
  }

  private refill(): void {
    const now = this.clock.now();
    const elapsedMs = now - this.updatedAt;
    if (elapsedMs <= 0) return;
    this.updatedAt = now;
    this.balance = Math.min(
      this.burstBytes,
      this.balance + (elapsedMs * this.bytesPerSecond) / 1000,
    );
  }

  private schedule(): void {
    if (this.timer || this.waiters.size === 0) return;
    const debt = -this.available;
    // Never wake in the same turn: the caller that queued is inside its own read or write.
    const ms = debt > 0 ? Math.ceil((debt * 1000) / this.bytesPerSecond) : 0;
    this.timer = this.clock.setTimeout(() => this.onTimer(), ms);
  }

  private onTimer(): void {
    this.timer = undefined;
    if (this.available >= 0) {
      const first = this.waiters.values().next().value;
      if (first) {
        this.waiters.delete(first);
        first.wake();
      }
    }
    // The next waiter is checked on a later turn, once the woken one has spent its tokens.
    this.schedule();
  }

  private cancelTimer(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }
}

const RATE_UNITS: Readonly<Record<string, number>> = {
  '': 1,
  k: 1e3,
  m: 1e6,
  g: 1e9,
  ki: 1024,
  mi: 1024 ** 2,
  gi: 1024 ** 3,
};

/** The largest limit accepted: far above any link, well within a double's exact integers. */
export const MAX_RATE_LIMIT_BYTES_PER_SECOND = 1e12;

/**
 * Reads a rate limit such as `500k`, `2M`, `10MiB` or `1500000` into bytes
 * per second. SI prefixes are powers of 1000 (k = 1000, M = 1000², G =
 * 1000³), IEC ones powers of 1024 (Ki, Mi, Gi); a trailing `B` and `/s`
 * are optional; prefixes ignore case. `0` (or no value) means no limit,
 * and so returns 0. Anything else is an OptionError naming `field`.
 */
export function parseRateLimit(text: string | undefined, field: string): number {
  if (text === undefined) return 0;
  const match = /^(\d+(?:\.\d+)?)\s*([kmg]i?)?(B)?(\/s)?$/i.exec(text.trim());
  // A lone lowercase b reads as bits to many people; the limits are in bytes.
  if (!match || (match[3] !== undefined && match[3] !== 'B')) {
    throw new OptionError(
      field,
      `"${text}" is not a rate in bytes per second (examples: 500k, 2M, 10MiB, 0 for no limit)`,
    );
  }
  const value = Number(match[1]) * RATE_UNITS[(match[2] ?? '').toLowerCase()]!;
  if (value > MAX_RATE_LIMIT_BYTES_PER_SECOND)
    throw new OptionError(
      field,
      `"${text}" is more than ${MAX_RATE_LIMIT_BYTES_PER_SECOND} bytes/s`,
    );
  if (value > 0 && value < 1)
    throw new OptionError(field, `"${text}" is less than 1 byte/s (use 0 for no limit)`);
  return Math.round(value);
}

/** A rate for people: `1.5 MiB/s`, `820 KiB/s`, `12 B/s`. */
export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(bytesPerSecond)}/s`;
}

/** A size for people, in IEC units: `1.5 MiB`, `820 KiB`, `12 B`. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = Math.max(0, bytes);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  const digits = unit === 0 || value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${value.toFixed(digits)} ${units[unit]}`;
}
