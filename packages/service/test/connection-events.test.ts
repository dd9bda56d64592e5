/**
 * A connection's events as domain events: the fast extension's lines
 * (`idlist-received as=…`, `reject-sent`, `reject-received`) over a real
 * loopback pair of Connections that both offer BEP 6.
 */
import { Bitfield, buildMetainfo, makePeerId, withFastBit } from '@swarmdrop/protocol';
import { BlockServer, type ChunkStore, Connection, PeerWire } from '@swarmdrop/protocol/node';
import { Cleanup, HANG_MS, socketPair, within } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { publishTraffic } from '../src/connection-events.js';
import type { EventFields, Publish } from '../src/events.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const PIECES = 4;
const { metainfo } = buildMetainfo({
  name: 'f.bin',
  length: 16_384 * PIECES,
  pieceLength: 16_384,
  pieceHashes: Array.from({ length: PIECES }, () => new Uint8Array(20)),
});

type Line = { event: keyof EventFields; fields: Record<string, unknown> };

/** Two Connections offering BEP 6; `b`'s events are published into `lines`. */
async function published() {
  const [left, right] = await socketPair(cleanup);
  const all = new Bitfield(PIECES);
  for (let i = 0; i < PIECES; i++) all.set(i);
  const make = (socket: typeof left, id: number, held: Bitfield) =>
    new Connection({
      wire: new PeerWire({
        socket,
        metainfo,
        peerId: makePeerId(id),
        reserved: withFastBit(new Uint8Array(8)),
      }),
      pieceCount: PIECES,
      localHas: held,
      fast: true,
    });
  const aHas = new Bitfield(PIECES);
  aHas.set(2);
  const a = make(left, 1, aHas);
  const b = make(right, 2, all);
  cleanup.add(() => {
    a.close('test over');
    b.close('test over');
  });
  const lines: Line[] = [];
  const waiters: Array<() => void> = [];
  const publish = ((event, fields) => {
    lines.push({ event, fields: fields as Record<string, unknown> });
    for (const wake of waiters.splice(0)) wake();
  }) as Publish;
  // The store is never read: b serves nothing here.
  const store = { metainfo } as unknown as ChunkStore;
  publishTraffic(b, new BlockServer({ connection: b, store }), publish);
  await within(Promise.all([a.wire.ready(), b.wire.ready()]), HANG_MS, () => 'no handshakes');
  const line = (event: keyof EventFields) =>
    within(
      new Promise<Line>((resolve) => {
        const check = () => {
          const found = lines.find((l) => l.event === event);
          if (found) resolve(found);
          else waiters.push(check);
        };
        check();
      }),
      HANG_MS,
      () => `no ${event} line; got ${lines.map((l) => l.event)}`,
    );
  return { a, b, line };
}

describe('publishTraffic and the fast extension', () => {
  it('says as=have-none when the list came as have none', async () => {
    const { a, line } = await published();
    a.sendBitfield(new Bitfield(PIECES));
    expect((await line('idlist-received')).fields).toMatchObject({
      chunks: 0,
      of: PIECES,
      as: 'have-none',
    });
  });

  it('publishes the rejects we send and those we receive', async () => {
    const { a, b, line } = await published();
    // a is choked: its request gets b's reject (choked).
    a.wire.send({ type: 'request', index: 1, begin: 0, length: 16_384 });
    expect((await line('reject-sent')).fields).toMatchObject({ count: 1, reason: 'choked' });
    // And one of b's requests rejected by a.
    const unchoked = new Promise<void>((resolve) => b.once('unchoke', () => resolve()));
    a.unchoke();
    await within(unchoked, HANG_MS, () => 'no unchoke');
    b.request({ index: 2, begin: 0, length: 16_384 });
    a.wire.send({ type: 'reject', index: 2, begin: 0, length: 16_384 });
    expect((await line('reject-received')).fields).toMatchObject({
      chunk: 2,
      begin: 0,
      length: 16_384,
    });
  });
});
