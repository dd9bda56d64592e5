import { createHash } from 'node:crypto';
import {
  MAX_METADATA_SIZE,
  METADATA_PIECE_SIZE,
  metadataPieceCount,
  metadataPieceLength,
} from './wire/metadata.js';

/**
 * Why a remote's metadata cannot be used: the fetcher drops that remote
 * and tries another. The message is one line for the log.
 */
export class MetadataRemoteError extends Error {}

export interface MetadataAssemblyOptions {
  readonly infoHash: Uint8Array;
  /** The remote's `metadata_size`. */
  readonly size: number;
  /** Cap on `size` (default MAX_METADATA_SIZE). */
  readonly maxSize?: number;
}

/**
 * The metadata (BEP 9) put together from one remote's pieces: which pieces
 * are asked for, which arrived, and the SHA-1 check at the end. Pure: no
 * sockets, no timers; the driver (node/metadata-fetcher.ts) asks it what
 * to request and hands it what arrives. Every way the remote can be wrong
 * (a size of 0 or over the cap, a piece we did not ask for, a piece of the
 * wrong length, a `total_size` that changed, bytes whose SHA-1 is not the
 * info-hash) throws a MetadataRemoteError.
 */
export class MetadataAssembly {
  readonly size: number;
  readonly pieces: number;
  private readonly infoHash: Uint8Array;
  private readonly buffer: Buffer;
  private readonly received: boolean[];
  private readonly asked = new Set<number>();
  private receivedCount = 0;
  private next = 0;

  constructor(options: MetadataAssemblyOptions) {
    const maxSize = options.maxSize ?? MAX_METADATA_SIZE;
    if (!Number.isSafeInteger(options.size) || options.size <= 0)
      throw new MetadataRemoteError(`metadata_size ${options.size} is not a positive size`);
    if (options.size > maxSize)
      throw new MetadataRemoteError(
        `metadata_size ${options.size} is over the cap of ${maxSize} bytes`,
      );
    this.size = options.size;
    this.pieces = metadataPieceCount(options.size);
    this.infoHash = options.infoHash;
    this.buffer = Buffer.alloc(options.size);
    this.received = new Array<boolean>(this.pieces).fill(false);
  }

  get complete(): boolean {
    return this.receivedCount === this.pieces;
  }

  get inFlight(): number {
    return this.asked.size;
  }

  /** Pieces to ask for now, so that at most `maxInFlight` are out; they count as asked. */
  take(maxInFlight: number): number[] {
    const out: number[] = [];
    while (this.asked.size < maxInFlight && this.next < this.pieces) {
      const piece = this.next++;
      if (this.received[piece]) continue;
      this.asked.add(piece);
      out.push(piece);
    }
    return out;
  }

  /** A data message. True when it completed the metadata. */
  accept(piece: number, totalSize: number, data: Uint8Array): boolean {
    if (totalSize !== this.size)
      throw new MetadataRemoteError(
        `ut_metadata total_size ${totalSize} is not the announced ${this.size}`,
      );
    if (!this.asked.has(piece))
      throw new MetadataRemoteError(`ut_metadata piece ${piece} was not asked for`);
    const expected = metadataPieceLength(this.size, piece);
    if (data.length !== expected)
      throw new MetadataRemoteError(
        `ut_metadata piece ${piece} is ${data.length} bytes, expected ${expected}`,
      );
    this.asked.delete(piece);
    this.buffer.set(data, piece * METADATA_PIECE_SIZE);
    this.received[piece] = true;
    this.receivedCount++;
    return this.complete;
  }

  /** The whole info dictionary, once complete, after its SHA-1 matched the info-hash. */
  verified(): Buffer {
    if (!this.complete) throw new Error('metadata is not complete');
    const hash = createHash('sha1').update(this.buffer).digest();
    if (!hash.equals(this.infoHash))
      throw new MetadataRemoteError(`metadata SHA-1 ${hash.toString('hex')} is not the info-hash`);
    return this.buffer;
  }
}
