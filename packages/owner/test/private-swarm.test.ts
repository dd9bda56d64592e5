/**
 * A private swarm (--token-file / SWARMDROP_TOKEN): before, anyone who could
 * reach the port got the metainfo, announced and downloaded, and /status
 * listed every peer's address and the owner's paths.
 */

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { bencodeDecode, makePeerId, parseMagnet, parseMetainfo } from '@swarmdrop/protocol';
import { parseLink } from '@swarmdrop/service';
import {
  announcePath,
  Cleanup,
  httpGet,
  type LogCapture,
  randomFile,
  startOwner,
  stockPeerId,
  type TestOwner,
  TestPeer,
} from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { parseOwnerArgs } from '../src/index.js';

const TOKEN = 'correct-horse-battery-staple-42';
const BEARER = { authorization: `Bearer ${TOKEN}` };
/** Another loopback address: a source the owner has not seen announce. */
const STRANGER = '127.0.0.2';

describe('a private swarm', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function start(
    options: { token?: string | undefined; source?: string } = { token: TOKEN },
  ): Promise<{ o: TestOwner['owner']; log: LogCapture; source: string }> {
    let source = options.source;
    if (source === undefined) {
      source = join(await cleanup.tempDir(), 'data.bin');
      await randomFile(source, 250_000);
    }
    const started = await startOwner(cleanup, { file: source, options: { token: options.token } });
    return { o: started.owner, log: started.log, source };
  }

  it('serves the metainfo only with the token, and then with the token in its tracker URL', async () => {
    const { o } = await start();
    expect((await httpGet(o.port, '/metainfo.torrent')).status).toBe(401);
    expect((await httpGet(o.port, '/data.bin.torrent')).status).toBe(401);
    expect(
      (
        await httpGet(o.port, '/metainfo.torrent', {
          headers: { authorization: 'Bearer wrong-token-000000' },
        })
      ).status,
    ).toBe(401);
    for (const got of [
      await httpGet(o.port, '/metainfo.torrent', { headers: BEARER }),
      await httpGet(o.port, `/data.bin.torrent?key=${TOKEN}`),
    ]) {
      expect(got.status).toBe(200);
      const torrent = parseMetainfo(got.body);
      expect(torrent.private).toBe(true);
      expect(torrent.infoHash.equals(o.metainfo.infoHash)).toBe(true);
      expect(torrent.announce).toBe(`http://127.0.0.1:${o.port}/announce?key=${TOKEN}`);
    }
  });

  it('is marked private (BEP 27), which gives it another info-hash; the link and the magnet link in `ready` pin that one', async () => {
    const { o, log, source } = await start();
    const ready = await log.waitFor('ready');
    expect(ready.fields.private).toBe('true');
    const link = parseLink(ready.fields.link!, 'link');
    expect(link.infoHash.equals(o.metainfo.infoHash)).toBe(true);
    expect(link.owner.port).toBe(o.port);
    // The magnet link pins the same content; it names the tracker, never the token.
    expect(ready.fields.magnet).not.toContain(TOKEN);
    const magnet = parseMagnet(ready.fields.magnet!, 'magnet');
    expect(magnet.infoHash.equals(o.metainfo.infoHash)).toBe(true);
    expect(magnet.name).toBe('data.bin');
    expect(magnet.trackers).toEqual([`http://127.0.0.1:${o.port}/announce`]);
    expect(magnet.peers).toEqual([{ host: '127.0.0.1', port: o.port }]);
    const privateHash = o.metainfo.infoHash;
    // The same file, public: only the private flag differs in the info dictionary.
    const { o: open } = await start({ source });
    expect(open.metainfo.private).toBe(false);
    expect(open.metainfo.infoHash.equals(privateHash)).toBe(false);
  });

  it('answers announces only with key=<token>, also when a stock client adds a key of its own', async () => {
    const { o } = await start();
    const path = announcePath({ infoHash: o.metainfo.infoHash, peerId: stockPeerId(), port: 6881 });
    const refused = await httpGet(o.port, path);
    expect(refused.status).toBe(401);
    expect(
      Buffer.from(
        (bencodeDecode(refused.body) as Record<string, Uint8Array>)['failure reason']!,
      ).toString(),
    ).toMatch(/private/);
    for (const query of [
      `&key=${TOKEN}`,
      `&key=${TOKEN}&key=A1B2C3D4`,
      `&key=A1B2C3D4&key=${TOKEN}`,
    ]) {
      const ok = await httpGet(o.port, `${path}${query}`);
      expect(ok.status, query).toBe(200);
      expect((bencodeDecode(ok.body) as Record<string, unknown>)['failure reason']).toBeUndefined();
    }
  });

  it('takes a dashboard report only with the token, for a port announced with the token', async () => {
    const { o } = await start();
    const body = JSON.stringify({ port: 7001, connections: 0, done: false, links: [] });
    const post = (headers: Record<string, string>) =>
      httpGet(o.port, '/dashboard/report', { method: 'POST', headers, body });
    const path = announcePath({
      infoHash: o.metainfo.infoHash,
      peerId: makePeerId(7001),
      port: 7001,
    });
    expect((await httpGet(o.port, path)).status).toBe(401);
    expect((await post({})).status).toBe(401);
    expect((await post(BEARER)).status).toBe(403);
    expect((await httpGet(o.port, `${path}&key=${TOKEN}`)).status).toBe(200);
    expect((await post({})).status).toBe(401);
    expect((await post(BEARER)).status).toBe(204);
  });

  it('/status without the token shows no addresses, paths or name; with it, the details', async () => {
    const { o } = await start();
    const peerId = makePeerId(7001);
    await httpGet(
      o.port,
      `${announcePath({ infoHash: o.metainfo.infoHash, peerId, port: 7001 })}&key=${TOKEN}`,
    );
    const open = (await httpGet(o.port, '/status')).body.toString();
    expect(open).not.toMatch(/127\.0\.0\.1|\/|data\.bin/);
    expect(JSON.parse(open)).toMatchObject({ role: 'owner', private: true, peers: 1 });
    const full = JSON.parse(
      (await httpGet(o.port, '/status', { headers: BEARER })).body.toString(),
    );
    expect(full.peers[0].address).toBe('127.0.0.1:7001');
    expect(full.name).toBe('data.bin');
  });

  it('accepts BitTorrent connections only from addresses that announced with the token', async () => {
    const { o, log } = await start();
    const stranger = await TestPeer.connect(o.port, {
      metainfo: o.metainfo,
      localAddress: STRANGER,
    });
    cleanup.add(() => stranger.destroy());
    await stranger.closedPromise;
    expect(stranger.remoteBitfield).toBeUndefined();
    const refused = await log.waitFor(
      'connection-refused',
      (f) => f.from?.startsWith(`${STRANGER}:`) ?? false,
    );
    expect(refused.fields.reason).toBe('not announced with the token');

    // Announcing without the token changes nothing; with it, the same address may trade.
    const path = announcePath({ infoHash: o.metainfo.infoHash, peerId: stockPeerId(), port: 6881 });
    expect((await httpGet(o.port, path, { localAddress: STRANGER })).status).toBe(401);
    expect((await httpGet(o.port, `${path}&key=${TOKEN}`, { localAddress: STRANGER })).status).toBe(
      200,
    );
    const member = await TestPeer.connect(o.port, { metainfo: o.metainfo, localAddress: STRANGER });
    cleanup.add(() => member.destroy());
    await member.ready();
    expect(member.remoteBitfield?.isComplete()).toBe(true);
  });

  it('takes the token from --token-file or SWARMDROP_TOKEN; a short one is refused', async () => {
    const dir = await cleanup.tempDir();
    const file = join(dir, 'token');
    await writeFile(file, `${TOKEN}\n`);
    expect(parseOwnerArgs(['0', 'f', '--token-file', file], {})).toMatchObject({ token: TOKEN });
    expect(parseOwnerArgs(['0', 'f'], { SWARMDROP_TOKEN: TOKEN })).toMatchObject({ token: TOKEN });
    expect(parseOwnerArgs(['0', 'f'], {})).toMatchObject({ token: undefined });
    expect(() => parseOwnerArgs(['0', 'f'], { SWARMDROP_TOKEN: 'short' })).toThrow(
      /SWARMDROP_TOKEN: the token must be 16-256/,
    );
    expect(() => parseOwnerArgs(['0', 'f', '--token-file', join(dir, 'nope')], {})).toThrow(
      /--token-file: cannot read/,
    );
  });
});
