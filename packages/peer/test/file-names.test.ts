/**
 * A metainfo names the merged file; that name must never take the place of
 * the peer's own files. Before: an owner sharing `summary.txt` made every
 * peer overwrite its summary with the merged file, `chunks` failed the merge
 * with EISDIR, and a legal 244-255 byte name failed with ENAMETOOLONG on
 * `<name>.torrent.tmp`.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CHUNK, Cleanup, freePort, merged, startOwner, startPeer } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

describe('a metainfo naming one of the peer own files', () => {
  for (const name of ['summary.txt', 'chunks', 'other.torrent']) {
    it(`${name}: refused with a hint to use --out; with --out the file merges and the peer's files are intact`, async () => {
      const { owner, data } = await startOwner(cleanup, {
        size: 3 * CHUNK + 7,
        name,
        options: { expectedPeers: 1 },
      });
      const dir = await cleanup.tempDir();
      await expect(
        startPeer(cleanup, {
          ownerPort: owner.port,
          port: 0,
          neighbourPort: await freePort(),
          dir,
        }),
      ).rejects.toMatchObject({ code: 'ERR_OPTION', field: '--out' });

      const out = join(await cleanup.tempDir(), name);
      const { log: capture } = await startPeer(cleanup, {
        ownerPort: owner.port,
        port: 0,
        neighbourPort: await freePort(),
        dir,
        options: { out },
      });
      expect(await merged(capture)).toBe(out);
      expect((await readFile(out)).equals(data)).toBe(true);
      const summary = await readFile(join(dir, 'summary.txt'), 'utf8');
      expect(summary.trim().split('\n').map(Number).sort()).toEqual([0, 1, 2, 3]);
      expect((await readdir(join(dir, 'chunks'))).sort()).toEqual([
        '0.chunk',
        '1.chunk',
        '2.chunk',
        '3.chunk',
      ]);
    });
  }

  it('--out pointing at the summary in --dir is refused too', async () => {
    const { owner } = await startOwner(cleanup, { size: CHUNK, options: { expectedPeers: 1 } });
    const dir = await cleanup.tempDir();
    await expect(
      startPeer(cleanup, {
        ownerPort: owner.port,
        port: 0,
        neighbourPort: await freePort(),
        dir,
        options: { out: join(dir, 'summary.txt') },
      }),
    ).rejects.toMatchObject({ code: 'ERR_OPTION', field: '--out' });
  });
});

describe('a legal name of 255 bytes', () => {
  it('is shared and merged: the .torrent on disk is shortened to fit, the merged file keeps the name', async () => {
    const name = `${'n'.repeat(251)}.bin`;
    const { owner, data } = await startOwner(cleanup, {
      size: 2 * CHUNK,
      name,
      options: { expectedPeers: 1 },
    });
    const dir = await cleanup.tempDir();
    const { log: capture } = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: 0,
      neighbourPort: await freePort(),
      dir,
    });
    const path = await merged(capture);
    expect(path).toBe(join(dir, name));
    expect((await readFile(path)).equals(data)).toBe(true);
    const torrents = (await readdir(dir)).filter((f) => f.endsWith('.torrent'));
    expect(torrents).toHaveLength(1);
    expect(Buffer.byteLength(torrents[0]!)).toBeLessThanOrEqual(251);
    expect(capture.filter('metainfo')[0]!.fields.torrent).toBe(join(dir, torrents[0]!));
  });
});
