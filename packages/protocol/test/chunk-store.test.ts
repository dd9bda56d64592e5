/**
 * ChunkStore: chunk files are the truth and summary.txt their record. A chunk
 * that fails its SHA-1 is never stored, served or merged.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Cleanup, pseudoRandomBytes, rejected } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { buildMetainfo, ChunkError, DEFAULT_CHUNK_SIZE, type Metainfo } from '../src/index.js';
import {
  CHUNK_DIR,
  ChunkStore,
  DEFAULT_CACHE_BYTES,
  SUMMARY_FILE,
  sha1,
  splitFile,
  VERIFIED_TRUST_MS,
} from '../src/node/index.js';
import { storeWith } from './sockets.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** 4 chunks: 3 full and one of 500 bytes. */
const DATA = pseudoRandomBytes(3 * DEFAULT_CHUNK_SIZE + 500, 5);
const chunk = (i: number) => DATA.subarray(i * DEFAULT_CHUNK_SIZE, (i + 1) * DEFAULT_CHUNK_SIZE);
const { metainfo: META } = buildMetainfo({
  name: 'data.bin',
  length: DATA.length,
  pieceHashes: [0, 1, 2, 3].map((i) => sha1(chunk(i))),
});

async function open(dir: string, metainfo: Metainfo = META) {
  const opened = await ChunkStore.open({ dir, metainfo });
  cleanup.add(() => opened.store.close());
  return opened;
}

async function summaryIds(dir: string): Promise<number[]> {
  const text = await readFile(join(dir, SUMMARY_FILE), 'utf8');
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map(Number)
    .sort((a, b) => a - b);
}

async function chunkFiles(dir: string): Promise<string[]> {
  return (await readdir(join(dir, CHUNK_DIR))).sort();
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Flips one byte of a file on disk. */
async function corrupt(path: string, at = 0): Promise<void> {
  const bytes = await readFile(path);
  bytes[at] = bytes[at]! ^ 0xff;
  await writeFile(path, bytes);
}

describe('ChunkStore', () => {
  it('starts empty with an empty summary', async () => {
    const dir = await cleanup.tempDir();
    const { store, verified, discarded } = await open(dir);
    expect([verified, discarded]).toEqual([0, 0]);
    expect(store.pieceCount).toBe(4);
    expect(store.held.count()).toBe(0);
    expect(await summaryIds(dir)).toEqual([]);
  });

  it('put stores a verified chunk as <dir>/chunks/<id>.chunk and appends its ID to the summary', async () => {
    const dir = await cleanup.tempDir();
    const { store } = await open(dir);
    expect(await store.put(2, chunk(2))).toBe(true);
    expect(await store.put(3, chunk(3))).toBe(true);
    expect(await store.put(2, chunk(2))).toBe(false);
    expect(store.has(2) && store.has(3)).toBe(true);
    expect(await chunkFiles(dir)).toEqual(['2.chunk', '3.chunk']);
    expect((await readFile(store.chunkPath(3))).equals(chunk(3))).toBe(true);
    expect(await summaryIds(dir)).toEqual([2, 3]);
  });

  it('put with wrong data throws ERR_CHUNK_HASH and stores nothing', async () => {
    const dir = await cleanup.tempDir();
    const { store } = await open(dir);
    const wrong = Buffer.from(chunk(1));
    wrong[100] = wrong[100]! ^ 1;
    for (const data of [wrong, chunk(1).subarray(1), chunk(0), Buffer.alloc(0)]) {
      const err = await rejected(store.put(1, data));
      expect(err).toBeInstanceOf(ChunkError);
      expect(err).toMatchObject({ code: 'ERR_CHUNK_HASH' });
    }
    // An index past the end is refused the same way.
    expect(await rejected(store.put(4, chunk(3)))).toMatchObject({ code: 'ERR_CHUNK_HASH' });
    expect(store.has(1)).toBe(false);
    expect(await chunkFiles(dir)).toEqual([]);
    expect(await summaryIds(dir)).toEqual([]);
  });

  it('concurrent puts each record their ID once', async () => {
    const dir = await cleanup.tempDir();
    const { store } = await open(dir);
    const results = await Promise.all([0, 1, 2, 3, 0, 1].map((i) => store.put(i, chunk(i))));
    expect(results.filter(Boolean)).toHaveLength(4);
    expect(store.isComplete()).toBe(true);
    expect(await summaryIds(dir)).toEqual([0, 1, 2, 3]);
  });

  it('a put resolves only once its ID is in the summary, when puts share one write', async () => {
    const dir = await cleanup.tempDir();
    const { store } = await open(dir);
    const seen = await Promise.all(
      [3, 1, 0, 2].map((i) => store.put(i, chunk(i)).then(async () => summaryIds(dir))),
    );
    for (const [k, id] of [3, 1, 0, 2].entries()) expect(seen[k], `after put(${id})`).toContain(id);
    expect(await summaryIds(dir)).toEqual([0, 1, 2, 3]);
  });

  it('reopening rebuilds the held set from the chunk files and rewrites the summary', async () => {
    const dir = await cleanup.tempDir();
    const first = await open(dir);
    await first.store.put(0, chunk(0));
    await first.store.put(3, chunk(3));
    await first.store.close();
    // A stale summary is not trusted: the chunk files are the truth.
    await writeFile(join(dir, SUMMARY_FILE), '0\n1\n2\n3\n');
    const second = await open(dir);
    expect([second.verified, second.discarded]).toEqual([2, 0]);
    expect(second.store.held.heldIds()).toEqual([0, 3]);
    expect(await summaryIds(dir)).toEqual([0, 3]);
    // Appends after a reopen go into the rewritten summary.
    await second.store.put(1, chunk(1));
    expect(await summaryIds(dir)).toEqual([0, 1, 3]);
  });

  it('open discards a chunk file corrupted on disk, and anything else that is not a verified chunk', async () => {
    const dir = await cleanup.tempDir();
    const first = await open(dir);
    for (const i of [0, 1, 2, 3]) await first.store.put(i, chunk(i));
    await first.store.close();
    await corrupt(join(dir, CHUNK_DIR, '1.chunk'), 5000);
    await writeFile(join(dir, CHUNK_DIR, '2.chunk'), chunk(2).subarray(0, 100)); // truncated
    await writeFile(join(dir, CHUNK_DIR, '9.chunk'), chunk(0)); // past the end
    await writeFile(join(dir, CHUNK_DIR, '0.chunk.1a2b3c4d.tmp'), chunk(0)); // interrupted write
    const second = await open(dir);
    expect(second.verified).toBe(2);
    expect(second.discarded).toBe(4);
    expect(second.store.held.heldIds()).toEqual([0, 3]);
    expect(second.store.has(1)).toBe(false);
    expect(await chunkFiles(dir)).toEqual(['0.chunk', '3.chunk']);
    expect(await summaryIds(dir)).toEqual([0, 3]);
  });

  it('readVerified returns a held chunk and refuses one not held with ERR_CHUNK_MISSING', async () => {
    const dir = await cleanup.tempDir();
    const { store } = await open(dir);
    await store.put(3, chunk(3));
    expect((await store.readVerified(3)).equals(chunk(3))).toBe(true);
    expect(await rejected(store.readVerified(0))).toMatchObject({ code: 'ERR_CHUNK_MISSING' });
  });

  it('readVerified drops a chunk whose file was corrupted after it was stored', async () => {
    const dir = await cleanup.tempDir();
    const { store } = await open(dir, META);
    for (const i of [0, 1]) await store.put(i, chunk(i));
    // A fresh store, so nothing is cached from the put.
    await store.close();
    const { store: reopened } = await open(dir);
    await corrupt(reopened.chunkPath(1), 77);
    const err = await rejected(reopened.readVerified(1));
    expect(err).toBeInstanceOf(ChunkError);
    expect(err).toMatchObject({ code: 'ERR_CHUNK_HASH' });
    expect(reopened.has(1)).toBe(false);
    expect(await exists(reopened.chunkPath(1))).toBe(false);
    expect(await summaryIds(dir)).toEqual([0]);
  });

  it('put with cache keeps its own verified copy for serving; without it nothing is cached', async () => {
    const dir = await cleanup.tempDir();
    const { store } = await open(dir);
    const received = Buffer.from(chunk(1));
    expect(await store.put(1, received, { cache: true })).toBe(true);
    expect(await store.put(2, chunk(2))).toBe(true);
    // The caller reuses its buffer, and the file rots: the cached copy is neither.
    received.fill(0);
    await corrupt(store.chunkPath(1), 5);
    expect(store.cached(1)?.equals(chunk(1))).toBe(true);
    expect((await store.readVerified(1)).equals(chunk(1))).toBe(true);
    expect(store.has(1)).toBe(true);
    expect(store.cached(2)).toBeUndefined();
  });

  it('readVerified treats a chunk file deleted behind its back as corrupt and drops it', async () => {
    const dir = await cleanup.tempDir();
    const { store } = await open(dir);
    await store.put(2, chunk(2));
    await store.close();
    const { store: reopened } = await open(dir);
    await rm(reopened.chunkPath(2));
    expect(await rejected(reopened.readVerified(2))).toMatchObject({ code: 'ERR_CHUNK_HASH' });
    expect(reopened.has(2)).toBe(false);
  });

  it('drop forgets a chunk, deletes its file and rewrites the summary', async () => {
    const dir = await cleanup.tempDir();
    const { store } = await open(dir);
    for (const i of [0, 1, 2]) await store.put(i, chunk(i));
    await store.drop(1);
    await store.drop(1);
    expect(store.held.heldIds()).toEqual([0, 2]);
    expect(await chunkFiles(dir)).toEqual(['0.chunk', '2.chunk']);
    expect(await summaryIds(dir)).toEqual([0, 2]);
    // A later put appends to the rewritten file.
    await store.put(3, chunk(3));
    expect(await summaryIds(dir)).toEqual([0, 2, 3]);
  });

  it('merge with a chunk missing throws ERR_CHUNK_MISSING and writes nothing', async () => {
    const dir = await cleanup.tempDir();
    const { store } = await open(dir);
    for (const i of [0, 1, 3]) await store.put(i, chunk(i));
    const out = join(dir, 'data.bin');
    const err = await rejected(store.merge(out));
    expect(err).toBeInstanceOf(ChunkError);
    expect(err).toMatchObject({ code: 'ERR_CHUNK_MISSING' });
    expect(await exists(out)).toBe(false);
    expect(await exists(`${out}.part`)).toBe(false);
  });

  it('merge with a chunk corrupted after open throws ERR_CHUNK_HASH, drops it, and never produces the file', async () => {
    const dir = await cleanup.tempDir();
    const { store } = await open(dir);
    for (const i of [0, 1, 2, 3]) await store.put(i, chunk(i));
    await corrupt(store.chunkPath(2), 1);
    const out = join(dir, 'data.bin');
    const err = await rejected(store.merge(out));
    expect(err).toBeInstanceOf(ChunkError);
    expect(err).toMatchObject({ code: 'ERR_CHUNK_HASH' });
    expect(await exists(out)).toBe(false);
    expect(await exists(`${out}.part`)).toBe(false);
    expect(store.has(2)).toBe(false);
    expect(await summaryIds(dir)).toEqual([0, 1, 3]);
    // Once the chunk is fetched again the merge succeeds.
    await store.put(2, chunk(2));
    await store.merge(out);
    expect((await readFile(out)).equals(DATA)).toBe(true);
  });

  it('merge with a chunk file deleted after open throws ERR_CHUNK_MISSING and drops it', async () => {
    const dir = await cleanup.tempDir();
    const { store } = await open(dir);
    for (const i of [0, 1, 2, 3]) await store.put(i, chunk(i));
    await rm(store.chunkPath(3));
    const out = join(dir, 'data.bin');
    const err = await rejected(store.merge(out));
    expect(err).toBeInstanceOf(ChunkError);
    expect(err).toMatchObject({ code: 'ERR_CHUNK_MISSING' });
    expect(store.has(3)).toBe(false);
    expect(await exists(out)).toBe(false);
    expect(await exists(`${out}.part`)).toBe(false);
  });

  it('matches checks the index, the length and the SHA-1', async () => {
    const { store } = await open(await cleanup.tempDir());
    expect(await store.matches(3, chunk(3))).toBe(true);
    expect(await store.matches(2, chunk(3))).toBe(false);
    expect(await store.matches(3, Buffer.concat([chunk(3), Buffer.alloc(1)]))).toBe(false);
    expect(await store.matches(4, chunk(3))).toBe(false);
    expect(await store.matches(-1, chunk(0))).toBe(false);
  });
});

/*
 * Pins a bug: ChunkStore.merge wrote through fs.createWriteStream and only
 * listened for errors while waiting for 'drain'. An error opening or writing
 * the `.part` file (no such directory, disk full) fired while merge awaited a
 * chunk read, with no listener: an uncaught exception that took the whole
 * process down, and the merge promise never settled.
 */
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
    // A folder that cannot be made: a regular file stands where it would go.
    const err = await rejected(store.merge(join(dir, 'source.bin', 'sub', 'out.bin')));
    expect(err).toMatchObject({ code: 'ENOTDIR' });
    // The store is unharmed: every chunk still held, and a merge to a good path works.
    expect(store.isComplete()).toBe(true);
    await store.merge(join(dir, 'out.bin'));
    expect((await readdir(dir)).sort()).toEqual([
      'chunks',
      'merged.json',
      'out.bin',
      'source.bin',
      'summary.txt',
    ]);
  });
});

// Regression: the store accepted writes after close(), and close() did not
// wait for writes under way.
describe('ChunkStore after close', () => {
  it('waits for a put under way, then refuses further puts with ERR_STORE_CLOSED', async () => {
    const data = Buffer.alloc(250_000, 9);
    const { dir, metainfo } = await storeWith(cleanup, data);
    const { store } = await ChunkStore.open({ dir: join(dir, 'peer'), metainfo });
    const chunk0 = data.subarray(0, metainfo.pieceLength);
    expect(sha1(chunk0).equals(metainfo.pieceHashes.get(0)!)).toBe(true);
    const underway = store.put(0, chunk0);
    await store.close();
    expect(await underway).toBe(true);
    expect(store.has(0)).toBe(true);
    const err = await rejected(
      store.put(1, data.subarray(metainfo.pieceLength, 2 * metainfo.pieceLength)),
    );
    expect(err).toMatchObject({ code: 'ERR_STORE_CLOSED' });
    expect(store.has(1)).toBe(false);
  });
});

describe('ChunkStore.open in a --dir that holds foreign files', () => {
  // It used to delete, recursively, every entry under chunks/ that was not a chunk file.
  it('refuses a user file or folder under chunks/, naming it, and deletes nothing', async () => {
    const dir = await cleanup.tempDir();
    await open(dir).then(({ store }) => store.put(1, chunk(1)));
    const chunkDir = join(dir, CHUNK_DIR);
    await writeFile(join(chunkDir, 'notes.txt'), 'mine');
    await mkdir(join(chunkDir, 'photos'), { recursive: true });
    await writeFile(join(chunkDir, 'photos', 'a.jpg'), 'also mine');
    const err = await rejected(ChunkStore.open({ dir, metainfo: META }));
    expect(err).toBeInstanceOf(ChunkError);
    expect((err as ChunkError).code).toBe('ERR_FOREIGN_FILES');
    expect((err as Error).message).toContain('"notes.txt"');
    expect((err as Error).message).toContain('"photos"');
    expect(await readFile(join(chunkDir, 'notes.txt'), 'utf8')).toBe('mine');
    expect(await readFile(join(chunkDir, 'photos', 'a.jpg'), 'utf8')).toBe('also mine');
    expect(await exists(join(chunkDir, '1.chunk'))).toBe(true);
  });

  it('refuses a folder named like a chunk file instead of deleting it', async () => {
    const dir = await cleanup.tempDir();
    await mkdir(join(dir, CHUNK_DIR, '2.chunk'), { recursive: true });
    await writeFile(join(dir, CHUNK_DIR, '2.chunk', 'keep'), 'x');
    const err = await rejected(ChunkStore.open({ dir, metainfo: META }));
    expect((err as ChunkError).code).toBe('ERR_FOREIGN_FILES');
    expect(await exists(join(dir, CHUNK_DIR, '2.chunk', 'keep'))).toBe(true);
  });

  it('removes only its own leftovers: temp files and chunk files that do not verify', async () => {
    const dir = await cleanup.tempDir();
    const chunkDir = join(dir, CHUNK_DIR);
    await mkdir(chunkDir, { recursive: true });
    await writeFile(join(chunkDir, '0.chunk'), chunk(0));
    await writeFile(join(chunkDir, '1.chunk'), 'rotten');
    await writeFile(join(chunkDir, '2.chunk.0a1b2c3d.tmp'), 'half-written');
    const { verified, discarded } = await open(dir);
    expect(verified).toBe(1);
    expect(discarded).toBe(2);
    expect(await chunkFiles(dir)).toEqual(['0.chunk']);
  });
});

describe('ChunkStore memory is budgeted in bytes', () => {
  // The cache held 32 chunks, whatever their size: with 64 MiB chunks an
  // owner kept 1.08 GiB after a transfer.
  const BIG = 4 * 1024 * 1024;
  const bigData = pseudoRandomBytes(6 * BIG, 9);
  const bigChunk = (i: number) => bigData.subarray(i * BIG, (i + 1) * BIG);
  const { metainfo: BIG_META } = buildMetainfo({
    name: 'big.bin',
    length: bigData.length,
    pieceLength: BIG,
    pieceHashes: [0, 1, 2, 3, 4, 5].map((i) => sha1(bigChunk(i))),
  });

  it('the serving cache holds at most DEFAULT_CACHE_BYTES of 4 MiB chunks', async () => {
    const dir = await cleanup.tempDir();
    const { store } = await open(dir, BIG_META);
    for (let i = 0; i < 6; i++) await store.put(i, bigChunk(i));
    for (let i = 0; i < 6; i++)
      expect((await store.readVerified(i)).equals(bigChunk(i))).toBe(true);
    expect(store.cachedBytes).toBeGreaterThanOrEqual(BIG);
    expect(store.cachedBytes).toBeLessThanOrEqual(DEFAULT_CACHE_BYTES);
    // The most recent chunk is served from memory.
    expect(store.cached(5)?.equals(bigChunk(5))).toBe(true);
  });
});

describe('ChunkStore.merge with a pinned SHA-256', () => {
  it('refuses a file whose SHA-256 is not the pinned one and leaves nothing behind', async () => {
    const dir = await cleanup.tempDir();
    const { store } = await open(dir);
    for (let i = 0; i < 4; i++) await store.put(i, chunk(i));
    const out = join(dir, 'merged.bin');
    const err = await rejected(store.merge(out, { sha256: Buffer.alloc(32, 7) }));
    expect((err as ChunkError).code).toBe('ERR_FILE_HASH');
    expect(await exists(out)).toBe(false);
    expect(await exists(`${out}.part`)).toBe(false);
    const sha256 = createHash('sha256').update(DATA).digest();
    expect((await store.merge(out, { sha256 })).sha256).toBe(sha256.toString('hex'));
  });
});

describe('ChunkStore serving reads', () => {
  it('hash a chunk file again only once it changed or VERIFIED_TRUST_MS has passed', async () => {
    const dir = await cleanup.tempDir();
    let now = 0;
    const { store } = await ChunkStore.open({ dir, metainfo: META, cacheBytes: 1, now: () => now });
    cleanup.add(() => store.close());
    for (let i = 0; i < 4; i++) await store.put(i, chunk(i));
    const hashed = vi.spyOn(store, 'matches');
    // The cache holds one chunk: reading 1 and 2 in turn reads their files each time.
    const read = async () => {
      expect((await store.readVerified(1)).equals(chunk(1))).toBe(true);
      expect((await store.readVerified(2)).equals(chunk(2))).toBe(true);
    };
    // Stored verified: served again and again without hashing while the files are unchanged.
    for (let k = 0; k < 3; k++) await read();
    expect(hashed).not.toHaveBeenCalled();
    // Past the trust, each is hashed once more, then trusted again.
    now += VERIFIED_TRUST_MS;
    await read();
    await read();
    expect(hashed).toHaveBeenCalledTimes(2);
    // Any write to the file moves its ctime: the next read hashes it and finds the damage.
    await corrupt(store.chunkPath(1), 10);
    const err = await rejected(store.readVerified(1));
    expect(err).toMatchObject({ code: 'ERR_CHUNK_HASH' });
    expect(hashed).toHaveBeenCalledTimes(3);
  });
});
