/**
 * MergedFile: the merged file is written as verified chunks arrive, in any
 * order, and completed (SHA-256 checked, fsynced, renamed) once whole. It
 * never replaces a file swarmdrop did not write.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Cleanup, pseudoRandomBytes, rejected } from '@swarmdrop/testkit';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { buildMetainfo, ChunkError, type Metainfo } from '../src/index.js';
import { MERGE_RECORD_FILE, MergedFile, sha1 } from '../src/node/index.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const PIECE = 16 * 1024;

/** A file of `count` pieces (the last one short) and its metainfo, with the whole file's SHA-256. */
function fixture(count: number, seed = 1): { data: Buffer; metainfo: Metainfo } {
  const data = pseudoRandomBytes((count - 1) * PIECE + 700, seed);
  const pieces = Array.from({ length: count }, (_, i) =>
    sha1(data.subarray(i * PIECE, (i + 1) * PIECE)),
  );
  const { metainfo } = buildMetainfo({
    name: 'data.bin',
    length: data.length,
    pieceLength: PIECE,
    pieceHashes: pieces,
    sha256: createHash('sha256').update(data).digest(),
  });
  return { data, metainfo };
}

const piece = (data: Buffer, i: number) => data.subarray(i * PIECE, (i + 1) * PIECE);

async function create(dir: string, metainfo: Metainfo, extra: { force?: boolean } = {}) {
  const merged = await MergedFile.create({ path: join(dir, 'out.bin'), dir, metainfo, ...extra });
  cleanup.add(() => merged.close());
  return merged;
}

describe('MergedFile', () => {
  it('chunks written in any order give the whole file and its SHA-256', async () => {
    const { data, metainfo } = fixture(9);
    const count = metainfo.geometry.pieceCount;
    await fc.assert(
      fc.asyncProperty(
        fc.shuffledSubarray([...Array(count).keys()], { minLength: count, maxLength: count }),
        fc.integer({ min: 1, max: 4 }),
        async (order, slicePieces) => {
          const dir = await cleanup.tempDir();
          const merged = await MergedFile.create({
            path: join(dir, 'out.bin'),
            dir,
            metainfo,
            // Small slices: the read-back hashing runs over several turns.
            hashSliceBytes: slicePieces * PIECE,
          });
          for (const i of order) merged.write(i, piece(data, i));
          const result = await merged.complete();
          expect(result.sha256).toBe(createHash('sha256').update(data).digest('hex'));
          expect((await readFile(join(dir, 'out.bin'))).equals(data)).toBe(true);
          expect(await readdir(dir)).not.toContain('out.bin.part');
        },
      ),
      { numRuns: 20 },
    );
  });

  it('is written under <name>.part until complete, and refuses to complete with chunks missing', async () => {
    const { data, metainfo } = fixture(4);
    const dir = await cleanup.tempDir();
    const merged = await create(dir, metainfo);
    merged.write(2, piece(data, 2));
    expect((await stat(join(dir, 'out.bin.part'))).size).toBe(data.length);
    expect(await readdir(dir)).not.toContain('out.bin');
    const err = await rejected(merged.complete());
    expect(err).toMatchObject({ code: 'ERR_CHUNK_MISSING' });
    for (const i of [0, 1, 3]) merged.write(i, piece(data, i));
    await merged.complete();
    expect((await readFile(join(dir, 'out.bin'))).equals(data)).toBe(true);
  });

  it('a SHA-256 that does not match removes the part and leaves no file', async () => {
    const { data, metainfo } = fixture(3);
    const dir = await cleanup.tempDir();
    const merged = await MergedFile.create({
      path: join(dir, 'out.bin'),
      dir,
      metainfo,
      sha256: Buffer.alloc(32, 9),
    });
    for (let i = 0; i < 3; i++) merged.write(i, piece(data, i));
    const err = await rejected(merged.complete());
    expect(err).toMatchObject({ code: 'ERR_FILE_HASH' });
    const names = await readdir(dir);
    expect(names).not.toContain('out.bin');
    expect(names).not.toContain('out.bin.part');
  });

  it('refuses a file at the path, or at its .part, that it did not write, and touches neither', async () => {
    const { metainfo } = fixture(3);
    for (const name of ['out.bin', 'out.bin.part']) {
      const dir = await cleanup.tempDir();
      const path = join(dir, name);
      await writeFile(path, 'a file of the user\n');
      const err = await rejected(create(dir, metainfo));
      expect(err).toBeInstanceOf(ChunkError);
      expect(err).toMatchObject({ code: 'ERR_FOREIGN_FILES' });
      expect((err as Error).message).toContain(path);
      expect((err as Error).message).toContain('--force');
      expect(await readFile(path, 'utf8')).toBe('a file of the user\n');
      // With force it is replaced.
      const merged = await create(dir, metainfo, { force: true });
      expect(merged.alreadyMerged).toBe(false);
    }
  });

  it('never replaces a folder, even with force', async () => {
    const { metainfo } = fixture(3);
    const dir = await cleanup.tempDir();
    const folder = join(dir, 'out.bin');
    await mkdir(folder);
    const err = await rejected(create(dir, metainfo, { force: true }));
    expect(err).toMatchObject({ code: 'ERR_FOREIGN_FILES' });
    expect((await stat(folder)).isDirectory()).toBe(true);
  });

  it('takes back its own .part after a crash, and its own merged file after a restart', async () => {
    const { data, metainfo } = fixture(3);
    const dir = await cleanup.tempDir();
    const first = await create(dir, metainfo);
    first.write(0, piece(data, 0));
    first.close(); // a crash: the part stays, recorded as ours
    const second = await create(dir, metainfo);
    for (let i = 0; i < 3; i++) second.write(i, piece(data, i));
    const { sha256 } = await second.complete();
    const before = await stat(join(dir, 'out.bin'));

    // Restarted after the merge: the file is ours and unchanged, so nothing is written again.
    const third = await create(dir, metainfo);
    expect(third.alreadyMerged).toBe(true);
    expect(third.isComplete()).toBe(true);
    expect((await third.complete()).sha256).toBe(sha256);
    const after = await stat(join(dir, 'out.bin'));
    expect(after.mtimeMs).toBe(before.mtimeMs);
    expect(after.ino).toBe(before.ino);
    expect(await readdir(dir)).toContain(MERGE_RECORD_FILE);
  });

  it('a merged file changed since it was written is no longer taken for ours', async () => {
    const { data, metainfo } = fixture(3);
    const dir = await cleanup.tempDir();
    const merged = await create(dir, metainfo);
    for (let i = 0; i < 3; i++) merged.write(i, piece(data, i));
    await merged.complete();
    const path = join(dir, 'out.bin');
    // The user edited it (and its time moved): it is theirs now.
    await writeFile(path, 'edited\n');
    await utimes(path, new Date(), new Date(Date.now() + 5_000));
    const err = await rejected(create(dir, metainfo));
    expect(err).toMatchObject({ code: 'ERR_FOREIGN_FILES' });
    expect(await readFile(path, 'utf8')).toBe('edited\n');
  });
});
