/**
 * Pins three bugs a review found:
 * - PeerWire's idle timeout used socket.setTimeout, which our own keep-alives
 *   reset, so a remote that went silent after its handshake was never closed.
 * - Uploader.announce sent `have` before the bitfield on a connection whose
 *   handshake had not arrived yet; BEP 3 wants the bitfield first.
 * - ChunkStore accepted writes after close() and close() did not wait for
 *   writes under way.
 */

import { writeFile } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  buildMetainfo,
  encodeMessage,
  FrameDecoder,
  type Message,
  makePeerId,
} from '../src/index.js';
import { ChunkStore, PeerWire, sha1, splitFile, Uploader } from '../src/node/index.js';
import { Cleanup, rejected } from './helpers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

async function storeWith(bytes: Buffer) {
  const dir = await cleanup.tempDir();
  await writeFile(join(dir, 'f.bin'), bytes);
  const split = await splitFile({ source: join(dir, 'f.bin'), dir: join(dir, 'src') });
  const { metainfo } = buildMetainfo({
    name: 'f.bin',
    length: split.length,
    pieceHashes: split.pieceHashes,
    sha256: split.sha256,
  });
  return { dir, metainfo };
}

/** A connected socket pair on loopback. */
async function socketPair(): Promise<[Socket, Socket]> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const client = connect(port, '127.0.0.1');
  const other = await accepted;
  server.close();
  cleanup.add(() => {
    client.destroy();
    other.destroy();
  });
  return [client, other];
}

describe('PeerWire idle timeout', () => {
  it('closes a connection that receives nothing, although it keeps sending keep-alives', async () => {
    const { metainfo } = await storeWith(Buffer.alloc(1000, 7));
    const [ours, theirs] = await socketPair();
    const wire = new PeerWire({
      socket: ours,
      metainfo,
      peerId: makePeerId(1),
      idleTimeoutMs: 400,
      keepAliveMs: 100,
    });
    // The remote handshakes, then says nothing more while reading everything we send.
    theirs.write(
      encodeMessage({
        type: 'handshake',
        reserved: new Uint8Array(8),
        infoHash: metainfo.infoHash,
        peerId: makePeerId(2),
      }),
    );
    let keepAlives = 0;
    const decoder = new FrameDecoder({ geometry: metainfo.geometry });
    theirs.on('data', (b: Buffer) => {
      keepAlives += decoder.push(b).filter((m) => m.type === 'keepAlive').length;
    });
    const closed = await wire.closed;
    expect(closed.reason).toMatch(/idle/);
    expect(keepAlives, 'keep-alives went out before the idle close').toBeGreaterThan(0);
  });
});

describe('Uploader.announce before start', () => {
  it('sends nothing until the bitfield has gone out, and the bitfield then includes the chunk', async () => {
    const data = Buffer.alloc(250_000, 3);
    const { dir, metainfo } = await storeWith(data);
    const { store } = await ChunkStore.open({
      dir: join(dir, 'src'),
      metainfo,
      trustExisting: true,
    });
    cleanup.add(() => store.close());
    const [ours, theirs] = await socketPair();
    const wire = new PeerWire({ socket: ours, metainfo, peerId: makePeerId(1) });
    const uploader = new Uploader({ wire, store, log: () => {} });
    const seen: Message[] = [];
    const decoder = new FrameDecoder({ geometry: metainfo.geometry });
    theirs.on('data', (b: Buffer) => seen.push(...decoder.push(b)));
    uploader.announce(1); // the handshake has not arrived: must not go out
    uploader.start();
    uploader.announce(2);
    await new Promise((r) => setTimeout(r, 200));
    expect(seen.map((m) => m.type)).toEqual(['handshake', 'bitfield', 'have']);
  });
});

describe('ChunkStore after close', () => {
  it('waits for a put under way, then refuses further puts with ERR_STORE_CLOSED', async () => {
    const data = Buffer.alloc(250_000, 9);
    const { dir, metainfo } = await storeWith(data);
    const { store } = await ChunkStore.open({ dir: join(dir, 'peer'), metainfo });
    const chunk0 = data.subarray(0, metainfo.pieceLength);
    expect(sha1(chunk0).equals(metainfo.pieceHashes[0]!)).toBe(true);
    const underway = store.put(0, chunk0);
    await store.close();
    expect(await underway).toBe(true);
    expect(store.has(0)).toBe(true);
    const err = await rejected(
      store.put(1, data.subarray(metainfo.pieceLength, 2 * metainfo.pieceLength)),
    );
    expect(err).toMatchObject({ code: 'ERR_STORE_CLOSED' });
    expect(store.has(1)).toBe(false);
  });
});
