import { createHash, randomBytes } from 'node:crypto';
import * as fsCallback from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { Bitfield } from '../bitfield.js';
import { ChunkError } from '../errors.js';
import { escapeUnsafe } from '../log.js';
import { fitFileName, type Metainfo } from '../metainfo.js';
import { BufferPool } from './buffer-pool.js';
import { chunksWithin, DEFAULT_CACHE_BYTES, MERGE_READ_AHEAD_BYTES } from './memory.js';

// The per-chunk hot path uses the callback API: fs/promises wraps every file
// in a FileHandle, which costs measurably more event-loop time per chunk.
const writeFileFast = promisify(fsCallback.writeFile);
const readFileFast = promisify(fsCallback.readFile);
const renameFast = promisify(fsCallback.rename);
const openFast = promisify(fsCallback.open);
const readFast = promisify(fsCallback.read);
const closeFast = promisify(fsCallback.close);

/** Reads up to `buffer.length` bytes of the file at `path` into `buffer`; returns the part filled. */
async function readInto(path: string, buffer: Buffer): Promise<Buffer> {
  const fd = await openFast(path, 'r');
  try {
    let filled = 0;
    while (filled < buffer.length) {
      const { bytesRead: n } = await readFast(fd, buffer, filled, buffer.length - filled, filled);
      if (n === 0) break;
      filled += n;
    }
    return buffer.subarray(0, filled);
  } finally {
    await closeFast(fd);
  }
}

export const SUMMARY_FILE = 'summary.txt';
export const CHUNK_DIR = 'chunks';

export interface ChunkStoreOptions {
  /** The process's working directory; chunks go in `<dir>/chunks`. */
  readonly dir: string;
  readonly metainfo: Metainfo;
  /** Skip re-hashing chunk files on open because the caller just wrote and verified them all. */
  readonly trustExisting?: boolean;
  /** Verified chunks kept in memory for serving, in bytes (default DEFAULT_CACHE_BYTES; one chunk at least). */
  readonly cacheBytes?: number;
  /** Chunk files read ahead while merging, in bytes (default MERGE_READ_AHEAD_BYTES; one chunk at least). */
  readonly mergeReadAheadBytes?: number;
}

export interface PutOptions {
  /** Keep a copy in the serving cache (see `ChunkStore.put`); default false. */
  readonly cache?: boolean;
}

export interface OpenResult {
  readonly store: ChunkStore;
  /** Chunk files that verified. */
  readonly verified: number;
  /** Chunk files (and stray temp files) deleted because they did not verify. */
  readonly discarded: number;
}

export function chunkFileName(index: number): string {
  return `${index}.chunk`;
}

/** A chunk file's name: `<id>.chunk`. */
const CHUNK_FILE = /^(\d+)\.chunk$/;
/** A chunk being written: `<id>.chunk.<8 hex>.tmp` (see put and splitFile). */
const CHUNK_TEMP = /^\d+\.chunk\.[0-9a-f]{8}\.tmp$/;

/** A fresh temp name for chunk file `path`, matching CHUNK_TEMP. */
export function chunkTempPath(path: string): string {
  return `${path}.${randomBytes(4).toString('hex')}.tmp`;
}

/** What `<dir>/chunks/` holds, by whose it is. */
export interface ChunkDirListing {
  /** `<id>.chunk` regular files, by name. */
  readonly chunks: ReadonlyMap<string, number>;
  /** Our temp files left by a crash: safe to delete. */
  readonly temps: readonly string[];
}

/**
 * Lists `chunkDir` (none yet is empty), refusing anything swarmdrop did not write:
 * a user's file or folder there (or a folder named like a chunk) throws a
 * ChunkError ERR_FOREIGN_FILES naming it, before anything is deleted. Only
 * regular files named like our chunk and temp files count as ours.
 */
export async function listChunkDir(chunkDir: string): Promise<ChunkDirListing> {
  const chunks = new Map<string, number>();
  const temps: string[] = [];
  const foreign: string[] = [];
  const entries = await readdir(chunkDir, { withFileTypes: true }).catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  });
  for (const entry of entries) {
    const match = CHUNK_FILE.exec(entry.name);
    if (entry.isFile() && match) chunks.set(entry.name, Number(match[1]));
    else if (entry.isFile() && CHUNK_TEMP.test(entry.name)) temps.push(entry.name);
    else foreign.push(entry.name);
  }
  if (foreign.length > 0) {
    foreign.sort();
    const shown = foreign
      .slice(0, 3)
      .map((name) => escapeName(name))
      .join(', ');
    throw new ChunkError(
      'ERR_FOREIGN_FILES',
      `${chunkDir} holds ${foreign.length} entr${foreign.length === 1 ? 'y' : 'ies'} swarmdrop did not write (${shown}${foreign.length > 3 ? ', ...' : ''}); ` +
        'swarmdrop deletes what it does not recognise there, so it refuses to start: move them or choose another --dir',
    );
  }
  return { chunks, temps };
}

export function sha1(data: Uint8Array): Buffer {
  return createHash('sha1').update(data).digest();
}

/**
 * The chunks a process holds, one verified file each (`<dir>/chunks/<id>.chunk`),
 * and `summary.txt`, their record (one ID per line). Chunk files are the
 * truth: opening rebuilds the set from the files that verify and rewrites
 * the summary; afterwards each new chunk appends one line, never a rewrite.
 */
export class ChunkStore {
  readonly dir: string;
  readonly chunkDir: string;
  readonly metainfo: Metainfo;
  readonly held: Bitfield;
  private summary: FileHandle | undefined;
  private summaryWrites: Promise<void> = Promise.resolve();
  /** Summary lines waiting for the next append, and that append (see appendSummary). */
  private summaryLines: string[] = [];
  private summaryFlush: Promise<void> | undefined;
  private readonly cache = new Map<number, Buffer>();
  private readonly loading = new Map<number, Promise<Buffer>>();
  private readonly cacheBytes: number;
  private readonly mergeReadAheadBytes: number;
  private cacheUsed = 0;
  /** Most bytes of chunk reads in flight at once during the last merge (for the memory tests). */
  mergePeakReadBytes = 0;
  private closed = false;
  /** Puts and drops under way, so close() can wait for them. */
  private readonly pending = new Set<Promise<unknown>>();

  private constructor(options: ChunkStoreOptions) {
    this.dir = options.dir;
    this.chunkDir = join(options.dir, CHUNK_DIR);
    this.metainfo = options.metainfo;
    this.held = new Bitfield(options.metainfo.geometry.pieceCount);
    this.cacheBytes = options.cacheBytes ?? DEFAULT_CACHE_BYTES;
    this.mergeReadAheadBytes = options.mergeReadAheadBytes ?? MERGE_READ_AHEAD_BYTES;
  }

  static async open(options: ChunkStoreOptions): Promise<OpenResult> {
    const store = new ChunkStore(options);
    // Foreign entries are refused before anything is deleted; only our own
    // chunk files that fail to verify and our temp files are removed.
    await mkdir(store.chunkDir, { recursive: true });
    const listing = await listChunkDir(store.chunkDir);
    let verified = 0;
    let discarded = 0;
    for (const name of listing.temps) {
      await rm(join(store.chunkDir, name), { force: true });
      discarded++;
    }
    const work = [...listing.chunks].map(([name, index]) => async () => {
      const ok =
        index < store.held.size &&
        (options.trustExisting === true || (await store.verifyFile(index)));
      if (ok) {
        store.held.set(index);
        verified++;
      } else {
        await rm(join(store.chunkDir, name), { force: true });
        discarded++;
      }
    });
    await runLimited(work, 8);
    await store.rewriteSummary();
    store.summary = await open(join(store.dir, SUMMARY_FILE), 'a');
    return { store, verified, discarded };
  }

  get pieceCount(): number {
    return this.held.size;
  }

  has(index: number): boolean {
    return this.held.has(index);
  }

  isComplete(): boolean {
    return this.held.isComplete();
  }

  chunkPath(index: number): string {
    return join(this.chunkDir, chunkFileName(index));
  }

  /** True when `data` is exactly chunk `index` of the metainfo (hashed off the event loop). */
  async matches(index: number, data: Uint8Array): Promise<boolean> {
    if (index >= this.pieceCount || data.length !== this.metainfo.geometry.pieceSize(index))
      return false;
    // Synchronous on purpose: SHA-1 of 100 KiB takes ~60 µs here, and WebCrypto's
    // thread-pool jobs cost ~1.7x the CPU in all, which a 2-core machine feels.
    return this.metainfo.pieceHashes.matches(index, sha1(data));
  }

  /**
   * Stores chunk `index` after checking its SHA-1: temp file, then rename,
   * then one summary line. Returns false when it was already held. Throws a
   * ChunkError (ERR_CHUNK_HASH) for data that does not match, storing nothing.
   *
   * `cache: true` also keeps a copy in the serving cache (within its byte
   * budget), for a caller that will serve what it just received: a swarm
   * peer uploads about as much as it downloads, mostly chunks it got
   * moments ago, and serving them from disk costs a read and a second SHA-1
   * each. The copy is ours: the caller may reuse `data` once this resolves.
   */
  put(index: number, data: Uint8Array, options: PutOptions = {}): Promise<boolean> {
    return this.track(() => this.putChecked(index, data, options.cache === true));
  }

  private async putChecked(index: number, data: Uint8Array, cache: boolean): Promise<boolean> {
    if (this.has(index)) return false;
    if (!(await this.matches(index, data))) {
      throw new ChunkError('ERR_CHUNK_HASH', `chunk ${index} does not match its SHA-1`);
    }
    const path = this.chunkPath(index);
    const temp = chunkTempPath(path);
    try {
      await writeFileFast(temp, data);
      await renameFast(temp, path);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    if (!this.held.set(index)) return false;
    // Verified above, so it may be served without a re-check until it leaves the cache.
    if (cache) this.cacheInsert(index, Buffer.from(data));
    await this.appendSummary(index);
    return true;
  }

  /**
   * Reads chunk `index` and checks it again, because a file can rot or be
   * tampered with after it was stored. A chunk that no longer verifies is
   * dropped (file deleted, ID removed) and a ChunkError ERR_CHUNK_HASH thrown.
   */
  async readVerified(index: number): Promise<Buffer> {
    const cached = this.cached(index);
    if (cached) return cached;
    const pending = this.loading.get(index);
    if (pending) return pending;
    const load = (async () => {
      if (!this.has(index)) throw new ChunkError('ERR_CHUNK_MISSING', `chunk ${index} is not held`);
      let data: Buffer;
      try {
        data = await readFileFast(this.chunkPath(index));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        data = Buffer.alloc(0);
      }
      if (!(await this.matches(index, data))) {
        await this.drop(index);
        throw new ChunkError(
          'ERR_CHUNK_HASH',
          `stored chunk ${index} no longer matches its SHA-1; dropped it`,
        );
      }
      this.cacheInsert(index, data);
      return data;
    })();
    this.loading.set(index, load);
    try {
      return await load;
    } finally {
      this.loading.delete(index);
    }
  }

  /** Bytes of chunks held in the serving cache. */
  get cachedBytes(): number {
    return this.cacheUsed;
  }

  /** Adds a verified chunk, dropping the least recently used past the byte budget (the newest always stays). */
  private cacheInsert(index: number, data: Buffer): void {
    this.cacheRemove(index);
    this.cache.set(index, data);
    this.cacheUsed += data.length;
    while (this.cacheUsed > this.cacheBytes && this.cache.size > 1) {
      this.cacheRemove(this.cache.keys().next().value!);
    }
  }

  private cacheRemove(index: number): void {
    const old = this.cache.get(index);
    if (old === undefined) return;
    this.cache.delete(index);
    this.cacheUsed -= old.length;
  }

  /** Chunk `index` if it is in the serving cache (already verified), without I/O. */
  cached(index: number): Buffer | undefined {
    const hit = this.cache.get(index);
    if (hit) {
      this.cache.delete(index);
      this.cache.set(index, hit);
    }
    return hit;
  }

  /** Forgets chunk `index` and deletes its file (it failed verification). */
  drop(index: number): Promise<void> {
    return this.track(() => this.dropNow(index));
  }

  private async dropNow(index: number): Promise<void> {
    this.cacheRemove(index);
    if (!this.held.clear(index)) return;
    await rm(this.chunkPath(index), { force: true });
    await this.enqueueSummary(() => this.rewriteSummary());
  }

  /**
   * Merges every chunk, in order, into `outPath` (written as `.part`, then
   * renamed), re-checking each chunk and, when the metainfo has one, the
   * whole file's SHA-256. Streams: one chunk in memory at a time.
   */
  async merge(
    outPath: string,
    options: {
      /** A SHA-256 the user pinned (`--sha256`), checked as well as the metainfo's. */
      readonly sha256?: Uint8Array | undefined;
    } = {},
  ): Promise<{ path: string; sha256: string }> {
    const missing = this.held.missing();
    if (missing.length > 0) {
      throw new ChunkError(
        'ERR_CHUNK_MISSING',
        `cannot merge: ${missing.length} chunks missing (first ${missing[0]})`,
      );
    }
    // `<name>.part`, shortened when a long (legal) name would not fit with the suffix.
    const part = join(dirname(outPath), fitFileName(basename(outPath), '.part'));
    const hash = createHash('sha256');
    // A FileHandle, not a write stream: a stream's 'error' (no such directory,
    // disk full) fires while we await a chunk read, with no listener, and
    // takes the whole process down.
    const out = await open(part, 'w');
    try {
      try {
        let position = 0;
        // Reads run a few chunks ahead of the writes (one file at a time is
        // latency-bound), as many as fit in the read-ahead budget.
        const pieceLength = this.metainfo.pieceLength;
        const ahead = chunksWithin(this.mergeReadAheadBytes, pieceLength);
        const reads = new Map<number, Promise<Buffer>>();
        const buffers = new BufferPool(pieceLength, (ahead + 1) * pieceLength);
        this.mergePeakReadBytes = 0;
        for (let i = 0; i < this.pieceCount; i++) {
          for (let j = i; j < Math.min(i + ahead, this.pieceCount); j++) {
            if (reads.has(j)) continue;
            const read = readInto(
              this.chunkPath(j),
              buffers.take(this.metainfo.geometry.pieceSize(j)),
            );
            read.catch(() => {}); // an error is reported when the merge reaches that chunk
            reads.set(j, read);
          }
          this.mergePeakReadBytes = Math.max(this.mergePeakReadBytes, reads.size * pieceLength);
          const data = await this.readForMerge(i, reads.get(i)!);
          reads.delete(i);
          hash.update(data);
          for (let done = 0; done < data.length; ) {
            const { bytesWritten } = await out.write(data, done, data.length - done, position);
            done += bytesWritten;
            position += bytesWritten;
          }
          buffers.give(data); // written: its memory serves a later read
        }
      } finally {
        await out.close();
      }
    } catch (err) {
      await rm(part, { force: true });
      throw err;
    }
    const digest = hash.digest();
    if (this.metainfo.sha256 && !digest.equals(this.metainfo.sha256)) {
      await rm(part, { force: true });
      throw new ChunkError(
        'ERR_FILE_HASH',
        `merged file SHA-256 ${digest.toString('hex')} does not match the metainfo`,
      );
    }
    if (options.sha256 && !digest.equals(options.sha256)) {
      await rm(part, { force: true });
      throw new ChunkError(
        'ERR_FILE_HASH',
        `merged file SHA-256 ${digest.toString('hex')} is not the pinned --sha256 ${Buffer.from(options.sha256).toString('hex')}; removed it`,
      );
    }
    await rename(part, outPath);
    return { path: outPath, sha256: digest.toString('hex') };
  }

  /** Chunk `i` for merge, checked again; a file gone or changed since open is dropped. */
  private async readForMerge(i: number, read: Promise<Buffer>): Promise<Buffer> {
    let data: Buffer;
    try {
      data = await read;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      await this.drop(i);
      throw new ChunkError(
        'ERR_CHUNK_MISSING',
        `chunk ${i} file is gone; dropped it, merge stopped`,
      );
    }
    if (!(await this.matches(i, data))) {
      await this.drop(i);
      throw new ChunkError(
        'ERR_CHUNK_HASH',
        `chunk ${i} no longer matches its SHA-1; dropped it, merge stopped`,
      );
    }
    return data;
  }

  /** Waits for writes under way, then releases the summary file; later writes are refused. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.pending]);
    await this.summaryWrites.catch(() => {});
    await this.summary?.close();
    this.cache.clear();
    this.cacheUsed = 0;
  }

  private track<T>(start: () => Promise<T>): Promise<T> {
    if (this.closed)
      return Promise.reject(new ChunkError('ERR_STORE_CLOSED', 'the chunk store is closed'));
    const work = start();
    this.pending.add(work);
    const forget = () => this.pending.delete(work);
    work.then(forget, forget);
    return work;
  }

  private async verifyFile(index: number): Promise<boolean> {
    try {
      const info = await stat(this.chunkPath(index));
      if (!info.isFile() || info.size !== this.metainfo.geometry.pieceSize(index)) return false;
      return await this.matches(index, await readFile(this.chunkPath(index)));
    } catch {
      return false;
    }
  }

  /**
   * One line per chunk, but one write for all the lines that queue up while
   * the previous write is under way: a busy peer stores several chunks per
   * write, and each write is a round trip through libuv's thread pool.
   */
  private appendSummary(index: number): Promise<void> {
    this.summaryLines.push(`${index}\n`);
    this.summaryFlush ??= this.enqueueSummary(async () => {
      this.summaryFlush = undefined;
      const text = this.summaryLines.join('');
      this.summaryLines = [];
      await this.summary?.write(text);
    });
    return this.summaryFlush;
  }

  /** Summary writes run one at a time so lines never interleave with a rewrite. */
  private enqueueSummary(task: () => Promise<void>): Promise<void> {
    const next = this.summaryWrites.then(task);
    this.summaryWrites = next.catch(() => {});
    return next;
  }

  private async rewriteSummary(): Promise<void> {
    const path = join(this.dir, SUMMARY_FILE);
    const temp = `${path}.tmp`;
    const ids = this.held.heldIds();
    await writeFile(temp, ids.length > 0 ? `${ids.join('\n')}\n` : '');
    await rename(temp, path);
    if (this.summary && !this.closed) {
      // The append handle points at the replaced file; reopen on the new one.
      await this.summary.close();
      this.summary = await open(path, 'a');
    }
  }
}

/** A file name as it may be shown: control and bidi characters escaped (see log.ts). */
function escapeName(name: string): string {
  return `"${escapeUnsafe(name.slice(0, 80))}"`;
}

async function runLimited(tasks: Array<() => Promise<void>>, limit: number): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < tasks.length) await tasks[next++]!();
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
}
