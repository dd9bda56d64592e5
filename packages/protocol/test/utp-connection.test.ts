/**
 * The µTP connection state machine and LEDBAT on an injected clock: a
 * simulated network between two connections that can lose, reorder, delay
 * and duplicate packets. Every run is deterministic (seeded) and bounded by a
 * step count, and the verdict is the bytes that arrived.
 */
import { describe, expect, it } from 'vitest';
import {
  CURRENT_DELAY_FILTER,
  CURRENT_DELAY_WINDOW_MS,
  decodeUtpPacket,
  encodeUtpPacket,
  LEDBAT_MAX_WINDOW_BYTES,
  LEDBAT_TARGET_US,
  Ledbat,
  seqDiff,
  UTP_MAX_PACKETS_AHEAD,
  UTP_PACKET_BYTES,
  UtpConnection,
  type UtpPacket,
} from '../src/index.js';

/** A small seeded PRNG, so a lossy run is the same every time. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Faults {
  /** Probability a packet is dropped. */
  loss?: number;
  /** Probability a packet is delivered twice. */
  duplicate?: number;
  /** Extra random delay in ms (reorders packets). */
  jitterMs?: number;
  /** Drop the first packet of this type from this side. */
  dropFirst?: { from: 'a' | 'b'; type: UtpPacket['type'] };
  /** Deliver nothing from this side at all. */
  silent?: 'a' | 'b';
  /** The receive window B advertises, in bytes (default the connection's own). */
  bWindow?: number;
  /** Extra delay of A's packets, ms: the queue another flow keeps on A's link. */
  queueMs?: number;
  /** Drop `count` consecutive data packets from A after the first `after` (a receiver's full socket buffer). */
  burstLoss?: { after: number; count: number };
  /**
   * B sizes its selective ACKs as libtorrent does: as many bytes as the bits
   * it holds need (1, 2, 3, 5... bytes), not a multiple of 4 as BEP 29 says.
   */
  libtorrentSack?: boolean;
  /** A's largest payload per packet (default the connection's own). */
  aPacketBytes?: number;
}

/**
 * Encodes like libtorrent 2.0 (utp_socket_impl::send_pkt): the selective ACK
 * bitmask is (span + 7) / 8 bytes, where span runs from ack + 2 to the
 * newest packet held out of order.
 */
function encodeLibtorrentStyle(packet: UtpPacket): Buffer {
  const plain = encodeUtpPacket({ ...packet, sack: undefined });
  const sack = packet.sack;
  if (!sack) return plain;
  let bytes = sack.length;
  while (bytes > 1 && sack[bytes - 1] === 0) bytes--;
  plain[1] = 1; // selective ACK
  return Buffer.concat([
    plain.subarray(0, 20),
    Buffer.from([0, bytes]),
    sack.subarray(0, bytes),
    plain.subarray(20),
  ]);
}

interface Side {
  conn: UtpConnection;
  received: Buffer[];
  ended: boolean;
  closed: boolean;
  error: Error | undefined;
  connected: boolean;
  sentTypes: UtpPacket['type'][];
}

/** Two connections over a simulated link: 5 ms one way, plus faults. */
class Link {
  now = 0;
  private queue: Array<{ at: number; to: 'a' | 'b'; bytes: Buffer }> = [];
  readonly random: () => number;
  a!: Side;
  b!: Side;
  private dropped = new Set<string>();
  private dataFromA = 0;
  private lastAckFromB: number | undefined;
  /** Datagrams the receiving side could not decode and dropped, as the endpoint does. */
  undecodable = 0;
  /** Selective ACKs from B whose length is not a multiple of 4. */
  oddSacks = 0;
  /** Most packets A had sent past B's cumulative ack at once. */
  maxAheadOfAck = 0;

  constructor(
    readonly faults: Faults = {},
    seed = 1,
  ) {
    this.random = prng(seed);
  }

  private side(name: 'a' | 'b'): Side {
    return {
      conn: undefined as unknown as UtpConnection,
      received: [],
      ended: false,
      closed: false,
      error: undefined,
      connected: name === 'b',
      sentTypes: [],
    };
  }

  private options(name: 'a' | 'b', side: Side) {
    const bWindow = this.faults.bWindow;
    return {
      ...(name === 'b' && bWindow !== undefined ? { receiveWindow: () => bWindow } : {}),
      ...(name === 'a' && this.faults.aPacketBytes !== undefined
        ? { packetBytes: this.faults.aPacketBytes }
        : {}),
      now: () => this.now,
      random: this.random,
      send: (packet: UtpPacket) => this.transmit(name, packet),
      onConnect: () => {
        side.connected = true;
      },
      onData: (bytes: Uint8Array) => side.received.push(Buffer.from(bytes)),
      onEnd: () => {
        side.ended = true;
        side.conn.end();
      },
      onClose: (error?: Error) => {
        side.closed = true;
        side.error = error;
      },
    };
  }

  /** A connects; B accepts the SYN when it arrives. */
  open(): this {
    this.a = this.side('a');
    this.b = this.side('b');
    this.a.conn = UtpConnection.connect(this.options('a', this.a), 1000);
    return this;
  }

  private transmit(from: 'a' | 'b', packet: UtpPacket): void {
    (from === 'a' ? this.a : this.b).sentTypes.push(packet.type);
    if (from === 'a' && packet.type === 'data' && this.lastAckFromB !== undefined) {
      this.maxAheadOfAck = Math.max(this.maxAheadOfAck, seqDiff(packet.seq, this.lastAckFromB));
    }
    const f = this.faults;
    if (f.silent === from) return;
    const key = `${from}:${packet.type}`;
    if (
      f.dropFirst &&
      f.dropFirst.from === from &&
      f.dropFirst.type === packet.type &&
      !this.dropped.has(key)
    ) {
      this.dropped.add(key);
      return;
    }
    if (f.loss && this.random() < f.loss) return;
    if (f.burstLoss && from === 'a' && packet.type === 'data') {
      this.dataFromA++;
      const n = this.dataFromA - f.burstLoss.after;
      if (n > 0 && n <= f.burstLoss.count) return;
    }
    const libtorrentStyle = f.libtorrentSack && from === 'b';
    const bytes = libtorrentStyle ? encodeLibtorrentStyle(packet) : encodeUtpPacket(packet);
    if (libtorrentStyle && bytes[1] === 1 && bytes[21]! % 4 !== 0) this.oddSacks++;
    const copies = f.duplicate && this.random() < f.duplicate ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const queued = from === 'a' ? (f.queueMs ?? 0) : 0;
      const at = this.now + 5 + queued + (f.jitterMs ? this.random() * f.jitterMs : 0);
      this.queue.push({ at, to: from === 'a' ? 'b' : 'a', bytes });
    }
  }

  private deliver(to: 'a' | 'b', bytes: Buffer): void {
    let packet: UtpPacket;
    try {
      packet = decodeUtpPacket(bytes);
    } catch {
      this.undecodable++;
      return;
    }
    if (to === 'b' && this.b.conn === undefined) {
      if (packet.type !== 'syn') return;
      this.b.conn = UtpConnection.accept(this.options('b', this.b), packet);
      return;
    }
    // What A knows of B's cumulative ack: the newest that has reached it.
    if (
      to === 'a' &&
      (this.lastAckFromB === undefined || seqDiff(packet.ack, this.lastAckFromB) > 0)
    ) {
      this.lastAckFromB = packet.ack;
    }
    (to === 'a' ? this.a : this.b).conn.receive(packet);
  }

  /** Runs the clock in 10 ms ticks until `done` or `maxMs` of simulated time. */
  run(done: () => boolean, maxMs = 600_000): void {
    const end = this.now + maxMs;
    while (!done() && this.now < end) {
      this.now += 10;
      const due = this.queue.filter((m) => m.at <= this.now).sort((x, y) => x.at - y.at);
      this.queue = this.queue.filter((m) => m.at > this.now);
      for (const m of due) this.deliver(m.to, m.bytes);
      this.a.conn.tick();
      this.b.conn?.tick();
    }
  }
}

function payload(n: number, seed: number): Buffer {
  const r = prng(seed);
  const out = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) out[i] = (r() * 256) | 0;
  return out;
}

/** Writes `data` from A to B, respecting backpressure, then ends A. */
function pump(link: Link, data: Buffer): () => void {
  let at = 0;
  return () => {
    while (at < data.length && link.a.connected) {
      const chunk = data.subarray(at, at + 16_384);
      at += chunk.length;
      if (!link.a.conn.write(chunk)) break;
    }
    if (at >= data.length) link.a.conn.end();
  };
}

function transfer(faults: Faults, size: number, seed = 7) {
  const link = new Link(faults, seed).open();
  const data = payload(size, seed);
  const step = pump(link, data);
  link.run(() => {
    step();
    return link.a.closed && link.b.closed;
  });
  return { link, data, got: Buffer.concat(link.b.received) };
}

describe('UtpConnection', () => {
  it('connects, carries bytes in order, and closes cleanly on both sides with FIN', () => {
    const { link, data, got } = transfer({}, 300_000);
    expect(got.equals(data)).toBe(true);
    expect(link.b.ended).toBe(true);
    expect([link.a.error, link.b.error]).toEqual([undefined, undefined]);
    expect(link.a.conn.stats.resent).toBe(0);
    expect(link.a.sentTypes[0]).toBe('syn');
    expect(link.a.sentTypes).toContain('fin');
    expect(link.b.sentTypes).toContain('fin');
  });

  it('carries bytes both ways at once', () => {
    const link = new Link({ jitterMs: 3 }).open();
    const up = payload(50_000, 1);
    const down = payload(70_000, 2);
    let wroteDown = false;
    const step = pump(link, up);
    link.run(() => {
      step();
      if (!wroteDown && link.b.conn) {
        wroteDown = true;
        link.b.conn.write(down);
      }
      return (
        Buffer.concat(link.b.received).length === up.length &&
        Buffer.concat(link.a.received).length === down.length
      );
    });
    expect(Buffer.concat(link.b.received).equals(up)).toBe(true);
    expect(Buffer.concat(link.a.received).equals(down)).toBe(true);
  });

  it('recovers from 10% loss both ways by retransmission', () => {
    const { link, data, got } = transfer({ loss: 0.1 }, 200_000, 3);
    expect(got.equals(data)).toBe(true);
    expect(link.a.conn.stats.resent).toBeGreaterThan(0);
    expect([link.a.error, link.b.error]).toEqual([undefined, undefined]);
  });

  it('puts reordered packets back in order, with selective ACKs and fast retransmit', () => {
    const { link, data, got } = transfer({ jitterMs: 40 }, 200_000, 4);
    expect(got.equals(data)).toBe(true);
    expect(link.b.closed && link.a.closed).toBe(true);
  });

  it('a lost packet among many is resent on three selective ACKs, before its timeout', () => {
    // 2% loss with a long run: holes get filled by fast retransmit, not only by timeouts.
    const { link, data, got } = transfer({ loss: 0.02 }, 400_000, 5);
    expect(got.equals(data)).toBe(true);
    expect(link.a.conn.stats.fastResends).toBeGreaterThan(0);
  });

  // Regression: against libtorrent (qBittorrent), a burst of 40 packets lost at
  // once was resent one packet per retransmission timeout, the timeout doubling
  // each time, until the transfer stalled. Selective ACKs now mark every packet
  // with three acknowledged after it as lost, and all of them go again at once.
  it('repairs a burst of 40 lost packets in a round trip or two, not one round trip each', () => {
    // Simulated time only (the injected clock): the same transfer with and without the burst.
    const clean = transfer({}, 300_000, 10);
    const burst = transfer({ burstLoss: { after: 171, count: 40 } }, 300_000, 10);
    expect(burst.got.equals(burst.data)).toBe(true);
    expect(burst.link.a.conn.stats.timeouts).toBe(0);
    expect(burst.link.a.conn.stats.fastResends).toBeGreaterThanOrEqual(40);
    // One round trip on this link is 10 ms; one packet per round trip would cost 400 ms more.
    expect(burst.link.now - clean.link.now).toBeLessThan(100);
  });

  // Regression: libtorrent keeps selectively acked packets in its receive
  // buffer; a sender that counted only unacked bytes against the window filled
  // it past a hole, and libtorrent then dropped the hole's resend for ever.
  it('keeps everything past the cumulative ack, selectively acked or not, within the remote window', () => {
    const window = 40 * UTP_PACKET_BYTES;
    const { link, data, got } = transfer(
      { bWindow: window, burstLoss: { after: 100, count: 1 } },
      200_000,
      12,
    );
    expect(got.equals(data)).toBe(true);
    expect(link.maxAheadOfAck).toBeGreaterThan(5);
    expect(link.maxAheadOfAck).toBeLessThanOrEqual(window / UTP_PACKET_BYTES + 1);
  });

  // Regression: qBittorrent (libtorrent 2.0) stalled for 64 s after a burst
  // with loss. libtorrent sizes its selective ACK to the packets it holds (a
  // 3- or 5-byte bitmask), and the decoder refused any length but a multiple
  // of 4, so every ACK and request libtorrent sent while it held a hole was
  // dropped as malformed: the owner heard silence, resent a packet libtorrent
  // already had, and reset the connection after 7 timeouts.
  it('takes selective ACKs of any length (libtorrent sends 1, 2, 3, 5... bytes): a burst loss is repaired without a timeout', () => {
    const faults: Faults = { burstLoss: { after: 171, count: 40 }, libtorrentSack: true };
    const { link, data, got } = transfer(faults, 300_000, 10);
    expect(link.oddSacks).toBeGreaterThan(0);
    expect(link.undecodable).toBe(0);
    expect(got.equals(data)).toBe(true);
    expect([link.a.error, link.b.error]).toEqual([undefined, undefined]);
    expect(link.a.conn.stats.timeouts).toBe(0);
    expect(link.a.conn.stats.fastResends).toBeGreaterThanOrEqual(40);
  });

  // libtorrent drops, without an ACK, a packet more than 953 ahead of its
  // cumulative ack (libutp: 1024). The windows count bytes, so small packets
  // (here at most 100 bytes each) could put thousands in flight.
  it(`never sends a packet more than ${UTP_MAX_PACKETS_AHEAD} past the remote's cumulative ack, however small the packets`, () => {
    const { link, data, got } = transfer({ aPacketBytes: 100, queueMs: 20 }, 1_500_000, 13);
    expect(got.equals(data)).toBe(true);
    expect(link.maxAheadOfAck).toBeGreaterThan(UTP_MAX_PACKETS_AHEAD / 2);
    expect(link.maxAheadOfAck).toBeLessThanOrEqual(UTP_MAX_PACKETS_AHEAD);
  });

  it('delivers each byte once although every other packet arrives twice', () => {
    const { link, data, got } = transfer({ duplicate: 0.5 }, 150_000, 6);
    expect(got.equals(data)).toBe(true);
    expect(link.b.conn.stats.duplicates).toBeGreaterThan(0);
  });

  it('survives loss, duplicates and reordering together', () => {
    const { data, got } = transfer({ loss: 0.05, duplicate: 0.1, jitterMs: 25 }, 150_000, 8);
    expect(got.equals(data)).toBe(true);
  });

  it('resends a lost SYN, and a lost SYN-ACK (STATE) on the duplicate SYN', () => {
    for (const dropFirst of [
      { from: 'a', type: 'syn' },
      { from: 'b', type: 'state' },
    ] as const) {
      const link = new Link({ dropFirst }).open();
      link.run(() => link.a.connected, 10_000);
      expect(link.a.connected).toBe(true);
      expect(link.a.sentTypes.filter((t) => t === 'syn').length).toBe(2);
    }
  });

  it('gives up connecting when nobody answers', () => {
    const link = new Link({ silent: 'b', loss: 1 }).open();
    link.run(() => link.a.closed, 60_000);
    expect(link.a.error?.message).toMatch(/connect timed out/);
  });

  it('sends keep-alives on an idle connection and closes when the remote vanishes', () => {
    const link = new Link().open();
    link.run(() => link.a.connected);
    const statesBefore = link.b.sentTypes.filter((t) => t === 'state').length;
    link.run(() => false, 65_000);
    expect(link.a.closed || link.b.closed).toBe(false);
    expect(link.b.sentTypes.filter((t) => t === 'state').length).toBeGreaterThan(statesBefore);
    // Now B stops answering altogether: A's idle deadline ends it.
    (link.faults as Faults).silent = 'b';
    link.run(() => link.a.closed, 200_000);
    expect(link.a.error?.message).toMatch(/idle/);
  });

  it('RESET from the remote ends the connection with an error', () => {
    const link = new Link().open();
    link.run(() => link.a.connected);
    link.b.conn.destroy(new Error('test'));
    link.run(() => link.a.closed, 5_000);
    expect(link.a.error?.message).toMatch(/reset by remote/);
  });

  it('keeps data moving when every packet is lost for a while (timeouts back off, then recover)', () => {
    const link = new Link().open();
    const data = payload(60_000, 9);
    const step = pump(link, data);
    link.run(() => link.a.connected);
    link.faults.loss = 1;
    link.run(() => {
      step();
      return false;
    }, 3_000);
    expect(link.a.conn.stats.timeouts).toBeGreaterThan(0);
    link.faults.loss = 0;
    link.run(() => {
      step();
      return link.a.closed && link.b.closed;
    });
    expect(Buffer.concat(link.b.received).equals(data)).toBe(true);
  });
});

describe('UtpConnection under LEDBAT', () => {
  it("gives way to another flow's 300 ms queue within a few of its round trips, and takes the link back after", () => {
    const link = new Link().open();
    const zeros = Buffer.alloc(64 * 1024);
    const write = () => {
      while (link.a.connected && link.a.conn.write(zeros));
    };
    const window = () => link.a.conn.ledbat.window;
    link.run(() => {
      write();
      return window() >= LEDBAT_MAX_WINDOW_BYTES;
    }, 10_000);
    expect(window()).toBe(LEDBAT_MAX_WINDOW_BYTES);
    // A loss-based TCP flow fills the bottleneck's queue: 300 ms more on every packet of ours.
    link.faults.queueMs = 300;
    const queuedAt = link.now;
    link.run(() => {
      write();
      return window() <= 2 * link.a.conn.ledbat.minWindow;
    }, 20_000);
    expect(window()).toBeLessThanOrEqual(2 * link.a.conn.ledbat.minWindow);
    // Round trips are 310 ms now: a linear decrease of 3000 bytes x 2 per round trip needs ~20 (6 s).
    expect(link.now - queuedAt).toBeLessThan(8 * 310);
    expect(link.a.conn.stats.timeouts).toBe(0);
    // The other flow ends: the window grows back.
    link.faults.queueMs = 0;
    link.run(() => {
      write();
      return window() >= LEDBAT_MAX_WINDOW_BYTES / 2;
    }, 20_000);
    expect(window()).toBeGreaterThanOrEqual(LEDBAT_MAX_WINDOW_BYTES / 2);
  });
});

describe('Ledbat', () => {
  const mss = UTP_PACKET_BYTES;
  /** Feeds the same delay sample CURRENT_DELAY_FILTER times, so the filter holds only it. */
  const samples = (ledbat: Ledbat, sampleUs: number, nowMs: number) => {
    for (let i = 0; i < CURRENT_DELAY_FILTER; i++) ledbat.onAck(mss, sampleUs, nowMs);
  };

  it('grows while the queueing delay is under the 100 ms target', () => {
    const ledbat = new Ledbat({ packetBytes: mss });
    const start = ledbat.window;
    for (let t = 0; t < 100; t++) ledbat.onAck(mss, 5_000 + (t % 3) * 1_000, t * 10);
    expect(ledbat.window).toBeGreaterThan(start);
  });

  it('shrinks when the delay it causes exceeds the target, and settles near the target', () => {
    const ledbat = new Ledbat({ packetBytes: mss, initialWindowBytes: 200_000 });
    ledbat.onAck(mss, 1_000_000, 0); // base delay
    ledbat.onLoss(); // leave slow start
    const before = ledbat.window;
    for (let t = 1; t < 200; t++) ledbat.onAck(mss, 1_000_000 + 2 * LEDBAT_TARGET_US, t * 10);
    expect(ledbat.queueingDelayUs).toBe(2 * LEDBAT_TARGET_US);
    expect(ledbat.window).toBeLessThan(before);
    // At exactly the target the window stays put.
    const steady = new Ledbat({ packetBytes: mss, initialWindowBytes: 100_000 });
    steady.onAck(mss, 0, 0);
    steady.onLoss();
    samples(steady, LEDBAT_TARGET_US, 1_000);
    const w = steady.window;
    for (let t = 1; t < 50; t++) steady.onAck(mss, LEDBAT_TARGET_US, 1_000 + t);
    expect(steady.window).toBeCloseTo(w, 6);
  });

  it('measures delay relative to the base across the u32 wrap of the timestamps', () => {
    const ledbat = new Ledbat({ packetBytes: mss });
    ledbat.onAck(mss, 0xffff_fff0, 0);
    samples(ledbat, 0x0000_1000, 1_000); // wrapped: 4112 µs later
    expect(ledbat.queueingDelayUs).toBe(0x1000 + 0x10);
  });

  it('forgets a base delay older than two minutes', () => {
    const ledbat = new Ledbat({ packetBytes: mss });
    ledbat.onAck(mss, 1_000, 0);
    samples(ledbat, 50_000, 61_000);
    expect(ledbat.queueingDelayUs).toBe(49_000);
    samples(ledbat, 50_000, 122_000);
    samples(ledbat, 50_000, 183_000);
    expect(ledbat.queueingDelayUs).toBe(0);
  });

  it('takes the least sample of the last 200 ms as the current delay: a burst read late is not a queue, a delay that stays is', () => {
    const ledbat = new Ledbat({ packetBytes: mss, initialWindowBytes: 100_000 });
    samples(ledbat, 10_000, 0);
    ledbat.onLoss(); // out of slow start, 50 000 bytes
    const before = ledbat.window;
    // A receiver that was not scheduled for 150 ms reads its backlog at once: a burst of late samples.
    for (let i = 0; i < 20; i++) ledbat.onAck(mss, 10_000 + 3 * LEDBAT_TARGET_US - i * 1_000, 150);
    expect(ledbat.queueingDelayUs).toBe(0);
    expect(ledbat.window).toBeGreaterThanOrEqual(before);
    // The same delay in every sample for longer than CURRENT_DELAY_WINDOW_MS is a queue.
    for (let t = 160; t <= 160 + CURRENT_DELAY_WINDOW_MS + 20; t += 20)
      ledbat.onAck(mss, 10_000 + 3 * LEDBAT_TARGET_US, t);
    expect(ledbat.queueingDelayUs).toBe(3 * LEDBAT_TARGET_US);
    expect(ledbat.window).toBeLessThan(before);
  });

  it('above the target gives up a share of the window per round trip, at most half: out of a 300 ms queue in a few round trips', () => {
    const ledbat = new Ledbat({ packetBytes: mss, initialWindowBytes: LEDBAT_MAX_WINDOW_BYTES });
    samples(ledbat, 0, 0);
    ledbat.onLoss();
    ledbat.onAck(1, 0, 0);
    const full = LEDBAT_MAX_WINDOW_BYTES / 2;
    expect(ledbat.window).toBeCloseTo(full, -1);
    // A round trip = a window's worth of acks. At 3x the target, each halves it.
    let roundTrips = 0;
    while (ledbat.window > ledbat.minWindow && roundTrips < 50) {
      const window = ledbat.window;
      for (let acked = 0; acked < window; acked += mss)
        ledbat.onAck(mss, 3 * LEDBAT_TARGET_US, roundTrips * 300);
      roundTrips++;
      if (ledbat.window > ledbat.minWindow)
        expect(ledbat.window).toBeGreaterThanOrEqual(window / 2 - mss);
    }
    expect(ledbat.window).toBe(ledbat.minWindow);
    // Halving from 64 KiB to two packets: five or six round trips, not the ~20 of a linear decrease.
    expect(roundTrips).toBeLessThanOrEqual(7);
    // Just above the target it gives up little: 10% over, about 10% per round trip.
    const near = new Ledbat({ packetBytes: mss, initialWindowBytes: 100_000 });
    samples(near, 0, 0);
    near.onLoss();
    const w = near.window;
    for (let acked = 0; acked < w; acked += mss) near.onAck(mss, 1.1 * LEDBAT_TARGET_US, 1_000);
    expect(near.window).toBeGreaterThan(0.85 * w);
    expect(near.window).toBeLessThan(0.95 * w);
  });

  it('halves on loss and drops to the minimum on timeout', () => {
    const ledbat = new Ledbat({ packetBytes: mss, initialWindowBytes: 100_000 });
    ledbat.onLoss();
    expect(ledbat.window).toBe(50_000);
    ledbat.onTimeout();
    expect(ledbat.window).toBe(ledbat.minWindow);
  });
});
