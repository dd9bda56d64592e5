/**
 * Pinned content and private swarms. Before, the metainfo came over plain
 * HTTP and was taken as it came: a man in the middle could swap the whole
 * file and the peer still logged `verified=true`; and anyone who reached a
 * peer's port could download from it.
 */

import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { readdir, readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { connect } from 'node:net';
import { encodeMessage, formatMagnet } from '@swarmdrop/protocol';
import { formatLink } from '@swarmdrop/service';
import {
  CHUNK,
  Cleanup,
  freePort,
  merged,
  PEER_BIN,
  runBin,
  startOwner,
  startPeer,
} from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { parsePeerArgs } from '../src/args.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const TOKEN = 'correct-horse-battery-staple-42';
/** Another loopback address: a host the owner's tracker never saw announce. */
const STRANGER = '127.0.0.2';

function get(
  port: number,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, headers: { connection: 'close', ...headers }, agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Opens a BitTorrent connection from `localAddress` and says whether the remote answered the handshake. */
async function handshakeAnswered(
  port: number,
  infoHash: Uint8Array,
  localAddress: string,
): Promise<boolean> {
  const socket = connect({ host: '127.0.0.1', port, localAddress });
  cleanup.add(() => {
    socket.destroy();
  });
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write(
    encodeMessage({
      type: 'handshake',
      reserved: new Uint8Array(8),
      infoHash,
      peerId: Buffer.alloc(20, 0x41),
    }),
  );
  let received = 0;
  socket.on('data', (d: Buffer) => {
    received += d.length;
    if (received >= 68) socket.destroy();
  });
  await once(socket, 'close');
  return received >= 68;
}

describe('pinned content', () => {
  it('a peer pinned to another info-hash refuses the metainfo before writing it', async () => {
    const { owner } = await startOwner(cleanup, { size: 2 * CHUNK, options: { expectedPeers: 1 } });
    const dir = await cleanup.tempDir();
    const other = Buffer.alloc(20, 0xee);
    await expect(
      startPeer(cleanup, {
        ownerPort: owner.port,
        port: 0,
        neighbourPort: await freePort(),
        dir,
        options: { infoHash: other },
      }),
    ).rejects.toMatchObject({ code: 'ERR_PINNED' });
    expect((await readdir(dir)).filter((f) => f.endsWith('.torrent'))).toEqual([]);
  });

  it('the bin given a link with another info-hash: one line, exit status 1', async () => {
    const { owner } = await startOwner(cleanup, { size: 2 * CHUNK, options: { expectedPeers: 1 } });
    const link = formatLink('127.0.0.1', owner.port, Buffer.alloc(20, 0xee));
    const child = runBin(cleanup, PEER_BIN, [
      link,
      '0',
      String(await freePort()),
      '--dir',
      await cleanup.tempDir(),
    ]);
    expect(await child.exited).toBe(1);
    const lines = child.stderr.split('\n').filter((l) => l !== '');
    expect(lines).toEqual([
      `swarmdrop-peer: error: the owner at 127.0.0.1:${owner.port} served a metainfo with info-hash ${owner.metainfo.infoHash.toString('hex')}, not the pinned ${'ee'.repeat(20)}; refused it`,
    ]);
  });

  it('the bin given the owner link downloads and verifies', async () => {
    const { owner, data } = await startOwner(cleanup, {
      size: 3 * CHUNK + 5,
      options: { expectedPeers: 1 },
    });
    const dir = await cleanup.tempDir();
    const link = formatLink('127.0.0.1', owner.port, owner.metainfo.infoHash);
    const sha256 = createHash('sha256').update(data).digest('hex');
    const child = runBin(cleanup, PEER_BIN, [
      link,
      '0',
      String(await freePort()),
      '--dir',
      dir,
      '--sha256',
      sha256,
      '--exit-when-done',
      '--linger-ms',
      '0',
      '--fallback-after-ms',
      '200',
    ]);
    expect(await child.exited, child.stderr).toBe(0);
    expect((await readFile(`${dir}/payload.bin`)).equals(data)).toBe(true);
  });

  it('--sha256 other than the file: refused at start, since the metainfo names the file SHA-256', async () => {
    const { owner } = await startOwner(cleanup, { size: 2 * CHUNK, options: { expectedPeers: 1 } });
    await expect(
      startPeer(cleanup, {
        ownerPort: owner.port,
        port: 0,
        neighbourPort: await freePort(),
        options: { sha256: Buffer.alloc(32, 1) },
      }),
    ).rejects.toMatchObject({ code: 'ERR_PINNED' });
  });
});

describe('a private swarm, on the peer side', () => {
  it('without the token a peer stops at once with a clear error', async () => {
    const { owner } = await startOwner(cleanup, {
      size: CHUNK,
      options: { expectedPeers: 1, token: TOKEN },
    });
    const child = runBin(cleanup, PEER_BIN, [
      String(owner.port),
      '0',
      String(await freePort()),
      '--dir',
      await cleanup.tempDir(),
    ]);
    expect(await child.exited).toBe(1);
    expect(child.stderr).toMatch(
      /runs a private swarm: pass its token with --token-file FILE or SWARMDROP_TOKEN/,
    );
  });

  it("given the owner's magnet link without the token, a peer stops at its tracker's 401 with the private-swarm error", async () => {
    const { log } = await startOwner(cleanup, { size: CHUNK, options: { token: TOKEN } });
    const magnet = (await log.waitFor('ready')).fields.magnet!;
    const child = runBin(cleanup, PEER_BIN, [
      magnet,
      String(await freePort()),
      '--dir',
      await cleanup.tempDir(),
    ]);
    expect(await child.exited).toBe(1);
    expect(child.stderr).toMatch(/runs a private swarm: pass its token/);
    expect(log.filter('connected')).toEqual([]);
  });

  it.each([
    ['tcp', 'prefer'],
    ['tcp', 'require'],
    ['utp', 'prefer'],
    ['utp', 'require'],
  ] as const)(
    'a magnet link naming only the private owner as a peer, without the token (--transport %s, --encryption %s): refused on the wire, no metadata, no chunk',
    async (transport, encryption) => {
      const { owner, log, metainfo } = await startOwner(cleanup, {
        size: CHUNK,
        options: { token: TOKEN },
      });
      // No tracker: the peer asks the owner for the metadata over the wire only (BEP 9).
      const magnet = formatMagnet({
        infoHash: metainfo.infoHash,
        peers: [{ host: '127.0.0.1', port: owner.port }],
      });
      const child = runBin(cleanup, PEER_BIN, [
        magnet,
        String(await freePort()),
        '--transport',
        transport,
        '--encryption',
        encryption,
        '--owner-timeout-ms',
        '1500',
        '--dir',
        await cleanup.tempDir(),
      ]);
      expect(await child.exited).toBe(1);
      expect(child.stderr).toMatch(/did not serve the metainfo/);
      // It reached the owner's port, which turned it away before any extension or chunk.
      expect(log.filter('connection-refused').length).toBeGreaterThan(0);
      expect(log.filter('connected')).toEqual([]);
      expect(log.filter('metadata-sent')).toEqual([]);
      expect(child.stdout.filter('metadata-fetched')).toEqual([]);
    },
  );

  it("with the token, the owner's magnet link is enough", async () => {
    const { owner, log, data } = await startOwner(cleanup, {
      size: 2 * CHUNK + 3,
      options: { token: TOKEN },
    });
    const magnet = (await log.waitFor('ready')).fields.magnet!;
    expect(magnet).not.toContain(TOKEN);
    const { log: capture } = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: 0,
      options: {
        ...parsedMagnet(magnet),
        token: TOKEN,
      },
    });
    expect((await readFile(await merged(capture))).equals(data)).toBe(true);
  });

  it('with the token it downloads; its own port then wants the token too', async () => {
    const { owner, data } = await startOwner(cleanup, {
      size: 3 * CHUNK,
      options: { expectedPeers: 1, token: TOKEN },
    });
    const { peer, log: capture } = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: 0,
      neighbourPort: await freePort(),
      options: { token: TOKEN, fallbackAfterMs: 200 },
    });
    expect((await readFile(await merged(capture))).equals(data)).toBe(true);

    expect((await get(peer.port, '/metainfo.torrent')).status).toBe(401);
    expect(
      (await get(peer.port, '/metainfo.torrent', { authorization: `Bearer ${TOKEN}` })).status,
    ).toBe(200);
    const open = await get(peer.port, '/status');
    expect(open.body).not.toMatch(/127\.0\.0\.1|\/|payload/);
    expect(JSON.parse(open.body)).toMatchObject({ role: 'peer', private: true, complete: true });
    const full = JSON.parse(
      (await get(peer.port, '/status', { authorization: `Bearer ${TOKEN}` })).body,
    );
    expect(full.merged).toMatch(/payload\.bin$/);

    // A host the tracker never listed is turned away on the wire ...
    expect(await handshakeAnswered(peer.port, owner.metainfo.infoHash, STRANGER)).toBe(false);
    expect((await capture.waitFor('connection-refused')).fields.reason).toBe(
      'not announced with the token',
    );
    // ... until it announces with the token: the peer asks the tracker again and admits it.
    const infoHash = [...owner.metainfo.infoHash]
      .map((b) => `%${b.toString(16).padStart(2, '0')}`)
      .join('');
    const announced = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: owner.port,
          localAddress: STRANGER,
          agent: false,
          path: `/announce?info_hash=${infoHash}&peer_id=${'B'.repeat(20)}&port=6881&left=0&key=${TOKEN}`,
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(announced).toBe(200);
    await waitUntil(() => handshakeAnswered(peer.port, owner.metainfo.infoHash, STRANGER));
  });
});

/** Re-tries `check` (each try is a real exchange, so the peer's once-per-5-s tracker refresh can come round). */
async function waitUntil(check: () => Promise<boolean>, tries = 40): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error('condition never held');
}

/** What the command line makes of a magnet link as `<owner>`: the options it sets. */
function parsedMagnet(magnet: string) {
  const parsed = parsePeerArgs([magnet, '0']);
  if (typeof parsed === 'string') throw new Error(parsed);
  const { owner, infoHash, swarm, trackerless, neighbour } = parsed;
  return { owner, infoHash, swarm, trackerless, neighbour };
}
