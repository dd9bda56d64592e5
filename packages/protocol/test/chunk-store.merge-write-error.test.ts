/**
 * Pins a bug: ChunkStore.merge wrote through fs.createWriteStream and only
 * listened for errors while waiting for 'drain'. An error opening or writing
 * the `.part` file (no such directory, disk full) fired while merge awaited a
 * chunk read, with no listener: an uncaught exception that took the whole
 * process down, and the merge promise never settled.
 */
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildMetainfo } from '../src/index.js';
import { ChunkStore, splitFile } from '../src/node/index.js';
import { Cleanup, pseudoRandomBytes, rejected } from './helpers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

describe('merge when the output cannot be written', () => {
  it('rejects with the file system error instead of crashing the process', async () => {
    const dir = await cleanup.tempDir();
    const source = join(dir, 'source.bin');
    await writeFile(source, pseudoRandomBytes(300_000));
    const split = await splitFile({ source, dir });
    const { metainfo } = buildMetainfo({
      name: 'source.bin',
      length: split.length,
      pieceHashes: split.pieceHashes,
    });
    const { store } = await ChunkStore.open({ dir, metainfo });
    cleanup.add(() => store.close());
    const err = await rejected(store.merge(join(dir, 'no', 'such', 'dir', 'out.bin')));
    expect(err).toMatchObject({ code: 'ENOENT' });
    // The store is unharmed: every chunk still held, and a merge to a good path works.
    expect(store.isComplete()).toBe(true);
    await store.merge(join(dir, 'out.bin'));
    expect((await readdir(dir)).sort()).toEqual(['chunks', 'out.bin', 'source.bin', 'summary.txt']);
  });
});
