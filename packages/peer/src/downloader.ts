import {
  type Bitfield,
  BLOCK_SIZE,
  type Block,
  ChunkError,
  type ChunkSource,
  type Message,
  type Publish,
  WireError,
} from '@swarmdrop/protocol';
import type { BufferPool, ChunkStore, PeerWire } from '@swarmdrop/protocol/node';
import type { PiecePicker } from './piece-picker.js';

/** Blocks requested and not yet received, per connection: 128 x 16 KiB keeps a loopback link full. */
export const DEFAULT_PIPELINE_BLOCKS = 128;
/**
 * Bytes of received chunks waiting for the disk before this connection stops
 * asking for more (one chunk at least, whatever its size): in bytes, so a
 * larger --chunk-size does not multiply it.
 */
export const MAX_STORING_BYTES = 2 * 1024 * 1024;

export interface DownloaderOptions {
  readonly wire: PeerWire;
  readonly store: ChunkStore;
  readonly picker: PiecePicker;
  /** Where its domain events go (the peer's `DomainEvents.publish`). */
  readonly publish: Publish;
  /**
   * What the remote holds, kept current by the connection's Uploader, which
   * must call noteRemoteHas() on every change.
   */
  readonly remoteHas: Bitfield;
  /** Only these chunks are ever fetched here (the owner link's batch or fallback set). */
  readonly only?: ReadonlySet<number>;
  /** Which chunks this connection may fetch (the owner link: its batch; the neighbour: all but blamed ones). */
  readonly allowed: (index: number) => boolean;
  /** Where this connection's chunks come from: owner, neighbour or fallback. */
  readonly via: ChunkSource;
  readonly pipelineBlocks?: number;
  /**
   * Bytes per block request, read when a chunk is first requested: 16 KiB
   * (BLOCK_SIZE) for stock clients; a swarmdrop remote is asked for whole
   * chunks (up to MAX_BLOCK_LENGTH), a sixth of the per-block work on both ends.
   */
  readonly blockSize?: () => number;
  /** Where chunk buffers come from and go back to once written (shared by a peer's connections). */
  readonly buffers?: BufferPool;
  readonly onStored: (index: number) => void;
  readonly onRejected: (index: number) => void;
  readonly onFatal: (err: Error) => void;
  /** The clock `lastBlockAt` is read from (default Date.now). */
  readonly now?: () => number;
}

interface ActivePiece {
  readonly index: number;
  readonly data: Buffer;
  readonly blocks: Block[];
  next: number;
  received: number;
  readonly pending: Set<number>;
}

/**
 * The fetching half of a connection: declares interest, pipelines block
 * requests for chunks the remote has and we lack, assembles each chunk, and
 * hands it to the store, which checks its SHA-1 before keeping it.
 */
export class Downloader {
  /** When the last block arrived (on `now`); 0 before any. */
  lastBlockAt = 0;
  chunksReceived = 0;
  private readonly o: DownloaderOptions;
  /** Bytes requested and not yet received, at most: pipelineBlocks x 16 KiB, whatever the block size. */
  private readonly pipelineBytes: number;
  private outstandingBytes = 0;
  private readonly active = new Map<number, ActivePiece>();
  /** Chunks the remote has that we lacked when we last looked (lazily pruned by the picker). */
  private readonly candidates = new Set<number>();
  private outstanding = 0;
  private choked = true;
  private interested = false;
  private closed = false;
  /** Chunks handed to the store and not yet stored or rejected. */
  private readonly storing = new Set<Promise<void>>();
  private storingBytes = 0;
  /** Most bytes this connection had waiting for the disk at once (for the memory tests). */
  peakStoringBytes = 0;

  constructor(options: DownloaderOptions) {
    this.o = options;
    this.pipelineBytes = (options.pipelineBlocks ?? DEFAULT_PIPELINE_BLOCKS) * BLOCK_SIZE;
  }

  /** Blocks requested and not yet received. */
  get inFlight(): number {
    return this.outstanding;
  }

  /** True when the remote has something we may fetch and still lack. */
  hasWanted(): boolean {
    return this.o.picker.wantsAny(this.candidates, this.o.allowed);
  }

  /**
   * The remote announced chunk `index` (a `have`), or sent a whole bitfield
   * (no index): updates the chunks worth asking it for, then requests more.
   */
  noteRemoteHas(index?: number): void {
    if (index === undefined) this.rebuildCandidates();
    else if (this.inScope(index) && this.o.picker.lacks(index)) this.candidates.add(index);
    this.refresh();
  }

  /** Recomputes the candidates from the remote's list: after a bitfield, or when we lost a chunk we held. */
  rebuildCandidates(): void {
    this.candidates.clear();
    const remote = this.o.remoteHas;
    // In ascending order, so chunks are fetched roughly front to back.
    const ids = this.o.only ? [...this.o.only].sort((a, b) => a - b) : remote.heldIds();
    for (const i of ids) if (remote.has(i) && this.o.picker.lacks(i)) this.candidates.add(i);
  }

  private inScope(index: number): boolean {
    return this.o.only?.has(index) ?? true;
  }

  handle(message: Message): void {
    switch (message.type) {
      case 'unchoke':
        this.choked = false;
        this.fill();
        break;
      case 'choke':
        // BEP 3: a choke drops every pending request; ask again after the next unchoke.
        this.choked = true;
        this.releaseAll();
        break;
      case 'piece':
        this.receive(message.index, message.begin, message.block);
        break;
      default:
        break;
    }
  }

  /** Re-evaluates interest and requests more; call when the remote's list or `allowed` changed. */
  refresh(): void {
    if (this.closed) return;
    const want = this.active.size > 0 || this.hasWanted();
    if (want && !this.interested) {
      this.interested = true;
      this.o.wire.send({ type: 'interested' });
    } else if (!want && this.interested) {
      this.interested = false;
      this.o.wire.send({ type: 'notInterested' });
    }
    this.fill();
  }

  close(): void {
    this.closed = true;
    this.releaseAll();
  }

  /** Resolves once every chunk handed to the store has been stored or rejected. */
  async settled(): Promise<void> {
    while (this.storing.size > 0) await Promise.allSettled([...this.storing]);
  }

  private fill(): void {
    if (this.closed || this.choked) return;
    // One corked write for the whole burst of requests, not a syscall per 17 bytes.
    this.o.wire.batch(() => this.requestMore());
    if (this.active.size === 0 && this.interested && !this.hasWanted()) {
      this.interested = false;
      this.o.wire.send({ type: 'notInterested' });
    }
  }

  private requestMore(): void {
    // Chunks still being written count against the pipeline too: reading waits while the disk is behind.
    while (
      this.outstandingBytes < this.pipelineBytes &&
      (this.storing.size === 0 || this.storingBytes < MAX_STORING_BYTES)
    ) {
      let piece: ActivePiece | undefined;
      for (const candidate of this.active.values()) {
        if (candidate.next < candidate.blocks.length) {
          piece = candidate;
          break;
        }
      }
      if (!piece) {
        const index = this.o.picker.pick(this.o.wire.label, this.candidates, this.o.allowed);
        if (index === undefined) break;
        const size = this.o.store.metainfo.geometry.pieceSize(index);
        piece = {
          index,
          data: this.o.buffers?.take(size) ?? Buffer.allocUnsafe(size),
          blocks: this.o.store.metainfo.geometry.blocks(index, this.o.blockSize?.() ?? BLOCK_SIZE),
          next: 0,
          received: 0,
          pending: new Set(),
        };
        this.active.set(index, piece);
        this.o.publish('request-sent', {
          chunk: index,
          to: this.o.wire.label,
          blocks: piece.blocks.length,
        });
      }
      const block = piece.blocks[piece.next++]!;
      piece.pending.add(block.begin);
      this.outstanding++;
      this.outstandingBytes += block.length;
      this.o.wire.send({
        type: 'request',
        index: piece.index,
        begin: block.begin,
        length: block.length,
      });
    }
  }

  private receive(index: number, begin: number, block: Uint8Array): void {
    const piece = this.active.get(index);
    // A block we did not ask for (or asked for before a choke) is ignored.
    if (!piece?.pending.has(begin)) return;
    const expected = piece.blocks.find((b) => b.begin === begin);
    if (!expected) return;
    if (expected.length !== block.length) {
      // It answered our request with the wrong amount: broken or hostile, and the chunk would never complete.
      this.o.wire.close(
        `sent ${block.length} bytes for a block of ${expected.length} (chunk ${index} at ${begin})`,
        new WireError('ERR_BLOCK_RANGE', 'block of the wrong length'),
      );
      return;
    }
    piece.pending.delete(begin);
    piece.data.set(block, begin);
    piece.received += block.length;
    this.outstanding--;
    this.outstandingBytes -= block.length;
    this.lastBlockAt = (this.o.now ?? Date.now)();
    if (piece.received === piece.data.length) {
      this.active.delete(index);
      const storing = this.finish(piece);
      this.storing.add(storing);
      this.storingBytes += piece.data.length;
      this.peakStoringBytes = Math.max(this.peakStoringBytes, this.storingBytes);
      void storing.finally(() => {
        this.storing.delete(storing);
        this.storingBytes -= piece.data.length;
        // Room for the disk came free: ask for more (requestMore stops at MAX_STORING_BYTES).
        if (!this.closed) this.fill();
      });
    }
    // Top the pipeline up in batches, not one 17-byte request per block received:
    // that halves the syscalls and wake-ups on both ends of the link.
    if (this.outstandingBytes <= this.pipelineBytes / 2) this.fill();
  }

  private async finish(piece: ActivePiece): Promise<void> {
    try {
      const stored = await this.o.store.put(piece.index, piece.data);
      this.o.picker.release(piece.index);
      if (!stored) return;
      this.chunksReceived++;
      this.o.publish('chunk-received', {
        chunk: piece.index,
        from: this.o.wire.label,
        bytes: piece.data.length,
        via: this.o.via,
      });
      this.o.onStored(piece.index);
    } catch (err) {
      this.o.picker.release(piece.index);
      if (err instanceof ChunkError && err.code === 'ERR_CHUNK_HASH') {
        this.o.publish('chunk-rejected', {
          chunk: piece.index,
          from: this.o.wire.label,
          reason: 'sha1-mismatch',
        });
        this.o.onRejected(piece.index);
      } else {
        this.o.onFatal(err as Error);
      }
    }
    this.o.buffers?.give(piece.data);
    if (!this.closed) this.refresh();
  }

  private releaseAll(): void {
    for (const piece of this.active.values()) {
      this.o.picker.release(piece.index);
      this.o.buffers?.give(piece.data); // no longer in `active`: late blocks for it are ignored
    }
    this.active.clear();
    this.outstanding = 0;
    this.outstandingBytes = 0;
  }
}
