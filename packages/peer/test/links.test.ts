/**
 * `<owner>` given as a link: the owner's magnet link, or a swarmdrop:// or
 * magnet link naming any member of the swarm, which serves its copy of the
 * metainfo and trades once the owner is gone.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeAnnounceResponse, formatMagnet } from '@swarmdrop/protocol';
import { formatLink } from '@swarmdrop/service';
import {
  announcePath,
  CHUNK,
  Cleanup,
  freePort,
  httpGet,
  PEER_BIN,
  runBin,
  startOwner,
  startPeer,
  stockPeerId,
} from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { parsePeerArgs } from '../src/args.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const HASH = 'c12fe1c06bba254a9dc9f519b335aa7c1367a88a';

describe('<owner> as a magnet link', () => {
  it('takes the owner from its swarmdrop tracker, pins the info-hash, and dials its peers in swarm mode', () => {
    const options = parsePeerArgs([
      `magnet:?xt=urn:btih:${HASH}&dn=a.bin&tr=http%3A%2F%2F10.0.0.1%3A7000%2Fannounce&x.pe=10.0.0.2:6881`,
      '6000',
    ]);
    if (typeof options === 'string') throw new Error(options);
    expect(options.owner).toEqual({ host: '10.0.0.1', port: 7000 });
    expect(options.infoHash?.toString('hex')).toBe(HASH);
    expect(options.swarm).toBe(true);
    expect(options.trackerless).toBe(false);
    expect(options.neighbour).toEqual({ host: '10.0.0.2', port: 6881 });
  });

  it('without a swarmdrop tracker, asks its first peer and trades with all of them, no tracker', () => {
    const options = parsePeerArgs([
      `magnet:?xt=urn:btih:${HASH}&tr=udp%3A%2F%2Ftracker.example%3A1337&x.pe=10.0.0.2:6881&x.pe=10.0.0.3:6881`,
      '6000',
    ]);
    if (typeof options === 'string') throw new Error(options);
    expect(options.trackerless).toBe(true);
    expect(options.owner).toEqual({ host: '10.0.0.2', port: 6881 });
    expect([options.neighbour, ...options.moreNeighbours]).toEqual([
      { host: '10.0.0.2', port: 6881 },
      { host: '10.0.0.3', port: 6881 },
    ]);
  });

  it.each([
    [[`magnet:?xt=urn:btih:${HASH}`, '6000'], /names neither a swarmdrop tracker .* nor a peer/],
    [
      [`magnet:?xt=urn:btih:${HASH}&x.pe=10.0.0.2:1`, '6000', '--infohash', '0'.repeat(40)],
      /--infohash: differs/,
    ],
    [['magnet:?xt=urn:btih:1234', '6000'], /is not an info-hash/],
  ])('%j is refused with one line', (argv, message) => {
    expect(() => parsePeerArgs(argv)).toThrow(message);
  });

  it("the bin, given the owner's magnet link from its ready line, merges the file", async () => {
    const { log, data } = await startOwner(cleanup, { size: 3 * CHUNK + 5, name: 'm.bin' });
    const magnet = (await log.waitFor('ready')).fields.magnet!;
    const dir = await cleanup.tempDir();
    const child = runBin(cleanup, PEER_BIN, [magnet, String(await freePort()), '--dir', dir]);
    await child.stdout.waitFor('merged');
    expect(child.stdout.filter('listening')[0]!.fields.mode).toBe('swarm');
    expect((await readFile(join(dir, 'm.bin'))).equals(data)).toBe(true);
  });
});

describe('a link naming a member of the swarm, not the owner', () => {
  it('a swarmdrop:// link to a peer: the metainfo from that peer, the chunks too once the owner is gone', async () => {
    const owner = await startOwner(cleanup, { size: 4 * CHUNK + 9, name: 'p.bin' });
    const first = await startPeer(cleanup, { ownerPort: owner.port, port: 0 });
    await first.log.waitFor('merged');
    await owner.owner.close();
    const dir = await cleanup.tempDir();
    const child = runBin(cleanup, PEER_BIN, [
      formatLink('127.0.0.1', first.peer.port, owner.metainfo.infoHash),
      String(await freePort()),
      '--dir',
      dir,
    ]);
    await child.stdout.waitFor('merged');
    // The member answered the announce (its member tracker): no announce failed.
    expect(child.stdout.filter('error')).toEqual([]);
    // Every chunk came from the member the link names.
    const from = new Set(child.stdout.filter('chunk-received').map((l) => l.fields.from));
    expect([...from]).toEqual([`127.0.0.1:${first.peer.port}`]);
    expect((await readFile(join(dir, 'p.bin'))).equals(owner.data)).toBe(true);
  });

  it('a magnet link with only a peer that holds the file and no tracker: metadata and chunks from it alone', async () => {
    const owner = await startOwner(cleanup, { size: 2 * CHUNK + 1, name: 'q.bin' });
    const first = await startPeer(cleanup, { ownerPort: owner.port, port: 0 });
    await first.log.waitFor('merged');
    await owner.owner.close();
    const dir = await cleanup.tempDir();
    const magnet = formatMagnet({
      infoHash: owner.metainfo.infoHash,
      peers: [{ host: '127.0.0.1', port: first.peer.port }],
    });
    const child = runBin(cleanup, PEER_BIN, [magnet, String(await freePort()), '--dir', dir]);
    await child.stdout.waitFor('merged');
    // No tracker: nothing was announced, so no announce failure was logged either.
    expect(child.stdout.filter('error')).toEqual([]);
    // The metainfo came over the wire from that peer (BEP 9), not over HTTP.
    expect(child.stdout.filter('metadata-fetched').map((l) => l.fields.from)).toEqual([
      `127.0.0.1:${first.peer.port}`,
    ]);
    expect((await readFile(join(dir, 'q.bin'))).equals(owner.data)).toBe(true);
  });
});

describe("a peer's member tracker (GET /announce)", () => {
  it('lists the peer itself first, then the members it is connected to, never the announcer', async () => {
    const owner = await startOwner(cleanup, { size: 3 * CHUNK, name: 't.bin' });
    const a = await startPeer(cleanup, { ownerPort: owner.port, port: 0 });
    const b = await startPeer(cleanup, { ownerPort: owner.port, port: 0 });
    await Promise.all([a.log.waitFor('merged'), b.log.waitFor('merged')]);
    // a and b found each other through the owner's tracker.
    await a.log.waitFor('connected', { peer: `127.0.0.1:${b.peer.port}` });
    const infoHash = owner.metainfo.infoHash;
    const ask = async (port: number) => {
      const got = await httpGet(
        a.peer.port,
        announcePath({ infoHash, peerId: stockPeerId(), port }),
      );
      expect(got.status).toBe(200);
      const answer = decodeAnnounceResponse(got.body);
      if (answer.failure !== undefined) throw new Error(answer.failure);
      return answer.listed.map((p) => `${p.host}:${p.port}`);
    };
    const listed = await ask(6881);
    expect(listed[0]).toBe(`127.0.0.1:${a.peer.port}`);
    expect(listed).toContain(`127.0.0.1:${b.peer.port}`);
    expect(listed).toContain(`127.0.0.1:${owner.port}`);
    // b asking is not told of itself.
    expect(await ask(b.peer.port)).not.toContain(`127.0.0.1:${b.peer.port}`);
  });

  it('refuses another torrent and a malformed announce, each with a failure reason', async () => {
    const owner = await startOwner(cleanup, { size: CHUNK, name: 'u.bin' });
    const a = await startPeer(cleanup, { ownerPort: owner.port, port: 0 });
    await a.log.waitFor('merged');
    const other = await httpGet(
      a.peer.port,
      announcePath({ infoHash: Buffer.alloc(20, 7), peerId: stockPeerId(), port: 6881 }),
    );
    expect(decodeAnnounceResponse(other.body)).toEqual({
      failure: 'unknown info_hash: this peer trades one torrent',
    });
    const bad = await httpGet(a.peer.port, '/announce?info_hash=short&port=1');
    expect(bad.status).toBe(400);
    expect(decodeAnnounceResponse(bad.body).failure).toMatch(/info_hash must be 20 bytes/);
  });

  it("in a private swarm answers only with the swarm's token", async () => {
    const token = 'a-private-swarm-token-0123456789';
    const owner = await startOwner(cleanup, { size: CHUNK, name: 'v.bin', options: { token } });
    const a = await startPeer(cleanup, { ownerPort: owner.port, port: 0, options: { token } });
    await a.log.waitFor('merged');
    const path = announcePath({
      infoHash: owner.metainfo.infoHash,
      peerId: stockPeerId(),
      port: 6881,
    });
    expect((await httpGet(a.peer.port, path)).status).toBe(401);
    const keyed = await httpGet(a.peer.port, `${path}&key=${token}`);
    expect(keyed.status).toBe(200);
    expect(decodeAnnounceResponse(keyed.body).failure).toBeUndefined();
  });
});
