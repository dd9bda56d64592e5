/**
 * LEDBAT congestion control (RFC 6817, as BEP 29 applies it): the window
 * grows while the one-way queueing delay we cause is under the target and
 * shrinks above it, so a bulk µTP transfer gives way to other traffic on the
 * same link. Pure: the caller feeds it acknowledgements, delay samples and
 * losses with its own clock.
 */

/** Queueing delay LEDBAT aims at (BEP 29: 100 ms). */
export const LEDBAT_TARGET_US = 100_000;
/** Most the window may grow in one round trip with no delay at all (libutp's constant). */
export const MAX_CWND_INCREASE_BYTES_PER_RTT = 3_000;
/**
 * Slow start (doubling per round trip) stops here. A delay signal needs a
 * queue to build; a receiver's UDP socket buffer (about 200 KB by default,
 * some 90 full-size packets) overflows before that on a fast, empty link.
 */
export const SLOW_START_THRESHOLD_BYTES = 64 * 1024;
/**
 * Most bytes in flight. They are also what sits in the bottleneck's queue
 * while our process waits for a core: when it is not scheduled, nothing is
 * sent, and the link idles once the queue has drained. At 40 Mbit/s, 128 KiB
 * is 26 ms of queue; on the 2-core project machine at load 15-29 that let
 * µTP fall to 65-76% of TCP in two of four runs of bench:net's utp-vs-tcp,
 * and in six alternating 6 s transfers it averaged 34.3 Mbit/s against
 * 36.5 Mbit/s with 256 KiB. 256 KiB (about 200 packets) is still below the
 * some 250 packets in flight past a lost one at which libtorrent
 * (qBittorrent) stalled for good (it holds out-of-order packets in its
 * receive buffer and, once that is full, drops even the packet that fills the
 * hole; the connection also keeps everything past the cumulative ack within
 * the remote's advertised window), and within one selective ACK's 256 bits.
 * LEDBAT's 100 ms target still bounds it on a slower link.
 */
export const LEDBAT_MAX_WINDOW_BYTES = 256 * 1024;
/** How long a base-delay minimum counts: two one-minute buckets. */
export const BASE_DELAY_BUCKET_MS = 60_000;
/**
 * The current delay is the least sample of the last CURRENT_DELAY_WINDOW_MS,
 * and of at least the last CURRENT_DELAY_FILTER samples (RFC 6817's
 * CURRENT_FILTER, over time rather than a count). A receiver that was not
 * scheduled for a while reads a backlog of packets at once and stamps each
 * with the time it read it, so after every such pause a burst of samples
 * shows a queue that is not on the link (on the loaded 2-core machine, with
 * only the last 4 samples, the window fell from 126 to 75 KB within 100 ms
 * with no loss, the delay reading 14-17 ms before and after). A real queue,
 * e.g. a TCP flow's, stays for many round trips.
 */
export const CURRENT_DELAY_FILTER = 4;
export const CURRENT_DELAY_WINDOW_MS = 200;
/**
 * Most of the window given up in one round trip above the target (LEDBAT++,
 * draft-irtf-iccrg-ledbat-plus-plus: multiplicative decrease, no faster than
 * TCP's halving).
 */
export const MAX_DECREASE_PER_RTT = 0.5;

export interface LedbatOptions {
  /** Largest payload per packet: the smallest window is one of these. */
  readonly packetBytes: number;
  readonly initialWindowBytes?: number;
  readonly maxWindowBytes?: number;
  readonly targetUs?: number;
}

export class Ledbat {
  /** Congestion window: bytes we may have in flight. */
  window: number;
  private readonly packetBytes: number;
  private readonly maxWindow: number;
  private readonly targetUs: number;
  /** Slow start doubles the window per round trip until the first loss or half the target. */
  private slowStart = true;
  private baseCurrent = Number.POSITIVE_INFINITY;
  private basePrevious = Number.POSITIVE_INFINITY;
  private bucketStartMs: number | undefined;
  /** Reference the u32 delay samples are taken relative to, so clock offsets and wrap cancel out. */
  private reference: number | undefined;
  /** Latest samples relative to the reference with their time, newest last. */
  private readonly recent: Array<{ atMs: number; relative: number }> = [];
  /** Latest queueing delay estimate, microseconds (for stats and tests). */
  queueingDelayUs = 0;

  constructor(options: LedbatOptions) {
    this.packetBytes = options.packetBytes;
    this.maxWindow = options.maxWindowBytes ?? LEDBAT_MAX_WINDOW_BYTES;
    this.targetUs = options.targetUs ?? LEDBAT_TARGET_US;
    this.window = options.initialWindowBytes ?? 4 * options.packetBytes;
  }

  get minWindow(): number {
    return 2 * this.packetBytes;
  }

  /**
   * One acknowledgement: `ackedBytes` newly acknowledged, `delaySampleUs` the
   * remote's timestamp difference (its clock minus ours, u32), `nowMs` our clock.
   */
  onAck(ackedBytes: number, delaySampleUs: number | undefined, nowMs: number): void {
    if (ackedBytes <= 0) return;
    if (delaySampleUs !== undefined) this.sample(delaySampleUs >>> 0, nowMs);
    const offTarget = (this.targetUs - this.queueingDelayUs) / this.targetUs;
    if (
      this.slowStart &&
      this.queueingDelayUs < this.targetUs / 2 &&
      this.window < SLOW_START_THRESHOLD_BYTES
    ) {
      this.window += ackedBytes;
    } else {
      this.slowStart = false;
      if (this.queueingDelayUs <= this.targetUs) {
        // Scaled by the share of the window this ack covers: per round trip at most MAX_CWND_INCREASE.
        const windowFactor = ackedBytes / Math.max(this.window, ackedBytes);
        this.window += MAX_CWND_INCREASE_BYTES_PER_RTT * offTarget * windowFactor;
      } else {
        // Above the target the window gives up a share of itself per round
        // trip, (delay / target - 1), at most half. The linear decrease of
        // RFC 6817 and libutp takes some 20 round trips to leave a queue
        // that a loss-based TCP flow keeps at 300 ms (measured in bench:net's
        // utp-yield: µTP still sent 20 Mbit/s in the first second of a TCP
        // flow and 5 in the fifth); this leaves it in about six.
        const share = Math.min(MAX_DECREASE_PER_RTT, -offTarget);
        this.window -= share * ackedBytes;
      }
    }
    this.clamp();
  }

  /** A packet was lost (fast retransmit): halve. */
  onLoss(): void {
    this.slowStart = false;
    this.window /= 2;
    this.clamp();
  }

  /** The retransmission timer fired: back to the smallest window. */
  onTimeout(): void {
    this.slowStart = false;
    this.window = this.minWindow;
  }

  private clamp(): void {
    this.window = Math.max(this.minWindow, Math.min(this.maxWindow, this.window));
  }

  private sample(sampleUs: number, nowMs: number): void {
    this.reference ??= sampleUs;
    // Relative to the first sample, signed: survives the u32 wrap and any clock offset.
    const relative = (sampleUs - this.reference) | 0;
    if (this.bucketStartMs === undefined) this.bucketStartMs = nowMs;
    if (nowMs - this.bucketStartMs >= BASE_DELAY_BUCKET_MS) {
      this.basePrevious = this.baseCurrent;
      this.baseCurrent = Number.POSITIVE_INFINITY;
      this.bucketStartMs = nowMs;
    }
    this.baseCurrent = Math.min(this.baseCurrent, relative);
    const base = Math.min(this.baseCurrent, this.basePrevious);
    this.recent.push({ atMs: nowMs, relative });
    while (
      this.recent.length > CURRENT_DELAY_FILTER &&
      nowMs - this.recent[0]!.atMs > CURRENT_DELAY_WINDOW_MS
    )
      this.recent.shift();
    let least = relative;
    for (const r of this.recent) least = Math.min(least, r.relative);
    this.queueingDelayUs = Math.max(0, least - base);
  }
}
