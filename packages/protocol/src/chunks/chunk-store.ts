import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Bitfield } from '../bitfield.js';
import { ChunkError, OptionError } from '../errors.js';
import type { Metainfo } from '../metainfo.js';
import { escapeUnsafe } from '../unsafe-text.js';
import { DEFAULT_CACHE_BYTES } from './memory.js';
import { HASH_SLICE_BYTES, MergedFile, type MergeResult, writeAll } from './merged-file.js';

/**
 * The per-chunk hot path (put, readVerified) uses synchronous calls on the
 * event loop. Each asynchronous call is a hand-over to libuv's thread pool
 * and back, and on this 2-core VM a wake-up costs more than the page-cache
 * copy itself: a 256 MiB download stored its chunks for 2.6 CPU-s through
 * the thread pool (temp file, write, rename, close: five hand-overs each)
 * against 0.2 s written in place synchronously (measured with perf stat
 * and --cpu-prof). A write that has to wait for the disk then holds the
 * loop back, and with it the reading of the sockets: the backpressure
 * that a disk behind the network needs anyway.
 */
export function readChunkFile(path: string, size: number): Buffer {
  return readChunkFileWithTime(path, size).data;
}

/** A chunk file's bytes (one more than `size` at most) and its change time (stat ctime, ms). */
function readChunkFileWithTime(path: string, size: number): { data: Buffer; ctimeMs: number } {
  const fd = openSync(path, 'r');
  try {
    const ctimeMs = fstatSync(fd).ctimeMs;
    // One byte more than the chunk: a longer file is not that chunk.
    const data = Buffer.allocUnsafeSlow(size + 1);
    let filled = 0;
    for (;;) {
      const n = readSync(fd, data, filled, data.length - filled, filled);
      if (n === 0) break;
      filled += n;
      if (filled === data.length) break;
    }
    return { data: data.subarray(0, filled), ctimeMs };
  } finally {
    closeSync(fd);
  }
}

/** Writes `data` as the whole of the file at `path`, in place (see ChunkStore.put); returns its ctime (ms). */
export function writeChunkFile(path: string, data: Uint8Array): number {
  const fd = openSync(path, 'w');
  try {
    writeAll(fd, data, 0);
    return fstatSync(fd).ctimeMs;
  } finally {
    closeSync(fd);
  }
}

/**
 * A chunk file that verified is served without hashing it again for this
 * long, while its ctime shows no change (any write to it, or a change of
 * its metadata, moves the ctime; utimes cannot set it back). Hashing every
 * read was 0.19 CPU-s per 256 MiB served, the owner's largest cost after
 * the socket; a chunk served to ten peers was hashed ten times. Rot that
 * leaves the ctime alone is caught by the receiver's SHA-1 check, and here
 * at the next read after this long.
 */
export const VERIFIED_TRUST_MS = 600_000;

export const SUMMARY_FILE = 'summary.txt';
export const CHUNK_DIR = 'chunks';

export interface ChunkStoreOptions {
  /** The process's working directory; chunks go in `<dir>/chunks`. */
  readonly dir: string;
  readonly metainfo: Metainfo;
  /**
   * Skip re-hashing chunk files on open because the caller just wrote and
   * verified them all; they count as verified for serving too (VERIFIED_TRUST_MS).
   */
  readonly trustExisting?: boolean;
  /** Verified chunks kept in memory for serving, in bytes (default DEFAULT_CACHE_BYTES; one chunk at least). */
  readonly cacheBytes?: number;
  /** How long a verified chunk file is served without hashing it again while unchanged (default VERIFIED_TRUST_MS). */
  readonly verifiedTrustMs?: number;
  /** Monotonic time in ms, for verifiedTrustMs (default performance.now). */
  readonly now?: () => number;
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
/**
 * A chunk being written, `<id>.chunk.<8 hex>.tmp`, as versions before 0.2
 * wrote them: a crash of one may have left some, which are ours to delete.
 */
const CHUNK_TEMP = /^\d+\.chunk\.[0-9a-f]{8}\.tmp$/;

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

/**
 * The --dir rule both services start with: refuses a --dir whose chunk folder
 * holds files swarmdrop did not write, as an OptionError on `--dir` (exit
 * status 2), before anything there is deleted.
 */
export async function checkChunkDir(dir: string): Promise<void> {
  try {
    await listChunkDir(join(dir, CHUNK_DIR));
  } catch (err) {
    if (err instanceof ChunkError && err.code === 'ERR_FOREIGN_FILES')
      throw new OptionError('--dir', err.message);
    throw err;
  }
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
  /** The merged file being written as chunks arrive (see attach), if any. */
  output: MergedFile | undefined;
  private summaryFd: number | undefined;
  private readonly cache = new Map<number, Buffer>();
  private readonly cacheBytes: number;
  private cacheUsed = 0;
  /** Per chunk: its file's ctime when it last verified (NaN: never), and when that was. */
  private readonly verifiedCtime: Float64Array;
  private readonly verifiedAt: Float64Array;
  private readonly verifiedTrustMs: number;
  private readonly now: () => number;
  private closed = false;
  /** After releaseChunkFiles: chunks are read from this merged file instead of their files. */
  private servingFrom: string | undefined;
  /** Copies and drops under way, so close() can wait for them. */
  private readonly pending = new Set<Promise<unknown>>();

  private constructor(options: ChunkStoreOptions) {
    this.dir = options.dir;
    this.chunkDir = join(options.dir, CHUNK_DIR);
    this.metainfo = options.metainfo;
    this.held = new Bitfield(options.metainfo.geometry.pieceCount);
    this.cacheBytes = options.cacheBytes ?? DEFAULT_CACHE_BYTES;
    this.verifiedCtime = new Float64Array(this.held.size).fill(Number.NaN);
    this.verifiedAt = new Float64Array(this.held.size);
    this.verifiedTrustMs = options.verifiedTrustMs ?? VERIFIED_TRUST_MS;
    this.now = options.now ?? (() => performance.now());
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
        (options.trustExisting === true ? store.trustFile(index) : await store.verifyFile(index));
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

  /** True when `data` is exactly chunk `index` of the metainfo. */
  matches(index: number, data: Uint8Array): boolean {
    if (index >= this.pieceCount || data.length !== this.metainfo.geometry.pieceSize(index))
      return false;
    // Synchronous on purpose: SHA-1 of 100 KiB takes ~60 µs here, and WebCrypto's
    // thread-pool jobs cost ~1.7x the CPU in all, which a 2-core machine feels.
    return this.metainfo.pieceHashes.matches(index, sha1(data));
  }

  /**
   * Stores chunk `index` after checking its SHA-1: its chunk file, written
   * in place; the merged file, when one is attached; one summary line.
   * Resolves false when it was already held. Rejects with a ChunkError
   * (ERR_CHUNK_HASH) for data that does not match, storing nothing.
   *
   * The chunk file is written under its own name, not as a temp file
   * renamed: a crash mid-write leaves a short or mixed file, which open()
   * re-hashes and discards, so it never passes as whole. (A temp file and a
   * rename per chunk made ext4 allocate two directory entries and take the
   * folder's lock twice: rwsem spinning was 10% of a peer's CPU in perf.)
   *
   * `cache: true` also keeps a copy in the serving cache (within its byte
   * budget), for a caller that will serve what it just received: a swarm
   * peer uploads about as much as it downloads, mostly chunks it got
   * moments ago, and serving them from disk costs a read and a second SHA-1
   * each. The copy is ours: the caller may reuse `data` once this resolves.
   */
  put(index: number, data: Uint8Array, options: PutOptions = {}): Promise<boolean> {
    if (this.closed)
      return Promise.reject(new ChunkError('ERR_STORE_CLOSED', 'the chunk store is closed'));
    try {
      return Promise.resolve(this.putNow(index, data, options.cache === true));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private putNow(index: number, data: Uint8Array, cache: boolean): boolean {
    if (this.has(index)) return false;
    if (!this.matches(index, data)) {
      throw new ChunkError('ERR_CHUNK_HASH', `chunk ${index} does not match its SHA-1`);
    }
    if (this.servingFrom) {
      // The chunk files are gone (--remove-chunks): a chunk fetched again repairs the merged file.
      writeRange(this.servingFrom, data, index * this.metainfo.pieceLength);
    } else {
      const path = this.chunkPath(index);
      try {
        this.noteVerified(index, writeChunkFile(path, data));
      } catch (err) {
        rm(path, { force: true }).catch(() => {});
        throw err;
      }
      this.output?.write(index, data);
    }
    this.held.set(index);
    // Verified above, so it may be served without a re-check until it leaves the cache.
    if (cache) this.cacheInsert(index, Buffer.from(data));
    this.appendSummary(index);
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
    if (this.closed) throw new ChunkError('ERR_STORE_CLOSED', 'the chunk store is closed');
    if (!this.has(index)) throw new ChunkError('ERR_CHUNK_MISSING', `chunk ${index} is not held`);
    const size = this.metainfo.geometry.pieceSize(index);
    let data: Buffer;
    let ctimeMs = Number.NaN;
    try {
      if (this.servingFrom) {
        data = readRange(this.servingFrom, size, index * this.metainfo.pieceLength);
      } else {
        ({ data, ctimeMs } = readChunkFileWithTime(this.chunkPath(index), size));
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      data = Buffer.alloc(0);
    }
    const trusted =
      data.length === size &&
      ctimeMs === this.verifiedCtime[index] &&
      this.now() - this.verifiedAt[index]! < this.verifiedTrustMs;
    if (trusted) {
      this.cacheInsert(index, data);
      return data;
    }
    if (!this.matches(index, data)) {
      await this.drop(index);
      throw new ChunkError(
        'ERR_CHUNK_HASH',
        `stored chunk ${index} no longer matches its SHA-1; dropped it`,
      );
    }
    this.noteVerified(index, ctimeMs);
    this.cacheInsert(index, data);
    return data;
  }

  /** Chunk `index`'s file holds verified bytes as of change time `ctimeMs` (see VERIFIED_TRUST_MS). */
  private noteVerified(index: number, ctimeMs: number): void {
    this.verifiedCtime[index] = ctimeMs;
    this.verifiedAt[index] = this.now();
  }

  /** True once chunks are read from the merged file (releaseChunkFiles, adoptMergedFile). */
  get isServingFromMerged(): boolean {
    return this.servingFrom !== undefined;
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
    this.verifiedCtime[index] = Number.NaN;
    if (!this.held.clear(index)) return;
    if (!this.servingFrom) await rm(this.chunkPath(index), { force: true });
    await this.rewriteSummary();
  }

  /**
   * From now on every verified chunk also goes into `output`; the chunks
   * already held (a restart) are read back, checked again and copied in,
   * a few per turn of the event loop. Resolves once they are, with the
   * chunks whose files no longer verified: those were dropped, to be
   * fetched again (`strict`: the first such one rejects instead).
   */
  attach(output: MergedFile, options: { readonly strict?: boolean } = {}): Promise<number[]> {
    this.output = output;
    return this.track(async () => {
      const dropped: number[] = [];
      let sinceYield = 0;
      for (const index of this.held.heldIds()) {
        if (this.closed) break;
        if (output.has(index) || !this.has(index)) continue;
        const size = this.metainfo.geometry.pieceSize(index);
        let data: Buffer | undefined;
        try {
          data = this.cached(index) ?? readChunkFile(this.chunkPath(index), size);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        }
        if (!data || !this.matches(index, data)) {
          await this.dropNow(index);
          dropped.push(index);
          if (!options.strict) continue;
          throw data
            ? new ChunkError(
                'ERR_CHUNK_HASH',
                `chunk ${index} no longer matches its SHA-1; dropped it, merge stopped`,
              )
            : new ChunkError(
                'ERR_CHUNK_MISSING',
                `chunk ${index} file is gone; dropped it, merge stopped`,
              );
        }
        output.write(index, data);
        sinceYield += size;
        if (sinceYield >= HASH_SLICE_BYTES) {
          sinceYield = 0;
          await new Promise((resolve) => setImmediate(resolve));
        }
      }
      return dropped;
    });
  }

  /**
   * Merges every chunk into `outPath` in one go: the merged file is made
   * (MergedFile.create: nothing of the user's is replaced unless `force`),
   * every chunk copied in, checked again on the way, and completed. A peer
   * attaches its merged file at start instead, so that this is done as the
   * chunks arrive; this is for callers that have every chunk already.
   */
  async merge(
    outPath: string,
    options: {
      /** A SHA-256 the user pinned (`--sha256`), checked as well as the metainfo's. */
      readonly sha256?: Uint8Array | undefined;
      readonly force?: boolean | undefined;
    } = {},
  ): Promise<MergeResult> {
    const missing = this.held.missing();
    if (missing.length > 0) {
      throw new ChunkError(
        'ERR_CHUNK_MISSING',
        `cannot merge: ${missing.length} chunks missing (first ${missing[0]})`,
      );
    }
    const output = await MergedFile.create({
      path: outPath,
      dir: this.dir,
      metainfo: this.metainfo,
      sha256: options.sha256,
      force: options.force,
    });
    try {
      await this.attach(output, { strict: true });
      return await output.complete();
    } catch (err) {
      await output.abort();
      throw err;
    } finally {
      if (this.output === output) this.output = undefined;
    }
  }

  /**
   * After a verified merge, for users who need only the file: deletes the
   * chunk files, and serves every chunk from the merged file at `mergedPath`
   * from then on (still checked against its SHA-1 on every read).
   */
  async releaseChunkFiles(mergedPath: string): Promise<number> {
    this.servingFrom = mergedPath;
    let removed = 0;
    for (const index of this.held.heldIds()) {
      await rm(this.chunkPath(index), { force: true });
      removed++;
    }
    return removed;
  }

  /**
   * A restart with `--remove-chunks` after the merge: the chunk files are
   * gone, the merged file is ours. Every chunk of it that verifies counts as
   * held and is served from it; the rest is fetched again as usual.
   * Resolves with the count adopted.
   */
  async adoptMergedFile(mergedPath: string): Promise<number> {
    this.servingFrom = mergedPath;
    let adopted = 0;
    for (let index = 0; index < this.pieceCount; index++) {
      if (this.has(index)) continue;
      const size = this.metainfo.geometry.pieceSize(index);
      if (this.matches(index, readRange(mergedPath, size, index * this.metainfo.pieceLength))) {
        this.held.set(index);
        adopted++;
      }
      if (index % 64 === 63) await new Promise((resolve) => setImmediate(resolve));
    }
    await this.rewriteSummary();
    return adopted;
  }

  /** Waits for copies under way, then releases the summary file; later writes are refused. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.pending]);
    if (this.summaryFd !== undefined) closeSync(this.summaryFd);
    this.summaryFd = undefined;
    this.output?.close();
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

  /**
   * The caller vouches for chunk file `index` (it has just written and hashed
   * it: the owner's split): it counts as verified as of its ctime now, so
   * the first read for serving needs no hash either. A file of the wrong
   * size is not vouched for.
   */
  private trustFile(index: number): boolean {
    try {
      const info = statSync(this.chunkPath(index));
      if (!info.isFile() || info.size !== this.metainfo.geometry.pieceSize(index)) return false;
      this.noteVerified(index, info.ctimeMs);
      return true;
    } catch {
      return false;
    }
  }

  private async verifyFile(index: number): Promise<boolean> {
    try {
      const info = await stat(this.chunkPath(index));
      if (!info.isFile() || info.size !== this.metainfo.geometry.pieceSize(index)) return false;
      return this.matches(index, await readFile(this.chunkPath(index)));
    } catch {
      return false;
    }
  }

  /**
   * One line per chunk, appended at once (a write(2) of a few bytes): the
   * summary never lags the chunk files, and it is never rewritten per chunk.
   */
  private appendSummary(index: number): void {
    if (this.summaryFd === undefined) return;
    writeSync(this.summaryFd, `${index}\n`);
  }

  /** Writes the whole summary afresh (open, a drop) and appends to the new file from then on. */
  private async rewriteSummary(): Promise<void> {
    const path = join(this.dir, SUMMARY_FILE);
    const temp = `${path}.tmp`;
    const ids = this.held.heldIds();
    await writeFile(temp, ids.length > 0 ? `${ids.join('\n')}\n` : '');
    await rename(temp, path);
    // The append descriptor points at the replaced file; reopen on the new one.
    if (this.summaryFd !== undefined) closeSync(this.summaryFd);
    this.summaryFd = this.closed ? undefined : openSync(path, 'a');
  }
}

/** Writes `data` into the existing file at `path` at `position`. */
function writeRange(path: string, data: Uint8Array, position: number): void {
  const fd = openSync(path, 'r+');
  try {
    writeAll(fd, data, position);
  } finally {
    closeSync(fd);
  }
}

/** `size` bytes of the file at `path` from `position` (a chunk of the merged file). */
function readRange(path: string, size: number, position: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const data = Buffer.allocUnsafeSlow(size);
    let filled = 0;
    while (filled < size) {
      const n = readSync(fd, data, filled, size - filled, position + filled);
      if (n === 0) break;
      filled += n;
    }
    return data.subarray(0, filled);
  } finally {
    closeSync(fd);
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
