/**
 * BlockServer: a Connection's requests answered from the chunk store, over a
 * loopback socket pair with a Connection at the other end.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Cleanup, HANG_MS, pseudoRandomBytes, socketPair, within } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { Bitfield, BLOCK_SIZE, makePeerId } from '../src/index.js';
import { BlockServer, ChunkStore, Connection, PeerWire } from '../src/node/index.js';
import { storeWith } from './sockets.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** Reads that wait for `gate` (a slow disk): the store itself reads at once. */
type Served = ConstructorParameters<typeof BlockServer>[0]['store'];

async function setup(bytes: Buffer, serve?: (store: ChunkStore) => Served) {
  const { dir, metainfo } = await storeWith(cleanup, bytes);
  const { store } = await ChunkStore.open({ dir: join(dir, 'src'), metainfo, trustExisting: true });
  cleanup.add(() => store.close());
  const [ours, theirs] = await socketPair(cleanup);
  const seed = new Connection({
    wire: new PeerWire({ socket: ours, metainfo, peerId: makePeerId(1) }),
    pieceCount: store.pieceCount,
    localHas: store.held,
  });
  const leecher = new Connection({
    wire: new PeerWire({ socket: theirs, metainfo, peerId: makePeerId(2) }),
    pieceCount: store.pieceCount,
    localHas: new Bitfield(store.pieceCount),
  });
  const server = new BlockServer({ connection: seed, store: serve ? serve(store) : store });
  await within(
    Promise.all([seed.wire.ready(), leecher.wire.ready()]),
    HANG_MS,
    () => 'no handshake',
  );
  const unchoked = new Promise((resolve) => leecher.once('unchoke', () => resolve(undefined)));
  seed.unchoke();
  await within(unchoked, HANG_MS, () => 'no unchoke');
  return { dir, metainfo, store, seed, leecher, server };
}

/** Every 16 KiB block of every chunk, in order. */
function allBlocks(metainfo: {
  geometry: { pieceCount: number; blocks(i: number): Array<{ begin: number; length: number }> };
}) {
  const out: Array<{ index: number; begin: number; length: number }> = [];
  for (let i = 0; i < metainfo.geometry.pieceCount; i++) {
    for (const b of metainfo.geometry.blocks(i)) out.push({ index: i, ...b });
  }
  return out;
}

describe('BlockServer', () => {
  it('answers every request in order from the store, waiting for the socket to drain, and reports each chunk sent once', async () => {
    const data = pseudoRandomBytes(3_000_000, 5);
    const { metainfo, seed, leecher, server } = await setup(data);
    const sent: Array<[number, number]> = [];
    const asked: number[] = [];
    server.on('chunkSent', (index, bytes) => sent.push([index, bytes]));
    server.on('requestReceived', (index) => asked.push(index));
    const received = Buffer.alloc(data.length);
    const blocks = allBlocks(metainfo);
    let pieces = 0;
    const done = new Promise<void>((resolve) =>
      leecher.on('piece', (p) => {
        received.set(p.block, p.index * metainfo.geometry.pieceLength + p.begin);
        if (++pieces === blocks.length) resolve();
      }),
    );
    leecher.batch(() => {
      for (const b of blocks) leecher.request(b);
    });
    await within(done, HANG_MS, () => `received ${pieces} of ${blocks.length} blocks`);
    expect(received.equals(data)).toBe(true);
    const chunks = metainfo.geometry.pieceCount;
    const ids = Array.from({ length: chunks }, (_, i) => i);
    expect(asked).toEqual(ids);
    expect(sent).toEqual(ids.map((i) => [i, metainfo.geometry.pieceSize(i)]));
    expect(server.bytesSent).toBe(data.length);
    expect(seed.incoming.size).toBe(0);
  });

  it('sends nothing for requests our choke voided while their chunk was being read', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    // A read that is still under way when the choke comes: the chunk arrives after it.
    const slow = (store: ChunkStore): Served => ({
      cached: () => undefined,
      readVerified: async (index) => {
        await gate;
        return store.readVerified(index);
      },
    });
    const { seed, leecher, server } = await setup(pseudoRandomBytes(300_000, 6), slow);
    const got: Array<[number, number]> = [];
    leecher.on('piece', (p) => got.push([p.index, p.begin]));
    const choked = new Promise((resolve) => leecher.once('choke', () => resolve(undefined)));
    // Registered after the server's own listener: the server has started reading chunk 1 when this runs.
    seed.once('request', () => seed.choke());
    leecher.request({ index: 1, begin: 0, length: BLOCK_SIZE });
    leecher.request({ index: 1, begin: BLOCK_SIZE, length: BLOCK_SIZE });
    await within(choked, HANG_MS, () => 'no choke');
    expect(seed.incoming.size).toBe(0);
    release();
    // The positive signal: a later request is served, and a server that still held the
    // voided ones would have sent them first (it serves in order).
    const unchoked = new Promise((resolve) => leecher.once('unchoke', () => resolve(undefined)));
    seed.unchoke();
    await within(unchoked, HANG_MS, () => 'no unchoke');
    const later = new Promise((resolve) => leecher.once('piece', () => resolve(undefined)));
    leecher.request({ index: 0, begin: 0, length: BLOCK_SIZE });
    await within(later, HANG_MS, () => 'the later request was not served');
    expect(got).toEqual([[0, 0]]);
    expect(server.bytesSent).toBe(BLOCK_SIZE);
  });

  it('reports a stored chunk that fails its re-check and closes the connection', async () => {
    const { store, seed, leecher, server } = await setup(pseudoRandomBytes(300_000, 7));
    await writeFile(store.chunkPath(2), Buffer.alloc(store.metainfo.geometry.pieceSize(2), 0));
    const corrupt = new Promise<number>((resolve) => server.once('chunkCorrupt', resolve));
    const closed = new Promise<string>((resolve) => seed.once('closed', (c) => resolve(c.reason)));
    leecher.request({ index: 2, begin: 0, length: BLOCK_SIZE });
    expect(await within(corrupt, HANG_MS, () => 'no chunkCorrupt')).toBe(2);
    expect(await within(closed, HANG_MS, () => 'not closed')).toMatch(/stored chunk 2 was corrupt/);
    expect(store.has(2)).toBe(false);
  });
});
