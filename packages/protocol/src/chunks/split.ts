import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_CHUNK_SIZE } from '../constants.js';
import { PieceHashes } from '../metainfo.js';
import {
  CHUNK_DIR,
  chunkFileName,
  listChunkDir,
  readChunkFile,
  sha1,
  writeChunkFile,
} from './chunk-store.js';

export interface SplitOptions {
  readonly source: string;
  /** Working directory; chunk files go in `<dir>/chunks`. */
  readonly dir: string;
  readonly chunkSize?: number;
  readonly signal?: AbortSignal;
}

export interface SplitResult {
  readonly length: number;
  readonly pieceHashes: PieceHashes;
  readonly sha256: Buffer;
  /** Chunk files written by this call. */
  readonly written: number;
  /** Chunk files already present with the right content, left alone. */
  readonly reused: number;
}

/**
 * Splits `source` into `<dir>/chunks/<id>.chunk`, hashing as it goes (SHA-1
 * per chunk, SHA-256 of the whole). Reads the source once, streaming, and
 * only ever opens it for reading. A chunk file that already holds the right
 * bytes (a restart) is kept instead of rewritten.
 */
export async function splitFile(options: SplitOptions): Promise<SplitResult> {
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
  const chunkDir = join(options.dir, CHUNK_DIR);
  // Refuses a chunk folder holding a user's files before writing or deleting anything.
  const listing = await listChunkDir(chunkDir);
  await mkdir(chunkDir, { recursive: true });
  const whole = createHash('sha256');
  // One growing buffer of 20-byte hashes, not one Buffer per chunk.
  let hashes = Buffer.allocUnsafe(20 * 1024);
  let count = 0;
  let length = 0;
  let written = 0;
  let reused = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;

  const emit = async (data: Buffer): Promise<void> => {
    const index = count;
    const hash = sha1(data);
    if ((count + 1) * 20 > hashes.length) {
      const grown = Buffer.allocUnsafe(hashes.length * 2);
      hashes.copy(grown, 0, 0, count * 20);
      hashes = grown;
    }
    hash.copy(hashes, count * 20);
    count++;
    const path = join(chunkDir, chunkFileName(index));
    // Synchronous, in place, as ChunkStore.put writes (see there why): a split cut short
    // leaves a chunk file that does not verify, which the next split rewrites.
    if (listing.chunks.has(chunkFileName(index))) {
      const existing = readIfThere(path, data.length);
      if (existing?.length === data.length && sha1(existing).equals(hash)) {
        reused++;
        return;
      }
    }
    writeChunkFile(path, data);
    written++;
  };

  const stream = createReadStream(options.source, {
    highWaterMark: chunkSize,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  for await (const read of stream as AsyncIterable<Buffer>) {
    whole.update(read);
    length += read.length;
    pending.push(read);
    pendingBytes += read.length;
    while (pendingBytes >= chunkSize) {
      const joined = pending.length === 1 ? pending[0]! : Buffer.concat(pending);
      await emit(joined.subarray(0, chunkSize));
      const rest = joined.subarray(chunkSize);
      pending = rest.length > 0 ? [rest] : [];
      pendingBytes = rest.length;
    }
  }
  if (pendingBytes > 0) await emit(Buffer.concat(pending));

  // Chunk files past the end belong to an older, longer version of the file;
  // temp files are left from a crash. Nothing else is touched.
  for (const [name, index] of listing.chunks) {
    if (index >= count) await rm(join(chunkDir, name), { force: true });
  }
  for (const name of listing.temps) await rm(join(chunkDir, name), { force: true });
  const pieceHashes = new PieceHashes(Buffer.from(hashes.subarray(0, count * 20)));
  return { length, pieceHashes, sha256: whole.digest(), written, reused };
}

function readIfThere(path: string, size: number): Buffer | undefined {
  try {
    return readChunkFile(path, size);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
