/**
 * PeerWire: one BitTorrent connection over a socket.
 */
import { Cleanup, socketPair } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeMessage, FrameDecoder, makePeerId } from '../src/index.js';
import { PeerWire } from '../src/node/index.js';
import { storeWith } from './sockets.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

// Regression: the idle timeout used socket.setTimeout, which our own
// keep-alives reset, so a remote that went silent after its handshake was
// never closed.
describe('PeerWire idle timeout', () => {
  it('closes a connection that receives nothing, although it keeps sending keep-alives', async () => {
    const { metainfo } = await storeWith(cleanup, Buffer.alloc(1000, 7));
    const [ours, theirs] = await socketPair(cleanup);
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
