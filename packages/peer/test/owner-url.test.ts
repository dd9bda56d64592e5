import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CHUNK, Cleanup, freePort, PEER_BIN, runBin, startOwner } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_METAINFO_PATH, parseOwnerArg } from '../src/args.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

describe('<owner> as host:port or as the .torrent URL', () => {
  it.each([
    ['6881', { host: undefined, port: 6881 }, DEFAULT_METAINFO_PATH],
    ['a.example.lan:6881', { host: 'a.example.lan', port: 6881 }, DEFAULT_METAINFO_PATH],
    ['[fd00::1]:6881', { host: 'fd00::1', port: 6881 }, DEFAULT_METAINFO_PATH],
    [
      'http://10.0.0.1:6881/movie.mkv.torrent',
      { host: '10.0.0.1', port: 6881 },
      '/movie.mkv.torrent',
    ],
    [
      'http://[fd00::1]:6881/movie.mkv.torrent',
      { host: 'fd00::1', port: 6881 },
      '/movie.mkv.torrent',
    ],
    ['HTTP://owner.lan/metainfo.torrent', { host: 'owner.lan', port: 80 }, '/metainfo.torrent'],
    [
      'http://owner.lan:6881/a%20b.torrent?x=1',
      { host: 'owner.lan', port: 6881 },
      '/a%20b.torrent?x=1',
    ],
  ])('%s', (text, owner, path) => {
    expect(parseOwnerArg(text)).toEqual({ owner, metainfoPath: path });
  });

  it.each([
    ['https://owner.lan:6881/a.torrent', /over http:\/\/, not https:/],
    ['ftp://owner.lan/a.torrent', /over http:\/\/, not ftp:/],
    ['http://owner.lan:6881/', /names no \.torrent/],
    ['http://owner.lan:6881', /names no \.torrent/],
    ['http://me:secret@owner.lan:6881/a.torrent', /no user, password/],
    ['http://owner.lan:99999/a.torrent', /not a valid URL/],
    ['http://own er.lan/a.torrent', /not a valid URL/],
  ])('%s is refused with a reason', (text, reason) => {
    let error: unknown;
    try {
      parseOwnerArg(text);
    } catch (err) {
      error = err;
    }
    expect((error as { code?: string }).code).toBe('ERR_ADDRESS');
    expect((error as Error).message).toMatch(reason);
  });

  it('the bin, given the URL the owner printed as `ready url=`, fetches that .torrent and merges the file', async () => {
    const { port, data, log } = await startOwner(cleanup, {
      size: 3 * CHUNK + 17,
      name: 'movie.mkv',
      options: { expectedPeers: 1 },
    });
    const url = (await log.waitFor('ready')).fields.url!;
    expect(url).toBe(`http://127.0.0.1:${port}/movie.mkv.torrent`);
    const dir = await cleanup.tempDir();
    const child = runBin(cleanup, PEER_BIN, [
      url,
      '127.0.0.1:0',
      String(await freePort()),
      '--dir',
      dir,
    ]);
    await child.stdout.waitFor('merged');
    expect(child.stdout.filter('listening')[0]!.fields.owner).toBe(`127.0.0.1:${port}`);
    expect((await readFile(join(dir, 'movie.mkv'))).equals(data)).toBe(true);
  });

  it('a URL whose path the owner does not serve: one line naming the path and the answer, exit 1', async () => {
    const { port } = await startOwner(cleanup, { size: CHUNK, options: { expectedPeers: 1 } });
    const child = runBin(cleanup, PEER_BIN, [
      `http://127.0.0.1:${port}/nope.torrent`,
      '127.0.0.1:0',
      String(await freePort()),
      '--dir',
      await cleanup.tempDir(),
      '--owner-timeout-ms',
      '500',
    ]);
    expect(await child.exited).toBe(1);
    const lines = child.stderr.split('\n').filter((l) => l !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^swarmdrop-peer: error: .*GET \/nope\.torrent answered 404/);
  });
});
