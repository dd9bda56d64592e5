/**
 * One accepted µTP connection against a remote written by hand, on an
 * injected clock: a forged source that never sees our packets, blind ACK
 * guesses, ACKs for packets never sent, outsize packets out of order, data
 * past our window. Every verdict is a count the connection keeps or a count
 * of what it sent.
 */
import { describe, expect, it } from 'vitest';
import {
  ReorderBudget,
  sackedSeqs,
  seqAdd,
  UTP_AMPLIFICATION_FACTOR,
  UTP_MAX_UNPROVEN_BAD_ACKS,
  UTP_RECEIVE_OVERRUN_BYTES,
  UTP_REORDER_MAX_BYTES,
  UtpConnection,
  type UtpPacket,
  utpWireBytes,
} from '../src/index.js';

const REMOTE_ID = 7000;
const REMOTE_SEQ = 500;

interface Remote {
  readonly conn: UtpConnection;
  /** Everything the connection sent, in order. */
  readonly sent: UtpPacket[];
  /** Bytes it handed up. */
  readonly delivered: Buffer[];
  readonly budget: ReorderBudget;
  /** Our initial sequence number, as the STATE answering the SYN carried it. */
  readonly isn: number;
  connected: boolean;
  /** A packet from the remote on this connection; by default DATA that acks our ISN. */
  packet(fields: Partial<UtpPacket>): UtpPacket;
  deliveredBytes(): number;
  wireSent(): number;
}

function acceptedFrom(
  options: { budget?: ReorderBudget; receiveWindow?: () => number } = {},
): Remote {
  const sent: UtpPacket[] = [];
  const delivered: Buffer[] = [];
  const budget = options.budget ?? new ReorderBudget(64 * 1024 * 1024);
  const syn: UtpPacket = {
    type: 'syn',
    connectionId: REMOTE_ID,
    timestampUs: 0,
    timestampDiffUs: 0,
    windowSize: 1 << 20,
    seq: REMOTE_SEQ,
    ack: 0,
    payload: new Uint8Array(0),
  };
  const remote: Remote = {
    sent,
    delivered,
    budget,
    connected: false,
    isn: 0,
    conn: undefined as unknown as UtpConnection,
    packet: (fields) => ({
      ...syn,
      type: 'data',
      connectionId: REMOTE_ID + 1,
      seq: seqAdd(REMOTE_SEQ, 1),
      ack: seqAdd(remote.isn, -1),
      ...fields,
    }),
    deliveredBytes: () => delivered.reduce((n, b) => n + b.length, 0),
    wireSent: () => sent.reduce((n, p) => n + utpWireBytes(p), 0),
  };
  const conn = UtpConnection.accept(
    {
      now: () => 0,
      send: (p) => sent.push(p),
      onConnect: () => {
        remote.connected = true;
      },
      onData: (b) => delivered.push(Buffer.from(b)),
      onEnd: () => {},
      onClose: () => {},
      reorderBudget: budget,
      ...(options.receiveWindow ? { receiveWindow: options.receiveWindow } : {}),
    },
    syn,
  );
  Object.assign(remote, { conn, isn: sent[0]!.seq });
  return remote;
}

/** A BitTorrent handshake, `interested` and one request: what the reflection attack sends after its SYN. */
const HANDSHAKE_AND_REQUEST = Buffer.alloc(68 + 5 + 17, 1);

describe('an accepted µTP connection before the remote proves its address', () => {
  it('takes no data and reports no connection until an ack echoes our random sequence number', () => {
    const r = acceptedFrom();
    expect(r.sent.map((p) => p.type)).toEqual(['state']);
    // A forged source never saw our STATE: its ack is a guess, here a wrong one.
    r.conn.receive(r.packet({ ack: seqAdd(r.isn, 1000), payload: Buffer.from('hello') }));
    expect(r.delivered).toEqual([]);
    expect(r.connected).toBe(false);
    expect(r.conn.state).toBe('syn-recv');
    expect(r.conn.stats.badAcks).toBe(1);
    // The real remote acks the seq before our ISN (the STATE's seq is the next one we send).
    r.conn.receive(r.packet({ payload: Buffer.from('hello') }));
    expect(r.connected).toBe(true);
    expect(Buffer.concat(r.delivered).toString()).toBe('hello');
  });

  it(`sends an unproven remote at most ${UTP_AMPLIFICATION_FACTOR}x the bytes it sent, however much is written to it`, () => {
    const r = acceptedFrom();
    let received = 20; // the SYN
    const from = (p: UtpPacket) => {
      received += utpWireBytes(p);
      r.conn.receive(p);
    };
    // The reflection attack: SYN, then a handshake with a request, acked blind.
    from(r.packet({ ack: seqAdd(r.isn, 7), payload: HANDSHAKE_AND_REQUEST }));
    // The application answers as a seeder would (a 16 KiB block), and more.
    r.conn.write(Buffer.alloc(16_384));
    r.conn.write(Buffer.alloc(100_000));
    // The SYN again and again: each repeat is answered, never beyond the budget.
    for (let i = 0; i < 10; i++) from({ ...r.packet({}), type: 'syn', connectionId: REMOTE_ID });
    expect(r.wireSent()).toBeLessThanOrEqual(UTP_AMPLIFICATION_FACTOR * received);
    expect(r.conn.stats.wireBytesReceived).toBe(received);
    expect(r.sent.every((p) => p.type === 'state')).toBe(true);
  });

  it(`is dropped, without a RESET, after ${UTP_MAX_UNPROVEN_BAD_ACKS} blind guesses at the ack`, () => {
    const r = acceptedFrom();
    for (let i = 1; i <= UTP_MAX_UNPROVEN_BAD_ACKS; i++) {
      expect(r.conn.isClosed).toBe(false);
      r.conn.receive(r.packet({ type: 'state', ack: seqAdd(r.isn, 100 * i) }));
    }
    expect(r.conn.isClosed).toBe(true);
    expect(r.connected).toBe(false);
    expect(r.sent.map((p) => p.type)).toEqual(['state']);
    // The right ack, too late: nothing.
    r.conn.receive(r.packet({ payload: Buffer.from('x') }));
    expect(r.delivered).toEqual([]);
  });
});

describe('a connected µTP connection', () => {
  function connected(options: Parameters<typeof acceptedFrom>[0] = {}): Remote {
    const r = acceptedFrom(options);
    // A STATE carries the seq of the remote's next data packet.
    r.conn.receive(r.packet({ type: 'state' }));
    expect(r.connected).toBe(true);
    return r;
  }

  it('ignores an ACK for a sequence number it never sent, and a packet that carries one', () => {
    const r = connected();
    r.conn.write(Buffer.alloc(4 * 1_300));
    const data = r.sent.filter((p) => p.type === 'data');
    expect(data.length).toBeGreaterThan(1);
    const buffered = r.conn.bufferedBytes;
    expect(buffered).toBe(4 * 1_300);
    const lastSent = data.at(-1)!.seq;
    // Ahead of everything sent: a guess, not the remote.
    r.conn.receive(r.packet({ type: 'state', ack: seqAdd(lastSent, 1) }));
    r.conn.receive(r.packet({ type: 'state', ack: seqAdd(lastSent, 20_000) }));
    r.conn.receive(r.packet({ ack: seqAdd(lastSent, 5), payload: Buffer.from('forged') }));
    expect(r.conn.bufferedBytes).toBe(buffered);
    expect(r.delivered).toEqual([]);
    expect(r.conn.stats.badAcks).toBe(3);
    // The real ack of the last packet sent clears it all.
    r.conn.receive(r.packet({ type: 'state', ack: lastSent }));
    expect(r.conn.bufferedBytes).toBe(0);
  });

  it(`holds at most ${UTP_REORDER_MAX_BYTES} bytes out of order, and all connections together no more than their shared budget`, () => {
    const budget = new ReorderBudget(2 * UTP_REORDER_MAX_BYTES + 100_000);
    const conns = Array.from({ length: 8 }, () => connected({ budget }));
    const size = 60_000;
    for (const r of conns) {
      // 255 outsize packets past a hole: the first data packet (REMOTE_SEQ + 1) is missing.
      for (let ahead = 2; ahead <= 256; ahead++) {
        r.conn.receive(
          r.packet({ seq: seqAdd(REMOTE_SEQ, ahead), payload: Buffer.alloc(size, ahead) }),
        );
      }
    }
    let held = 0;
    for (const r of conns) {
      expect(r.conn.reorderHeldBytes).toBeLessThanOrEqual(UTP_REORDER_MAX_BYTES);
      held += r.conn.reorderHeldBytes;
      // What the remote sees: the packets our selective ACKs say we hold.
      const last = r.sent.at(-1)!;
      const sacked = last.sack ? sackedSeqs(last.ack, last.sack).length : 0;
      expect(sacked * size).toBeLessThanOrEqual(UTP_REORDER_MAX_BYTES);
      expect(sacked * size).toBe(r.conn.reorderHeldBytes);
    }
    expect(held).toBe(budget.held);
    expect(budget.held).toBeLessThanOrEqual(budget.maxBytes);
    expect(conns[0]!.conn.stats.reorderDropped).toBeGreaterThan(0);

    // The hole filled: what was held comes out in order, and its bytes go back.
    const first = conns[0]!;
    const heldBefore = first.conn.reorderHeldBytes;
    first.conn.receive(first.packet({ payload: Buffer.alloc(size, 1) }));
    expect(first.deliveredBytes()).toBe(size + heldBefore);
    expect(first.delivered.map((b) => b[0])).toEqual(
      Array.from({ length: first.delivered.length }, (_, i) => i + 1),
    );
    expect(first.conn.reorderHeldBytes).toBe(0);
    expect(budget.held).toBe(held - heldBefore);
    // A connection that ends gives back what it held.
    for (const r of conns) r.conn.destroy();
    expect(budget.held).toBe(0);
  });

  it(`takes in-order data past its advertised window only up to one datagram (${UTP_RECEIVE_OVERRUN_BYTES} bytes)`, () => {
    const windowBytes = 100_000;
    let unread = 0;
    const r = connected({ receiveWindow: () => windowBytes - unread });
    const size = 30_000;
    for (let i = 0; i < 20; i++) {
      const before = r.deliveredBytes();
      r.conn.receive(r.packet({ seq: seqAdd(REMOTE_SEQ, 1 + i), payload: Buffer.alloc(size) }));
      unread += r.deliveredBytes() - before; // the reader takes nothing
    }
    expect(r.deliveredBytes()).toBeLessThanOrEqual(windowBytes + UTP_RECEIVE_OVERRUN_BYTES);
    expect(r.conn.stats.overrunDropped).toBeGreaterThan(0);
  });

  it('tells the remote its window opened only when it opened by a packet or more', () => {
    let window = 1 << 20;
    const r = connected({ receiveWindow: () => window });
    const before = r.sent.length;
    r.conn.windowOpened();
    expect(r.sent.length).toBe(before);
    window = 0;
    r.conn.receive(r.packet({ payload: Buffer.alloc(10) }));
    const acked = r.sent.length;
    expect(r.sent.at(-1)!.windowSize).toBe(0);
    window = 1 << 20;
    r.conn.windowOpened();
    expect(r.sent.length).toBe(acked + 1);
    expect(r.sent.at(-1)!.windowSize).toBe(1 << 20);
  });
});
