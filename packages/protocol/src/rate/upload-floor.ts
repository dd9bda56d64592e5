import type { Clock } from '../time/clock.js';

/**
 * The least our upload to a remote must reach while we hold data for it.
 * Chosen to cut a reader that takes nothing, never an honest slow one:
 * - a 56 kbit/s path carries about 6.5 KB/s of payload: 50 times the floor,
 *   so a modem user stays above it with dozens of connections sharing that
 *   link;
 * - a 1 Mbit/s uplink (ours) shared by the full 256 connections gives each
 *   about 488 B/s, four times the floor;
 * - --upload-limit never trips it: the limiter holds pieces back before the
 *   socket, so our send buffer is empty while a connection waits for tokens,
 *   and only time with bytes waiting in it is judged.
 * A remote that reads 128 B/s on purpose holds its slot, but pays for it
 * with a reading client; one that reads nothing is cut.
 */
export const DEFAULT_MIN_UPLOAD_BYTES_PER_SECOND = 128;
/**
 * The span over which the floor is measured, all of it with data waiting:
 * long enough to smooth TCP's backoff after a loss on a slow path (a
 * retransmission timeout is 1 s, doubling) and the unfairness between
 * connections on a shared bottleneck; short enough that a slot held by a
 * reader that takes nothing (keep-alives keep the 120 s idle timeout away)
 * comes back within a minute.
 */
export const DEFAULT_MIN_UPLOAD_WINDOW_MS = 30_000;
/** Time after a connection opens that is never judged: the handshake, TCP's slow start, µTP's LEDBAT ramp. */
export const DEFAULT_MIN_UPLOAD_GRACE_MS = 10_000;
/** Samples per window. */
const SAMPLES_PER_WINDOW = 6;

export interface UploadFloorSettings {
  /** Default DEFAULT_MIN_UPLOAD_BYTES_PER_SECOND. */
  readonly bytesPerSecond?: number | undefined;
  /** Default DEFAULT_MIN_UPLOAD_WINDOW_MS. */
  readonly windowMs?: number | undefined;
  /** Default DEFAULT_MIN_UPLOAD_GRACE_MS. */
  readonly graceMs?: number | undefined;
}

export interface UploadFloorOptions extends UploadFloorSettings {
  readonly clock: Clock;
}

interface Sample {
  readonly atMs: number;
  readonly taken: number;
}

/**
 * A minimum upload rate for one connection, as a pure policy: its owner
 * calls `sample()` every `sampleEveryMs` with how many bytes the remote has
 * taken from us so far and whether we hold bytes for it now. While bytes
 * wait in every sample over a whole window (after the grace), the remote
 * must have taken `bytesPerSecond` on average over it; otherwise `sample()`
 * returns the one-line reason to close it.
 *
 * "Taken" is what left our send buffer: for TCP, what the kernel accepted,
 * whose buffer only drains as the remote reads. A remote that keeps our
 * socket full and reads nothing thus shows as nothing taken with data
 * waiting, which no idle timer sees: its keep-alives count as traffic.
 */
export class UploadFloor {
  readonly bytesPerSecond: number;
  readonly windowMs: number;
  readonly graceMs: number;
  private readonly clock: Clock;
  private readonly openedAtMs: number;
  /** The samples of the current run with data waiting, oldest first; empty after one without. */
  private run: Sample[] = [];

  constructor(options: UploadFloorOptions) {
    this.clock = options.clock;
    this.bytesPerSecond = nonNegative(
      options.bytesPerSecond ?? DEFAULT_MIN_UPLOAD_BYTES_PER_SECOND,
      'bytesPerSecond',
    );
    this.windowMs = nonNegative(options.windowMs ?? DEFAULT_MIN_UPLOAD_WINDOW_MS, 'windowMs');
    if (this.windowMs === 0) throw new RangeError('windowMs must be more than 0');
    this.graceMs = nonNegative(options.graceMs ?? DEFAULT_MIN_UPLOAD_GRACE_MS, 'graceMs');
    this.openedAtMs = this.clock.now();
  }

  /** How often to call `sample()`. */
  get sampleEveryMs(): number {
    return this.windowMs / SAMPLES_PER_WINDOW;
  }

  /**
   * One look at the connection: `taken`, bytes the remote has taken from us
   * since it opened; `waiting`, whether bytes for it wait in our buffer now.
   * Returns why to close it, or undefined.
   */
  sample(taken: number, waiting: boolean): string | undefined {
    if (!waiting) {
      this.run = [];
      return undefined;
    }
    const now = this.clock.now();
    this.run.push({ atMs: now, taken });
    const from = now - this.windowMs;
    if (from < this.openedAtMs + this.graceMs) return undefined;
    // The base is the newest sample at or before the window's start; older ones are no longer needed.
    let base = -1;
    while (base + 1 < this.run.length && this.run[base + 1]!.atMs <= from) base++;
    if (base < 0) return undefined; // data has waited for less than a window
    this.run.splice(0, base);
    const first = this.run[0]!;
    const spanMs = now - first.atMs;
    const moved = taken - first.taken;
    if (moved * 1000 >= this.bytesPerSecond * spanMs) return undefined;
    return `upload below ${this.bytesPerSecond} B/s: ${moved} bytes taken in ${Math.round(spanMs / 1000)} s with data waiting`;
  }
}

function nonNegative(value: number, field: string): number {
  if (!(value >= 0) || !Number.isFinite(value))
    throw new RangeError(`${field} must be 0 or more, not ${value}`);
  return value;
}
