/**
 * --remove-chunks, for users who need only the file: once the merged file is
 * verified the chunk files go, the peer goes on serving every chunk from the
 * merged file, and a restart takes its chunks from that file instead of
 * fetching them again. Without it, a restart after the merge finds the file
 * it wrote and does not write it again.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CHUNK, Cleanup, freePort, merged, startOwner, startPeer } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

describe('--remove-chunks', () => {
  it('deletes the chunk files after the merge and serves from the merged file', async () => {
    const chunks = 10;
    const { owner, data } = await startOwner(cleanup, {
      size: chunks * CHUNK,
      options: { expectedPeers: 2 },
    });
    const first = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: 0,
      neighbourPort: await freePort(),
      options: { removeChunks: true, fallbackAfterMs: 200 },
    });
    const path = await merged(first.log);
    expect((await readFile(path)).equals(data)).toBe(true);
    const removed = await first.log.waitFor('chunks-removed');
    expect(removed.fields.count).toBe(String(chunks));
    expect(await readdir(join(first.dir, 'chunks'))).toEqual([]);

    // A second peer gets half the file from the owner and must fetch the rest from the first.
    const second = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: 0,
      neighbourPort: first.peer.port,
      options: { fallbackAfterMs: 60_000 },
    });
    const out = await merged(second.log);
    expect((await readFile(out)).equals(data)).toBe(true);
    const fromFirst = second.log
      .filter('chunk-received')
      .filter((l) => l.fields.via === 'neighbour');
    expect(fromFirst.length, 'chunks served from the merged file').toBeGreaterThan(0);
    expect(first.log.filter('chunk-sent').length).toBe(fromFirst.length);
  });

  it('a restart takes its chunks from the merged file; without the flag the file is not written again', async () => {
    const chunks = 6;
    const { owner, data } = await startOwner(cleanup, {
      size: chunks * CHUNK,
      options: { expectedPeers: 1 },
    });
    const dir = await cleanup.tempDir();
    const start = async (removeChunks: boolean) =>
      startPeer(cleanup, {
        ownerPort: owner.port,
        port: 0,
        neighbourPort: await freePort(),
        dir,
        options: { removeChunks },
      });
    const first = await start(true);
    const path = await merged(first.log);
    await first.log.waitFor('chunks-removed');
    const written = await stat(path);
    await first.peer.close();

    const again = await start(true);
    const resumed = await again.log.waitFor('resumed');
    expect(resumed.fields.fromMerged).toBe(String(chunks));
    expect(await merged(again.log)).toBe(path);
    expect(again.log.filter('request-sent')).toHaveLength(0);
    expect((await stat(path)).mtimeMs).toBe(written.mtimeMs);
    await again.peer.close();

    // Without the flag the chunk files are fetched again, but the merged file stays as it was.
    const plain = await start(false);
    await plain.log.waitFor('chunk-received', undefined, { count: chunks });
    expect(await merged(plain.log)).toBe(path);
    expect((await stat(path)).mtimeMs).toBe(written.mtimeMs);
    expect((await readFile(path)).equals(data)).toBe(true);
  });
});
