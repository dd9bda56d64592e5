/**
 * The owner's port keeps separate budgets: BitTorrent connections, HTTP,
 * connections that have sent nothing yet, and handshakes in progress (TCP
 * and µTP). Found by a probe of main: one shared cap of 256 let a full wire
 * refuse the metainfo, and 256 half-open MSE handshakes held the port.
 * Every assertion is a count: slots held, connections refused or cut.
 */
import { connect, type Socket } from 'node:net';
import { parseMetainfo } from '@swarmdrop/protocol';
import { UtpEndpoint } from '@swarmdrop/protocol/node';
import { DEFAULT_MAX_HANDSHAKES, DEFAULT_MAX_HANDSHAKES_PER_ADDRESS } from '@swarmdrop/service';
import { announcePath, Cleanup, httpGet, startOwner, TestPeer } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** Half an MSE public key: not a plaintext handshake, not HTTP, never finished. */
const HALF_A_KEY = Buffer.alloc(50, 0xa5);

interface HandshakeStats {
  held: number;
  peak: number;
  refusedAddressCap: number;
  evicted: number;
}

describe('connection budgets', { timeout: 60_000 }, () => {
  it('a wire full of handshaken BitTorrent connections still serves the metainfo, an announce and /status', async () => {
    const o = await startOwner(cleanup, {
      size: 300_000,
      name: 'data.bin',
      options: { maxConnections: 8 },
    });
    for (let k = 0; k < 8; k++) {
      const peer = await TestPeer.connect(o.port, { metainfo: o.metainfo });
      cleanup.add(() => peer.destroy());
      await peer.ready();
    }
    const ninth = await TestPeer.connect(o.port, { metainfo: o.metainfo });
    cleanup.add(() => ninth.destroy());
    await ninth.closedPromise;
    expect(ninth.remoteHandshake).toBeUndefined();
    const refused = await o.log.waitFor('connection-refused', { from: ninth.label });
    expect(refused.fields.reason).toMatch(/too many .*connections \(limit 8\)/);

    const torrent = await httpGet(o.port, '/data.bin.torrent');
    expect(torrent.status).toBe(200);
    expect(parseMetainfo(torrent.body).infoHash.equals(o.metainfo.infoHash)).toBe(true);
    const announce = await httpGet(
      o.port,
      announcePath({ infoHash: o.metainfo.infoHash, peerId: Buffer.alloc(20, 7), port: 7001 }),
    );
    expect(announce.status).toBe(200);
    expect(announce.body.toString('latin1')).toMatch(/5:peers/);
    const status = await httpGet(o.port, '/status');
    expect(status.status).toBe(200);
    expect(JSON.parse(status.body.toString()).connections).toBe(8);
  });

  it('300 half-open MSE handshakes from ten addresses hold at most the handshake budget, and the metainfo is served', async () => {
    const o = await startOwner(cleanup, { size: 300_000, name: 'data.bin' });
    const total = 300;
    const sockets: Socket[] = [];
    let closed = 0;
    const enoughClosed = new Promise<void>((resolve) => {
      for (let i = 0; i < total; i++) {
        const socket = connect({
          host: '127.0.0.1',
          port: o.port,
          localAddress: `127.0.0.${2 + (i % 10)}`,
        });
        socket.on('error', () => {});
        socket.once('close', () => {
          if (++closed === total - DEFAULT_MAX_HANDSHAKES) resolve();
        });
        socket.once('connect', () => socket.write(HALF_A_KEY));
        socket.resume();
        sockets.push(socket);
        cleanup.add(() => socket.destroy());
      }
    });
    // The owner turned away or cut all but a budget's worth (each close is one of them).
    await enoughClosed;
    const torrent = await httpGet(o.port, '/data.bin.torrent');
    expect(torrent.status).toBe(200);
    const handshakes = (o.owner.status() as { handshakes: HandshakeStats }).handshakes;
    expect(handshakes.peak).toBeLessThanOrEqual(DEFAULT_MAX_HANDSHAKES);
    expect(handshakes.held).toBeLessThanOrEqual(DEFAULT_MAX_HANDSHAKES);
    expect(handshakes.refusedAddressCap + handshakes.evicted).toBeGreaterThanOrEqual(
      total - DEFAULT_MAX_HANDSHAKES,
    );
    expect(sockets.filter((s) => !s.destroyed).length).toBeLessThanOrEqual(DEFAULT_MAX_HANDSHAKES);
  });

  it('µTP handshakes count against the same budget: one source gets its share, the rest are refused', async () => {
    const o = await startOwner(cleanup, { size: 300_000, name: 'data.bin' });
    const client = new UtpEndpoint({ host: '127.0.0.1', port: 0 });
    await client.listen();
    cleanup.add(() => client.close());
    const extra = 4;
    for (let i = 0; i < DEFAULT_MAX_HANDSHAKES_PER_ADDRESS + extra; i++) {
      // A refused one is reset at once, maybe before our connect() has resolved.
      const stream = await client.connect('127.0.0.1', o.port).catch(() => undefined);
      stream?.on('error', () => {});
      stream?.resume();
      stream?.write(HALF_A_KEY);
    }
    await o.log.waitFor(
      'connection-refused',
      (f) => /too many handshakes in progress from 127\.0\.0\.1 \(limit 16/.test(f.reason ?? ''),
      { count: extra },
    );
    const handshakes = (o.owner.status() as { handshakes: HandshakeStats }).handshakes;
    expect(handshakes).toMatchObject({
      held: DEFAULT_MAX_HANDSHAKES_PER_ADDRESS,
      refusedAddressCap: extra,
      evicted: 0,
    });
  });
});
