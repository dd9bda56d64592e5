/**
 * splitFile + buildMetainfo + ChunkStore.open + merge: files come back
 * byte-identical; a restart reuses the chunk files and never touches the
 * source; a whole-file SHA-256 mismatch leaves no output behind.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Cleanup, pseudoRandomBytes, rejected } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { buildMetainfo, ChunkError, DEFAULT_CHUNK_SIZE, type Metainfo } from '../src/index.js';
import { ChunkStore, SUMMARY_FILE, splitFile } from '../src/node/index.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** Writes a source file of `length` bytes, splits it into `<dir>/owner`, builds its metainfo. */
async function splitSource(length: number, seed = 3) {
  const dir = await cleanup.tempDir();
  const source = join(dir, 'source.bin');
  const data = pseudoRandomBytes(length, seed);
  await writeFile(source, data);
  const ownerDir = join(dir, 'owner');
  const split = await splitFile({ source, dir: ownerDir });
  const { metainfo } = buildMetainfo({
    name: 'source.bin',
    length: split.length,
    pieceHashes: split.pieceHashes,
    sha256: split.sha256,
  });
  return { dir, source, data, ownerDir, split, metainfo };
}

async function openStore(dir: string, metainfo: Metainfo) {
  const opened = await ChunkStore.open({ dir, metainfo });
  cleanup.add(() => opened.store.close());
  return opened;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

const sizes: Array<[string, number]> = [
  ['0 bytes', 0],
  ['1 byte', 1],
  ['exactly 5 chunks', 5 * DEFAULT_CHUNK_SIZE],
  ['5 chunks + 1 byte', 5 * DEFAULT_CHUNK_SIZE + 1],
];

describe('split -> store -> merge', () => {
  it.each(sizes)(
    'a file of %s comes back byte-identical, via a second store',
    async (_what, length) => {
      const { dir, data, ownerDir, split, metainfo } = await splitSource(length);
      const chunks = Math.ceil(length / DEFAULT_CHUNK_SIZE);
      expect(split.length).toBe(length);
      expect(split.pieceHashes.count).toBe(chunks);
      expect(split.written).toBe(chunks);
      expect(split.sha256.equals(createHash('sha256').update(data).digest())).toBe(true);

      // The owner's store verifies every chunk file the split wrote.
      const owner = await openStore(ownerDir, metainfo);
      expect(owner.verified).toBe(chunks);
      expect(owner.discarded).toBe(0);
      expect(owner.store.isComplete()).toBe(true);

      // A peer receives every chunk through put (in reverse order, to be sure order does not matter).
      const peer = await openStore(join(dir, 'peer'), metainfo);
      for (let i = chunks - 1; i >= 0; i--) {
        expect(await peer.store.put(i, await owner.store.readVerified(i))).toBe(true);
      }
      const out = join(dir, 'peer', 'source.bin');
      const merged = await peer.store.merge(out);
      expect(merged.path).toBe(out);
      expect(merged.sha256).toBe(split.sha256.toString('hex'));
      expect((await readFile(out)).equals(data)).toBe(true);
      expect(await exists(`${out}.part`)).toBe(false);

      // summary.txt lists exactly the held IDs, one per line.
      const lines = (await readFile(join(dir, 'peer', SUMMARY_FILE), 'utf8'))
        .split('\n')
        .filter(Boolean);
      expect(lines.map(Number).sort((a, b) => a - b)).toEqual([...Array(chunks).keys()]);
    },
  );

  it('chunk files hold exactly the file bytes at each offset', async () => {
    const { data, ownerDir, metainfo } = await splitSource(2 * DEFAULT_CHUNK_SIZE + 77);
    const names = (await readdir(join(ownerDir, 'chunks'))).sort();
    expect(names).toEqual(['0.chunk', '1.chunk', '2.chunk']);
    for (let i = 0; i < 3; i++) {
      const chunk = await readFile(join(ownerDir, 'chunks', `${i}.chunk`));
      expect(
        chunk.equals(data.subarray(i * DEFAULT_CHUNK_SIZE, (i + 1) * DEFAULT_CHUNK_SIZE)),
      ).toBe(true);
      expect(chunk.length).toBe(metainfo.geometry.pieceSize(i));
    }
  });

  it('a chunk file corrupted on disk after the split is discarded by open, and merge refuses', async () => {
    const { dir, ownerDir, metainfo } = await splitSource(5 * DEFAULT_CHUNK_SIZE + 1);
    const path = join(ownerDir, 'chunks', '2.chunk');
    const bytes = await readFile(path);
    bytes[DEFAULT_CHUNK_SIZE - 1] = bytes[DEFAULT_CHUNK_SIZE - 1]! ^ 0x01;
    await writeFile(path, bytes);
    const { store, verified, discarded } = await openStore(ownerDir, metainfo);
    expect([verified, discarded]).toEqual([5, 1]);
    expect(store.has(2)).toBe(false);
    expect(await exists(path)).toBe(false);
    const summary = (await readFile(join(ownerDir, SUMMARY_FILE), 'utf8'))
      .split('\n')
      .filter(Boolean);
    expect(summary.map(Number)).toEqual([0, 1, 3, 4, 5]);
    const out = join(dir, 'merged.bin');
    expect(await rejected(store.merge(out))).toMatchObject({ code: 'ERR_CHUNK_MISSING' });
    expect(await exists(out)).toBe(false);
  });

  it('a restart: splitting again reuses every chunk file and never modifies the source', async () => {
    const { source, data, ownerDir, split } = await splitSource(5 * DEFAULT_CHUNK_SIZE + 1);
    const before = await stat(source);
    const chunkStats = await stat(join(ownerDir, 'chunks', '3.chunk'));
    const again = await splitFile({ source, dir: ownerDir });
    expect(again.written).toBe(0);
    expect(again.reused).toBe(6);
    expect([...again.pieceHashes].map((h) => h.toString('hex'))).toEqual(
      [...split.pieceHashes].map((h) => h.toString('hex')),
    );
    expect(again.sha256.equals(split.sha256)).toBe(true);
    // The reused chunk file was left alone (same inode, same mtime).
    const chunkAfter = await stat(join(ownerDir, 'chunks', '3.chunk'));
    expect(chunkAfter.ino).toBe(chunkStats.ino);
    expect(chunkAfter.mtimeMs).toBe(chunkStats.mtimeMs);
    // The source is untouched: bytes and mtime.
    const after = await stat(source);
    expect(after.mtimeMs).toBe(before.mtimeMs);
    expect(after.size).toBe(before.size);
    expect((await readFile(source)).equals(data)).toBe(true);
  });

  it('a restart after a chunk file was corrupted rewrites only that one', async () => {
    const { source, ownerDir } = await splitSource(3 * DEFAULT_CHUNK_SIZE);
    const path = join(ownerDir, 'chunks', '1.chunk');
    const bytes = await readFile(path);
    bytes[10] = bytes[10]! ^ 1;
    await writeFile(path, bytes);
    const again = await splitFile({ source, dir: ownerDir });
    expect(again.written).toBe(1);
    expect(again.reused).toBe(2);
  });

  it('splitting a shorter version of the file removes chunk files past its end', async () => {
    const { dir, ownerDir } = await splitSource(4 * DEFAULT_CHUNK_SIZE);
    const shorter = join(dir, 'shorter.bin');
    await writeFile(shorter, pseudoRandomBytes(DEFAULT_CHUNK_SIZE + 5, 9));
    const result = await splitFile({ source: shorter, dir: ownerDir });
    expect(result.pieceHashes.count).toBe(2);
    expect((await readdir(join(ownerDir, 'chunks'))).sort()).toEqual(['0.chunk', '1.chunk']);
  });

  it('a metainfo whose sha256 does not match: merge throws ERR_FILE_HASH, no output, no .part', async () => {
    const { dir, ownerDir, split } = await splitSource(2 * DEFAULT_CHUNK_SIZE + 9);
    const { metainfo } = buildMetainfo({
      name: 'source.bin',
      length: split.length,
      pieceHashes: split.pieceHashes,
      sha256: createHash('sha256').update('some other file').digest(),
    });
    const { store } = await openStore(ownerDir, metainfo);
    expect(store.isComplete()).toBe(true);
    const out = join(dir, 'merged.bin');
    const err = await rejected(store.merge(out));
    expect(err).toBeInstanceOf(ChunkError);
    expect(err).toMatchObject({ code: 'ERR_FILE_HASH' });
    expect(await exists(out)).toBe(false);
    expect(await exists(`${out}.part`)).toBe(false);
  });
});
