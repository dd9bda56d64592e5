/**
 * BEP 6, the fast extension, on Connection: over a real loopback socket
 * pair, with a Connection at each end offering it or not.
 */
import { Cleanup, HANG_MS, socketPair, within } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import {
  Bitfield,
  buildMetainfo,
  ManualClock,
  makePeerId,
  supportsFast,
  withFastBit,
} from '../src/index.js';
import {
  Connection,
  type ConnectionEvents,
  DEFAULT_CHOKED_REQUEST_GRACE_MS,
  MAX_ALLOWED_FAST,
  MAX_SUGGESTED,
  PeerWire,
} from '../src/node/index.js';

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

interface Side {
  readonly has?: number[];
  /** Offers BEP 6 (default true). */
  readonly fast?: boolean;
  readonly maxRemoteRequests?: number;
}

/** Two live connections over loopback; `clock` drives `a`'s Connection. */
async function pair(
  options: { a?: Side; b?: Side; clock?: ManualClock } = {},
): Promise<{ a: Connection; b: Connection }> {
  const [left, right] = await socketPair(cleanup);
  const make = (socket: typeof left, id: number, side: Side, clock?: ManualClock) => {
    const fast = side.fast !== false;
    return new Connection({
      wire: new PeerWire({
        socket,
        metainfo,
        peerId: makePeerId(id),
        ...(fast ? { reserved: withFastBit(new Uint8Array(8)) } : {}),
      }),
      pieceCount: PIECES,
      localHas: holding(side.has ?? []),
      fast,
      ...(side.maxRemoteRequests ? { maxRemoteRequests: side.maxRemoteRequests } : {}),
      ...(clock ? { clock } : {}),
    });
  };
  const a = make(left, 1, options.a ?? {}, options.clock);
  const b = make(right, 2, options.b ?? {});
  cleanup.add(() => {
    a.close('test over');
    b.close('test over');
  });
  await within(Promise.all([a.wire.ready(), b.wire.ready()]), HANG_MS, () => 'no handshakes');
  return { a, b };
}

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

/** Resolves after `n` events `event` on `connection`, with their first arguments. */
function collect<E extends keyof ConnectionEvents>(
  connection: Connection,
  event: E,
  n: number,
): Promise<Array<Parameters<ConnectionEvents[E]>[0]>> {
  const seen: Array<Parameters<ConnectionEvents[E]>[0]> = [];
  return within(
    new Promise((resolve) => {
      connection.on(event, ((first: Parameters<ConnectionEvents[E]>[0]) => {
        seen.push(first);
        if (seen.length === n) resolve(seen);
      }) as ConnectionEvents[E]);
    }),
    HANG_MS,
    () => `${seen.length} of ${n} ${String(event)} events on ${connection.label}`,
  );
}

async function unchokeAt(b: Connection, a: Connection): Promise<void> {
  const seen = next(a, 'unchoke');
  b.unchoke();
  await seen;
}

/** Everything b sent before this has reached a (one socket keeps order). Once per pair. */
async function flushed(a: Connection, b: Connection): Promise<void> {
  const seen = next(a, 'interested');
  b.wire.send({ type: 'interested' });
  await seen;
}

const block = (index: number, k = 0) => ({ index, begin: k * 16_384, length: 16_384 });

describe('BEP 6: negotiation', () => {
  it('sets reserved[7] & 0x04, and reads only that bit', () => {
    const reserved = withFastBit(new Uint8Array(8));
    expect([...reserved]).toEqual([0, 0, 0, 0, 0, 0, 0, 0x04]);
    expect(supportsFast(reserved)).toBe(true);
    expect(supportsFast(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfb]))).toBe(
      false,
    );
  });

  it('is on only where both handshakes offer it', async () => {
    const both = await pair();
    expect([both.a.fastActive, both.b.fastActive]).toEqual([true, true]);
    const one = await pair({ b: { fast: false } });
    expect([one.a.fastActive, one.b.fastActive]).toEqual([false, false]);
  });

  it('closes a remote that sends a fast message without having offered the extension', async () => {
    const { a, b } = await pair({ a: { fast: false } });
    const closed = next(b, 'closed');
    a.wire.send({ type: 'haveAll' });
    const [close] = await closed;
    expect(close.error).toMatchObject({ code: 'ERR_FAST' });
  });

  it('closes a remote that sends a fast message when we did not offer it', async () => {
    const { a, b } = await pair({ b: { fast: false } });
    const closed = next(b, 'closed');
    a.wire.send({ type: 'suggest', index: 0 });
    const [close] = await closed;
    expect(close.error).toMatchObject({ code: 'ERR_FAST' });
  });
});

describe('BEP 6: have all and have none', () => {
  it('sends have all / have none in place of the bitfield, and takes them as one', async () => {
    const all = [0, 1, 2, 3, 4, 5];
    const { a, b } = await pair();
    const seen = next(b, 'bitfield');
    expect(a.sendBitfield(holding(all))).toBe('have-all');
    const [remote, form] = await seen;
    expect(form).toBe('have-all');
    expect(remote.heldIds()).toEqual(all);

    const none = await pair();
    const seenNone = next(none.b, 'bitfield');
    expect(none.a.sendBitfield(holding([]))).toBe('have-none');
    const [empty, formNone] = await seenNone;
    expect([empty.count(), formNone]).toEqual([0, 'have-none']);
  });

  it('sends a bitfield for a part, and always without the extension', async () => {
    const { a, b } = await pair();
    const seen = next(b, 'bitfield');
    expect(a.sendBitfield(holding([1, 4]))).toBe('bitfield');
    expect((await seen)[1]).toBe('bitfield');
    const old = await pair({ b: { fast: false } });
    const seenOld = next(old.b, 'bitfield');
    expect(old.a.sendBitfield(holding([0, 1, 2, 3, 4, 5]))).toBe('bitfield');
    expect((await seenOld)[1]).toBe('bitfield');
  });

  it('takes a later have none that takes pieces back as a protocol error', async () => {
    const { a, b } = await pair();
    const seen = next(b, 'bitfield');
    a.sendBitfield(holding([2]));
    await seen;
    const closed = next(b, 'closed');
    a.wire.send({ type: 'haveNone' });
    const [close] = await closed;
    expect(close.error).toMatchObject({ code: 'ERR_BITFIELD_REPEATED' });
  });
});

describe('BEP 6: reject request, received', () => {
  it('takes a rejected request out of outgoing and emits it', async () => {
    const { a, b } = await pair({ b: { has: [0] } });
    await unchokeAt(b, a);
    const asked = next(b, 'request');
    expect(a.request(block(0))).toBe(true);
    await asked;
    const rejected = next(a, 'rejected');
    b.wire.send({ type: 'reject', ...block(0) });
    const [request] = await rejected;
    expect({ index: request.index, begin: request.begin }).toEqual({ index: 0, begin: 0 });
    expect(a.outgoing.size).toBe(0);
    expect(a.bytesInFlight).toBe(0);
  });

  it('ignores a reject that crossed our cancel, closes on one for a request never sent', async () => {
    const { a, b } = await pair({ b: { has: [0] } });
    await unchokeAt(b, a);
    a.request(block(0));
    a.cancel(block(0));
    b.wire.send({ type: 'reject', ...block(0) });
    await flushed(a, b);
    expect(a.state).toBe('live');
    const closed = next(a, 'closed');
    b.wire.send({ type: 'reject', ...block(1) });
    const [close] = await closed;
    expect(close.error).toMatchObject({ code: 'ERR_FAST' });
  });

  it('a choke leaves our requests standing: the remote rejects them', async () => {
    const { a, b } = await pair({ b: { has: [0, 1] } });
    await unchokeAt(b, a);
    const asked = collect(b, 'request', 3);
    for (const r of [block(0), block(0, 1), block(1)]) a.request(r);
    await asked;
    const choked = next(a, 'choke');
    const rejected = collect(a, 'rejected', 3);
    const sent = next(b, 'rejectsSent');
    expect(b.choke()).toHaveLength(3);
    expect((await choked)[0], 'nothing void by the choke itself').toEqual([]);
    expect(await sent).toEqual([3, 'choked']);
    expect((await rejected).map((r) => r.index)).toEqual([0, 0, 1]);
    expect(a.outgoing.size).toBe(0);
    expect(a.bytesInFlight).toBe(0);
  });

  it('voids what a choke left standing once the grace is over, if no reject came', async () => {
    const clock = new ManualClock();
    const { a, b } = await pair({ b: { has: [0, 1] }, clock });
    await unchokeAt(b, a);
    const asked = collect(b, 'request', 2);
    a.request(block(0));
    a.request(block(1));
    await asked;
    const choked = next(a, 'choke');
    // A remote that chokes without rejecting (not what BEP 6 asks).
    b.wire.send({ type: 'choke' });
    await choked;
    expect(a.outgoing.size).toBe(2);
    clock.advance(DEFAULT_CHOKED_REQUEST_GRACE_MS - 1);
    expect(a.expireChoked()).toEqual([]);
    clock.advance(1);
    expect(a.expireChoked().map((r) => r.index)).toEqual([0, 1]);
    expect(a.outgoing.size).toBe(0);
    expect(a.bytesInFlight).toBe(0);
    // A late reject for one of them crossed the expiry: not an offence.
    b.wire.send({ type: 'reject', ...block(0) });
    await flushed(a, b);
    expect(a.state).toBe('live');
  });
});

describe('BEP 6: reject request, sent', () => {
  it('rejects a request that arrives while we choke, instead of silence', async () => {
    const { a, b } = await pair({ b: { has: [0] } });
    const sent = next(b, 'rejectsSent');
    // a is choked, so a.request() refuses: write it raw.
    a.wire.send({ type: 'request', ...block(0) });
    expect(await sent).toEqual([1, 'choked']);
    expect(b.incoming.size).toBe(0);
  });

  it('answers a cancel with a reject', async () => {
    const { a, b } = await pair({ b: { has: [0] } });
    await unchokeAt(b, a);
    const asked = next(b, 'request');
    a.request(block(0));
    await asked;
    const sent = next(b, 'rejectsSent');
    a.wire.send({ type: 'cancel', ...block(0) });
    expect(await sent).toEqual([1, 'cancelled']);
    expect(b.incoming.size).toBe(0);
  });

  it('rejects requests over the queue bound, and closes one that keeps on past another queue', async () => {
    const { a, b } = await pair({ b: { has: [0, 1, 2], maxRemoteRequests: 2 } });
    await unchokeAt(b, a);
    const rejected = collect(a, 'rejected', 2);
    for (let k = 0; k < 4; k++) a.request(block(k >> 1, k & 1));
    const refused = await rejected;
    expect(refused.map((r) => [r.index, r.begin])).toEqual([
      [1, 0],
      [1, 16_384],
    ]);
    expect(b.incoming.size).toBe(2);
    expect(b.state).toBe('live');
    const closed = next(b, 'closed');
    a.request(block(2));
    const [close] = await closed;
    expect(close.error).toMatchObject({ code: 'ERR_REQUEST_FLOOD' });
  });
});

describe('BEP 6: allowed fast and suggest', () => {
  it('lets us ask for an allowed-fast piece while choked, and only that one; we reject one we never allowed', async () => {
    const { a, b } = await pair({ b: { has: [0, 3] } });
    const allowed = next(a, 'allowedFast');
    b.wire.send({ type: 'allowedFast', index: 3 });
    expect((await allowed)[0]).toBe(3);
    expect(a.peerChoking).toBe(true);
    expect(a.request(block(0))).toBe(false);
    // b gives no allowed-fast pieces of its own (b's Connection never sent one): it rejects.
    const rejected = next(a, 'rejected');
    expect(a.request(block(3))).toBe(true);
    expect(a.outgoing.size).toBe(1);
    expect((await rejected)[0]).toMatchObject(block(3));
    expect(a.outgoing.size).toBe(0);
  });

  it('keeps the allowed-fast and suggested sets bounded', async () => {
    const big = buildMetainfo({
      name: 'g.bin',
      length: 16_384 * 200,
      pieceLength: 16_384,
      pieceHashes: Array.from({ length: 200 }, () => new Uint8Array(20)),
    }).metainfo;
    const [left, right] = await socketPair(cleanup);
    const reserved = () => withFastBit(new Uint8Array(8));
    const a = new Connection({
      wire: new PeerWire({
        socket: left,
        metainfo: big,
        peerId: makePeerId(1),
        reserved: reserved(),
      }),
      pieceCount: 200,
      localHas: new Bitfield(200),
      fast: true,
    });
    const b = new PeerWire({
      socket: right,
      metainfo: big,
      peerId: makePeerId(2),
      reserved: reserved(),
    });
    cleanup.add(() => {
      a.close('test over');
      b.close('test over');
    });
    await Promise.all([a.wire.ready(), b.ready()]);
    const suggested = collect(a, 'suggest', 150);
    b.batch(() => {
      for (let i = 0; i < 150; i++) {
        b.send({ type: 'allowedFast', index: i });
        b.send({ type: 'suggest', index: i });
      }
    });
    await suggested;
    expect(a.allowedFast.size).toBe(MAX_ALLOWED_FAST);
    expect(a.suggested.size).toBe(MAX_SUGGESTED);
    expect([...a.suggested][0], 'the latest are kept').toBe(150 - MAX_SUGGESTED);
  });
});

describe('BEP 6: refusing a queued request', () => {
  it('reject() takes it out of incoming and tells the remote', async () => {
    const { a, b } = await pair({ b: { has: [0] } });
    await unchokeAt(b, a);
    const asked = next(b, 'request');
    a.request(block(0));
    const [request] = await asked;
    const rejected = next(a, 'rejected');
    expect(b.reject(request)).toBe(true);
    expect(b.reject(request), 'no longer pending').toBe(false);
    expect(b.incoming.size).toBe(0);
    expect((await rejected)[0]).toMatchObject(block(0));
  });
});
