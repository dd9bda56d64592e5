/**
 * Connection: one remote's state (bitfield, the four flags, requests both
 * ways, rates) over a real loopback socket pair, with a Connection at each end.
 */
import { Cleanup, HANG_MS, socketPair, within } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { Bitfield, buildMetainfo, type Clock, ManualClock, makePeerId } from '../src/index.js';
import { Connection, type ConnectionEvents, PeerWire } from '../src/node/index.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const PIECE = 32_768;
const PIECES = 6;
const { metainfo } = buildMetainfo({
  name: 'f.bin',
  length: PIECE * PIECES,
  pieceLength: PIECE,
  pieceHashes: Array.from({ length: PIECES }, (_, i) => new Uint8Array(20).fill(i)),
});

function holding(ids: number[]): Bitfield {
  const field = new Bitfield(PIECES);
  for (const i of ids) field.set(i);
  return field;
}

/** Two live connections over loopback: `a` holds `aHas`, `b` holds `bHas`. */
async function pair(
  options: { aHas?: number[]; bHas?: number[]; clock?: Clock } = {},
): Promise<{ a: Connection; b: Connection }> {
  const [left, right] = await socketPair(cleanup);
  const make = (socket: typeof left, id: number, held: Bitfield) =>
    new Connection({
      wire: new PeerWire({ socket, metainfo, peerId: makePeerId(id) }),
      pieceCount: PIECES,
      localHas: held,
      ...(options.clock ? { clock: options.clock } : {}),
    });
  const a = make(left, 1, holding(options.aHas ?? []));
  const b = make(right, 2, holding(options.bHas ?? []));
  cleanup.add(() => {
    a.close('test over');
    b.close('test over');
  });
  await within(Promise.all([a.wire.ready(), b.wire.ready()]), HANG_MS, () => 'no handshakes');
  expect([a.state, b.state]).toEqual(['live', 'live']);
  return { a, b };
}

/** The arguments of the next `event` on `connection`; bounded only against a hang. */
function next<E extends keyof ConnectionEvents>(
  connection: Connection,
  event: E,
): Promise<Parameters<ConnectionEvents[E]>> {
  return within(
    new Promise((resolve) => {
      connection.once(event, ((...args: Parameters<ConnectionEvents[E]>) =>
        resolve(args)) as ConnectionEvents[E]);
    }),
    HANG_MS,
    () => `no ${String(event)} event on ${connection.label}`,
  );
}

/** Unchokes `a` at `b` and waits until `a` has seen it. */
async function unchokeAt(b: Connection, a: Connection): Promise<void> {
  const seen = next(a, 'unchoke');
  b.unchoke();
  await seen;
  expect(a.peerChoking).toBe(false);
}

describe('Connection: what the remote holds', () => {
  it("keeps the remote's bitfield and haves, and emits a repeated have only once", async () => {
    const { a, b } = await pair({ aHas: [0, 2] });
    const bitfield = next(b, 'bitfield');
    a.sendBitfield(holding([0, 2]));
    const [remote] = await bitfield;
    expect(remote.heldIds()).toEqual([0, 2]);
    expect(b.remoteHas).toBe(remote);

    const haves: number[] = [];
    b.on('have', (i) => haves.push(i));
    a.sendHave(3);
    a.sendHave(3);
    a.sendHave(2); // already in the bitfield
    const last = next(b, 'have');
    a.sendHave(5);
    await last; // 5 is sent after the repeats, so they have been handled by now
    expect(haves).toEqual([3, 5]);
    expect(b.remoteHas.heldIds()).toEqual([0, 2, 3, 5]);
  });

  // aria2 sends a later bitfield in place of haves: it must not cost the connection.
  it('takes a later bitfield as the haves of what it adds', async () => {
    const { a, b } = await pair();
    const bitfield = next(b, 'bitfield');
    a.sendBitfield(holding([0]));
    await bitfield;
    const haves: number[] = [];
    b.on('have', (i) => haves.push(i));
    a.sendHave(1);
    a.sendBitfield(holding([0, 1, 3, 4]));
    const last = next(b, 'have');
    a.sendHave(5);
    await last;
    expect(haves).toEqual([1, 3, 4, 5]);
    expect(b.remoteHas.heldIds()).toEqual([0, 1, 3, 4, 5]);
    expect(b.state).toBe('live');
  });

  it('closes a connection whose later bitfield takes a piece back', async () => {
    const { a, b } = await pair();
    a.sendBitfield(holding([0, 2]));
    a.sendBitfield(holding([0]));
    const [close] = await next(b, 'closed');
    expect(close.error).toMatchObject({ code: 'ERR_BITFIELD_REPEATED' });
    expect(close.reason).toMatch(/takes back chunk 2/);
    expect(b.state).toBe('closed');
  });

  it('closes a connection that floods later bitfields adding nothing', async () => {
    const { a, b } = await pair();
    const haves: number[] = [];
    b.on('have', (i) => haves.push(i));
    a.sendHave(0);
    for (let k = 0; k < 20; k++) a.sendBitfield(holding([0]));
    const [close] = await next(b, 'closed');
    expect(close.error).toMatchObject({ code: 'ERR_BITFIELD_REPEATED' });
    expect(close.reason).toMatch(/bitfields that add nothing/);
    expect(haves).toEqual([0]);
  });

  it('closes a connection whose bitfield has spare bits set, naming the code', async () => {
    const { a, b } = await pair();
    a.wire.send({ type: 'bitfield', bytes: Uint8Array.of(0xff) }); // 6 pieces: 2 spare bits set
    const [close] = await next(b, 'closed');
    expect(close.error).toMatchObject({ code: 'ERR_BITFIELD_SPARE_BITS' });
  });
});

describe('Connection: the four flags', () => {
  it('tracks choke and interest both ways and sends only on a change', async () => {
    const { a, b } = await pair();
    expect([a.amChoking, a.amInterested, a.peerChoking, a.peerInterested]).toEqual([
      true,
      false,
      true,
      false,
    ]);
    const interested: string[] = [];
    b.on('interested', () => interested.push('interested'));
    b.on('notInterested', () => interested.push('notInterested'));
    a.setInterested(true);
    a.setInterested(true);
    a.setInterested(false);
    const last = next(b, 'interested');
    a.setInterested(true);
    await last;
    expect(interested).toEqual(['interested', 'notInterested', 'interested']);
    expect(b.peerInterested).toBe(true);
    expect(a.amInterested).toBe(true);

    await unchokeAt(b, a);
    expect(b.amChoking).toBe(false);
  });
});

describe('Connection: requests in flight', () => {
  it('answers a request with a piece; each side clears its record and counts the bytes', async () => {
    const clock = new ManualClock(1_000);
    const { a, b } = await pair({ bHas: [1], clock });
    await unchokeAt(b, a);
    const block = { index: 1, begin: 16_384, length: 16_384 };
    const request = next(b, 'request');
    expect(a.request(block)).toBe(true);
    expect(a.request(block), 'the same block twice').toBe(false);
    expect([...a.outgoing.values()]).toEqual([{ ...block, sentAtMs: 1_000 }]);
    expect(a.bytesInFlight).toBe(16_384);
    const [asked] = await request;
    expect(asked).toEqual(block);
    expect(b.incoming.size).toBe(1);

    const piece = next(a, 'piece');
    clock.advance(2_000);
    expect(b.sendPiece(1, 16_384, new Uint8Array(16_384).fill(9))).toBe(true);
    const [got] = await piece;
    expect(got).toMatchObject({ index: 1, begin: 16_384, requested: true });
    expect(got.block[0]).toBe(9);
    expect(a.outgoing.size).toBe(0);
    expect(a.bytesInFlight).toBe(0);
    expect(b.incoming.size).toBe(0);
    expect(a.download.total).toBe(16_384);
    expect(b.upload.total).toBe(16_384);
    expect(a.lastPieceAtMs).toBe(3_000);
    // 16 KiB over the connection's 2 s of life on the injected clock.
    expect(a.download.bytesPerSecond()).toBeCloseTo(8_192);
  });

  it('a choke from them voids our requests and reports them; a choke from us voids theirs', async () => {
    const { a, b } = await pair({ bHas: [0, 1] });
    await unchokeAt(b, a);
    const blocks = [0, 16_384, 0].map((begin, k) => ({
      index: k < 2 ? 0 : 1,
      begin,
      length: 16_384,
    }));
    let requests = 0;
    const allAsked = new Promise<void>((resolve) =>
      b.on('request', () => {
        if (++requests === blocks.length) resolve();
      }),
    );
    for (const block of blocks) a.request(block);
    await within(allAsked, HANG_MS, () => `b saw ${requests} requests`);
    expect(a.bytesInFlight).toBe(3 * 16_384);

    const choked = next(a, 'choke');
    const voided = b.choke();
    expect(voided).toEqual(blocks);
    expect(b.incoming.size).toBe(0);
    expect(b.sendPiece(0, 0, new Uint8Array(16_384)), 'serving a voided request').toBe(false);
    const [dropped] = await choked;
    expect(dropped.map(({ index, begin }) => ({ index, begin }))).toEqual(
      blocks.map(({ index, begin }) => ({ index, begin })),
    );
    expect(a.outgoing.size).toBe(0);
    expect(a.bytesInFlight).toBe(0);
    expect(a.request(blocks[0]!), 'no request while choked').toBe(false);
  });

  it('drops a request that arrives while we choke the remote (it crossed our choke)', async () => {
    const { a, b } = await pair({ bHas: [0] });
    const seen: unknown[] = [];
    b.on('request', (r) => seen.push(r));
    // a is choked, so a.request() refuses: write the request raw, as a careless client would.
    a.wire.send({ type: 'request', index: 0, begin: 0, length: 16_384 });
    const after = next(b, 'interested');
    a.setInterested(true);
    await after;
    expect(seen).toEqual([]);
    expect(b.incoming.size).toBe(0);
    expect(b.state).toBe('live');
  });

  it('a cancel withdraws their request, so it is not served', async () => {
    const { a, b } = await pair({ bHas: [2] });
    await unchokeAt(b, a);
    const block = { index: 2, begin: 0, length: 16_384 };
    const request = next(b, 'request');
    a.request(block);
    await request;
    const cancel = next(b, 'cancel');
    expect(a.cancel(block)).toBe(true);
    expect(a.cancel(block), 'already cancelled').toBe(false);
    expect(a.bytesInFlight).toBe(0);
    expect((await cancel)[0]).toEqual(block);
    expect(b.incoming.size).toBe(0);
    expect(b.sendPiece(2, 0, new Uint8Array(16_384))).toBe(false);
  });

  it('closes a remote that requests a piece we do not hold', async () => {
    const { a, b } = await pair({ bHas: [0] });
    await unchokeAt(b, a);
    a.request({ index: 4, begin: 0, length: 16_384 });
    const [close] = await next(b, 'closed');
    expect(close.error).toMatchObject({ code: 'ERR_PIECE_INDEX' });
  });

  it('closes a remote that queues more requests than the limit', async () => {
    const [left, right] = await socketPair(cleanup);
    const a = new Connection({
      wire: new PeerWire({ socket: left, metainfo, peerId: makePeerId(1) }),
      pieceCount: PIECES,
      localHas: holding([]),
    });
    const b = new Connection({
      wire: new PeerWire({ socket: right, metainfo, peerId: makePeerId(2) }),
      pieceCount: PIECES,
      localHas: holding([0, 1]),
      maxRemoteRequests: 3,
    });
    cleanup.add(() => a.close('test over'));
    await Promise.all([a.wire.ready(), b.wire.ready()]);
    await unchokeAt(b, a);
    for (let k = 0; k < 4; k++)
      a.request({ index: k >> 1, begin: (k & 1) * 16_384, length: 16_384 });
    const [close] = await next(b, 'closed');
    expect(close.error).toMatchObject({ code: 'ERR_REQUEST_FLOOD' });
  });

  it('reports the requests still unanswered when the connection ends', async () => {
    const { a, b } = await pair({ bHas: [3] });
    await unchokeAt(b, a);
    const request = next(b, 'request');
    a.request({ index: 3, begin: 0, length: 16_384 });
    await request;
    const closed = next(a, 'closed');
    b.close('going away');
    const [close] = await closed;
    expect(close.unanswered.map(({ index, begin }) => [index, begin])).toEqual([[3, 0]]);
    expect(a.state).toBe('closed');
    expect(a.outgoing.size).toBe(0);
  });

  it('closes only this connection when a listener throws', async () => {
    const { a, b } = await pair();
    b.on('have', () => {
      throw new Error('listener bug');
    });
    const closed = next(b, 'closed');
    a.sendHave(0);
    const [close] = await closed;
    expect(close.reason).toMatch(/have handler failed: listener bug/);
  });
});

describe('Connection: a piece that crossed our cancel', () => {
  /** `b` asks `a` (which holds everything) for piece 1 whole, cancels, asks for its first 16 KiB; `a` answers the first. */
  async function crossed() {
    const { a, b } = await pair({ aHas: [0, 1, 2, 3, 4, 5] });
    const asked = next(a, 'request');
    await unchokeAt(a, b);
    b.request({ index: 1, begin: 0, length: PIECE });
    await asked;
    b.cancel({ index: 1, begin: 0, length: PIECE });
    b.request({ index: 1, begin: 0, length: 16_384 });
    return { a, b };
  }

  it('is taken as unrequested when it answers the cancelled request, and the new one stays out', async () => {
    // Pins a false protocol error: endgame re-asks a cancelled whole chunk as one
    // 16 KiB block, the whole chunk arrives, and was taken for a wrong answer.
    const { a, b } = await crossed();
    const piece = next(b, 'piece');
    // `a` answers what it was asked first (its cancel has not been read yet).
    a.wire.sendPiece(1, 0, Buffer.alloc(PIECE, 1));
    const [event] = await piece;
    expect(event).toMatchObject({ index: 1, begin: 0, requested: false });
    expect(event.block.length).toBe(PIECE);
    expect(b.state).toBe('live');
    expect(b.bytesInFlight).toBe(16_384);
  });

  it('still closes a connection that answers with an amount nobody asked for', async () => {
    const { a, b } = await crossed();
    const closed = next(b, 'closed');
    a.wire.sendPiece(1, 0, Buffer.alloc(8_192, 1));
    const [close] = await closed;
    expect(close.reason).toMatch(/sent 8192 bytes for a block of 16384/);
  });
});
