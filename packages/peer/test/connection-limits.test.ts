/**
 * The slow-loris lock-out (issue 10, item 1): hundreds of sockets that send
 * one byte ('G', the start of an HTTP request) and then nothing used to hold
 * every connection slot of an owner or a peer for as long as they stayed
 * open. Now HTTP has a budget of its own, of which one source address gets
 * DEFAULT_MAX_HTTP_CONNECTIONS_PER_ADDRESS (a newer connection closes the
 * oldest idle one), and every connection has a deadline until it is useful,
 * so a real peer from another address gets in meanwhile and the slow
 * sockets are closed.
 *
 * Loopback sources differ by address: the slow sockets bind 127.0.0.2, the
 * real peer reaches the owner on 127.0.0.3 (so its source is 127.0.0.3).
 */
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { Owner } from '@swarmdrop/owner';
import { ManualClock, makePeerId, parseMetainfo } from '@swarmdrop/protocol';
import { PeerWire } from '@swarmdrop/protocol/node';
import { DEFAULT_MAX_HTTP_CONNECTIONS_PER_ADDRESS } from '@swarmdrop/service';
import {
  CHUNK,
  Cleanup,
  freePort,
  LogCapture,
  merged,
  randomFile,
  startOwner,
  startPeer,
  TestPeer,
  within,
} from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const SLOW_SOCKETS = 500;
const HANG_MS = 60_000;

/** Opens `count` sockets from `localAddress` that each send 'G' and then nothing. */
async function slowSockets(host: string, port: number, localAddress: string, count: number) {
  const sockets: Socket[] = [];
  const closed: Array<Promise<unknown>> = [];
  for (let i = 0; i < count; i++) {
    const socket = connect({ host, port, localAddress });
    socket.on('error', () => {});
    socket.resume();
    sockets.push(socket);
    closed.push(once(socket, 'close'));
    cleanup.add(() => socket.destroy());
  }
  await Promise.all(
    sockets.map(async (socket) => {
      if (socket.connecting) await once(socket, 'connect');
      socket.write('G');
    }),
  );
  return {
    open: () => sockets.filter((s) => !s.destroyed && !s.readableEnded).length,
    allClosed: () => Promise.all(closed),
  };
}

function get(host: string, port: number, path: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (b: Buffer) => parts.push(b));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('connection deadlines and caps', { timeout: 120_000 }, () => {
  it('an owner held by 500 one-byte sockets from one address still serves a real peer from another, and closes them by their deadline', async () => {
    const base = await cleanup.tempDir('swarmdrop-owner-test-');
    const file = join(base, 'payload.bin');
    const data = await randomFile(file, 20 * CHUNK - 77);
    const logger = new LogCapture('owner').logger('owner');
    const deadlineMs = 8_000;
    const owner = await Owner.start(
      {
        file,
        dir: join(base, 'work'),
        host: '127.0.0.3',
        port: 0,
        chunkSize: CHUNK,
        expectedPeers: 1,
        maxConnections: 256,
        handshakeTimeoutMs: deadlineMs,
        logFormat: 'text',
      },
      { logger },
    );
    cleanup.add(() => owner.close());

    const slow = await slowSockets('127.0.0.3', owner.port, '127.0.0.2', SLOW_SOCKETS);

    // A real peer whose source is 127.0.0.3 joins, downloads and merges.
    const { log } = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: 0,
      neighbourPort: await freePort(),
      options: { owner: { host: '127.0.0.3', port: owner.port } },
    });
    const path = await within(merged(log), HANG_MS, () => log.tail());
    expect((await readFile(path)).equals(data)).toBe(true);
    // And plain HTTP from another address gets the metainfo.
    const torrent = await get('127.0.0.3', owner.port, '/metainfo.torrent');
    expect(torrent.status).toBe(200);
    expect(parseMetainfo(torrent.body).infoHash.equals(owner.metainfo.infoHash)).toBe(true);
    // It all happened while the slow sockets held their address's share
    // (if this fails, the machine took longer than the deadline to get here).
    expect(slow.open()).toBe(DEFAULT_MAX_HTTP_CONNECTIONS_PER_ADDRESS);

    // Those held are closed by their deadline, the rest made room for newer ones at once.
    await within(slow.allClosed(), HANG_MS, () => `${slow.open()} slow sockets still open`);
    const refused = owner.status().refused as Record<string, number>;
    expect(refused.timedOut).toBe(DEFAULT_MAX_HTTP_CONNECTIONS_PER_ADDRESS);
    expect(refused.evicted).toBe(SLOW_SOCKETS - DEFAULT_MAX_HTTP_CONNECTIONS_PER_ADDRESS);
    expect(refused).toMatchObject({ refusedTotalCap: 0, refusedAddressCap: 0, refusedHttpCap: 0 });
  });

  it('a peer held by 500 one-byte sockets from one address still answers HTTP and handshakes from another', async () => {
    const { owner } = await startOwner(cleanup, {
      size: 3 * CHUNK,
      options: { expectedPeers: 1 },
    });
    const { peer, log } = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: 0,
      neighbourPort: await freePort(),
    });
    await within(merged(log), HANG_MS, () => log.tail());

    const slow = await slowSockets('127.0.0.1', peer.port, '127.0.0.2', SLOW_SOCKETS);
    const status = await get('127.0.0.1', peer.port, '/status');
    expect(status.status).toBe(200);
    expect(JSON.parse(status.body.toString()).complete).toBe(true);
    const socket = connect({ host: '127.0.0.1', port: peer.port });
    socket.on('error', () => {});
    cleanup.add(() => socket.destroy());
    const wire = new PeerWire({ socket, metainfo: owner.metainfo, peerId: makePeerId(40_001) });
    cleanup.add(() => wire.close('test over'));
    const handshake = await within(wire.ready(), HANG_MS, () => 'no handshake from the peer');
    expect(Buffer.from(handshake.infoHash).equals(owner.metainfo.infoHash)).toBe(true);
    expect(slow.open()).toBeLessThanOrEqual(DEFAULT_MAX_HTTP_CONNECTIONS_PER_ADDRESS);
    const refusals = log.filter('connection-refused');
    expect(refusals.some((l) => /limit 16 per address/.test(l.fields.reason ?? ''))).toBe(true);
  });

  it('connections that request everything and never read are cut by the minimum upload rate: a real peer then completes, and the metainfo is served meanwhile', async () => {
    // Pins the lock-out: such connections kept the owner's sockets full, their
    // keep-alives defeated the idle timeout, and a new peer got in only when
    // the attack stopped. The owner's clock is a ManualClock, moved by the
    // test; the real peer's is real.
    const clock = new ManualClock();
    const readers = 6;
    const {
      owner,
      data,
      log: ownerLog,
    } = await startOwner(cleanup, {
      size: 8 * 1024 * 1024,
      name: 'big.bin',
      options: { maxConnections: readers, expectedPeers: 1 },
      components: { clock },
    });
    const pieces = Array.from({ length: owner.metainfo.geometry.pieceCount }, (_, i) => i);
    const stuck: TestPeer[] = [];
    for (let k = 0; k < readers; k++) {
      const reader = await TestPeer.connect(owner.port, {
        metainfo: owner.metainfo,
        localAddress: `127.0.0.${10 + k}`,
      });
      cleanup.add(() => reader.destroy());
      reader.record = false;
      await reader.ready();
      await reader.interested();
      reader.requestChunks(pieces);
      reader.socket.pause(); // and never reads again
      stuck.push(reader);
    }
    await ownerLog.waitFor('request-received', (f) => f.from?.startsWith('127.0.0.15:') ?? false);

    // The wire is full; HTTP is not.
    const torrent = await get('127.0.0.1', owner.port, '/big.bin.torrent');
    expect(torrent.status).toBe(200);
    expect(parseMetainfo(torrent.body).infoHash.equals(owner.metainfo.infoHash)).toBe(true);

    const { log } = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: 0,
      neighbourPort: await freePort(),
      options: { fallbackAfterMs: 300 },
    });
    const cut = () =>
      ownerLog.filter('disconnected', (f) => /^upload below/.test(f.reason ?? '')).length;
    // Move the owner's clock a sample at a time, letting its sockets run in between, until all are cut.
    const allCut = (async () => {
      while (cut() < readers) {
        clock.advance(5_000);
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    })();
    await within(allCut, HANG_MS, () => `${cut()} of ${readers} cut; ${ownerLog.tail()}`);
    const path = await within(merged(log), HANG_MS, () => log.tail());
    expect((await readFile(path)).equals(data)).toBe(true);
    const cutLabels = ownerLog
      .filter('disconnected', (f) => /^upload below/.test(f.reason ?? ''))
      .map((l) => l.fields.peer);
    expect(cutLabels.sort()).toEqual(stuck.map((r) => r.label).sort());
  });
});
