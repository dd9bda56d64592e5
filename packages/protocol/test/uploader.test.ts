/**
 * Uploader: serving a connection from the chunk store.
 */
import { join } from 'node:path';
import { Cleanup, socketPair } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { FrameDecoder, type Message, makePeerId } from '../src/index.js';
import { ChunkStore, PeerWire, Uploader } from '../src/node/index.js';
import { storeWith } from './sockets.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

// Regression: announce() sent `have` before the bitfield on a connection
// whose handshake had not arrived yet; BEP 3 wants the bitfield first.
describe('Uploader.announce before start', () => {
  it('sends nothing until the bitfield has gone out, and the bitfield then includes the chunk', async () => {
    const data = Buffer.alloc(250_000, 3);
    const { dir, metainfo } = await storeWith(cleanup, data);
    const { store } = await ChunkStore.open({
      dir: join(dir, 'src'),
      metainfo,
      trustExisting: true,
    });
    cleanup.add(() => store.close());
    const [ours, theirs] = await socketPair(cleanup);
    const wire = new PeerWire({ socket: ours, metainfo, peerId: makePeerId(1) });
    const uploader = new Uploader({ wire, store, publish: () => {} });
    const seen: Message[] = [];
    const decoder = new FrameDecoder({ geometry: metainfo.geometry });
    let sawHave: () => void = () => {};
    const haveArrived = new Promise<void>((resolve) => {
      sawHave = resolve;
    });
    theirs.on('data', (b: Buffer) => {
      seen.push(...decoder.push(b));
      if (seen.some((m) => m.type === 'have')) sawHave();
    });
    uploader.announce(1); // the handshake has not arrived: must not go out
    uploader.start();
    uploader.announce(2);
    // TCP keeps order: once the `have` sent after start() has arrived, anything
    // the early announce(1) could have sent has arrived before it.
    await haveArrived;
    expect(seen.map((m) => m.type)).toEqual(['handshake', 'bitfield', 'have']);
    expect(seen[2]).toMatchObject({ type: 'have', index: 2 });
  });
});
