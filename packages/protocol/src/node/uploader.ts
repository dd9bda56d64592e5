import { Bitfield } from '../bitfield.js';
import { ChunkError, WireError } from '../errors.js';
import type { Publish } from '../events.js';
import type { Message } from '../wire/messages.js';
import type { ChunkStore } from './chunk-store.js';
import { UPLOAD_READ_AHEAD_BYTES } from './memory.js';
import type { PeerWire } from './peer-wire.js';

/** Pending block requests one remote may queue before it is cut off. */
export const DEFAULT_MAX_QUEUED_REQUESTS = 1_024;
/**
 * Later bitfields that tell us nothing new, tolerated per connection. aria2
 * sends a bitfield in place of several `have`s (its checkHave), at times
 * one that repeats the first; a remote sending more is flooding.
 */
export const MAX_REDUNDANT_BITFIELDS = 8;

export interface UploaderOptions {
  readonly wire: PeerWire;
  readonly store: ChunkStore;
  /** Where its domain events go (`DomainEvents.publish` of the owner or peer). */
  readonly publish: Publish;
  /**
   * A chunk file we were serving failed its SHA-1 and the store dropped it:
   * the service that owns the store decides what follows (the owner restores
   * it from the source, a peer fetches it again) and publishes the
   * `chunk-corrupt` event. Without it the Uploader publishes that event.
   */
  readonly onChunkCorrupt?: (index: number) => void;
  readonly maxQueuedRequests?: number;
  /** Bytes of chunk reads kept in flight ahead of the socket (default UPLOAD_READ_AHEAD_BYTES; one chunk at least). */
  readonly readAheadBytes?: number;
  /**
   * Called when a `have` (with its `index`) or a bitfield (no index) changes
   * what we know the remote holds.
   */
  readonly onRemoteHas?: (remote: Bitfield, index?: number) => void;
}

interface BlockRequest {
  readonly index: number;
  readonly begin: number;
  readonly length: number;
}

/**
 * The serving half of a connection, the same for owner and peer: sends our
 * chunk ID list (bitfield), keeps it current with `have`, unchokes a remote
 * that is interested, and answers its block requests in order, waiting for
 * the socket to drain. Logs one line per chunk requested and per chunk sent.
 */
export class Uploader {
  readonly remoteHas: Bitfield;
  bytesSent = 0;
  chunksSent = 0;
  /** Block requests dropped because we were choking the remote (BEP 3). */
  requestsDroppedChoked = 0;
  private readonly wire: PeerWire;
  private readonly store: ChunkStore;
  private readonly publish: Publish;
  private readonly onChunkCorrupt: ((index: number) => void) | undefined;
  private readonly maxQueued: number;
  private readonly onRemoteHas: ((remote: Bitfield, index?: number) => void) | undefined;
  private queue: BlockRequest[] = [];
  /** Bytes sent so far of each chunk this remote has asked for. */
  private readonly open = new Map<number, number>();
  private pumping = false;
  /** Chunk reads under way for queued requests, by chunk ID. */
  private readonly loads = new Map<number, Promise<Buffer>>();
  /** Bytes of the chunks in `loads`. */
  private loadBytes = 0;
  private readonly readAheadBytes: number;
  /** Most bytes of chunk reads this connection had in flight at once (for the memory tests). */
  peakReadAheadBytes = 0;
  private started = false;
  private unchoked = false;
  private bitfieldSeen = false;
  private redundantBitfields = 0;

  constructor(options: UploaderOptions) {
    this.wire = options.wire;
    this.store = options.store;
    this.publish = options.publish;
    this.onChunkCorrupt = options.onChunkCorrupt;
    this.maxQueued = options.maxQueuedRequests ?? DEFAULT_MAX_QUEUED_REQUESTS;
    this.readAheadBytes = options.readAheadBytes ?? UPLOAD_READ_AHEAD_BYTES;
    this.onRemoteHas = options.onRemoteHas;
    this.remoteHas = new Bitfield(options.store.pieceCount);
  }

  /** Sends our chunk ID list; call once, right after the handshake. */
  start(): void {
    if (this.started) return;
    this.started = true;
    const held = this.store.held;
    // BEP 3 lets a process that holds nothing skip the bitfield; we always send it so the log shows it.
    this.wire.send({ type: 'bitfield', bytes: held.toBytes() });
    this.publish('idlist-sent', { to: this.wire.label, chunks: held.count(), of: held.size });
  }

  /** Tells the remote we now hold `index`. */
  announce(index: number): void {
    // BEP 3: the bitfield is the first message; what we gain before it is in it anyway.
    if (this.wire.isClosed || !this.started) return;
    this.wire.send({ type: 'have', index });
    this.publish('have-sent', { chunk: index, to: this.wire.label });
  }

  /** Handles the messages that concern serving; returns false for the rest. */
  handle(message: Message): boolean {
    switch (message.type) {
      case 'interested':
        if (!this.unchoked) {
          this.unchoked = true;
          this.wire.send({ type: 'unchoke' });
        }
        return true;
      case 'notInterested':
        return true;
      case 'bitfield': {
        const remote = Bitfield.fromBytes(message.bytes, this.remoteHas.size);
        if (this.bitfieldSeen) {
          this.laterBitfield(remote);
          return false;
        }
        this.bitfieldSeen = true;
        for (const index of remote.heldIds()) this.remoteHas.set(index);
        this.publish('idlist-received', {
          from: this.wire.label,
          chunks: remote.count(),
          of: remote.size,
        });
        this.onRemoteHas?.(this.remoteHas);
        return false;
      }
      case 'have':
        if (this.remoteHas.set(message.index)) {
          this.publish('have-received', { chunk: message.index, from: this.wire.label });
          this.partlySent(message.index);
          this.onRemoteHas?.(this.remoteHas, message.index);
        }
        return false;
      case 'request':
        // BEP 3: a choked remote's requests are dropped, not served.
        if (!this.unchoked) this.requestsDroppedChoked++;
        else this.request(message);
        return true;
      case 'cancel':
        this.queue = this.queue.filter(
          (r) =>
            !(
              r.index === message.index &&
              r.begin === message.begin &&
              r.length === message.length
            ),
        );
        return true;
      default:
        return false;
    }
  }

  /**
   * BEP 3 has the bitfield only first, but stock clients (aria2) send one
   * later in place of `have`s. So a later bitfield is taken as the `have`s
   * of what it adds, one line each as for a `have`, and no line when it adds
   * nothing; one that takes a chunk back, or a run of them adding nothing,
   * is a protocol error. That bounds what a bitfield flood costs (it used to
   * be a log line and a rescan each, 50,000 times over).
   */
  private laterBitfield(remote: Bitfield): void {
    for (const index of this.remoteHas.heldIds()) {
      if (!remote.has(index)) {
        this.wire.close(
          `ERR_BITFIELD_REPEATED: a later bitfield takes back chunk ${index}`,
          new WireError('ERR_BITFIELD_REPEATED', `bitfield takes back chunk ${index}`),
        );
        return;
      }
    }
    let added = 0;
    for (const index of remote.heldIds()) {
      if (!this.remoteHas.set(index)) continue;
      added++;
      this.publish('have-received', { chunk: index, from: this.wire.label });
      this.partlySent(index);
      this.onRemoteHas?.(this.remoteHas, index);
    }
    if (added === 0 && ++this.redundantBitfields > MAX_REDUNDANT_BITFIELDS) {
      this.wire.close(
        `ERR_BITFIELD_REPEATED: more than ${MAX_REDUNDANT_BITFIELDS} bitfields that add nothing`,
        new WireError('ERR_BITFIELD_REPEATED', 'repeated bitfields'),
      );
    }
  }

  /**
   * The remote now holds a chunk it took only part of from us (swarm mode's
   * endgame asks several senders for blocks of one chunk): its `chunk-sent`
   * line, with the bytes we sent, so that whoever the receiver names as the
   * sender of its last block has logged the chunk as sent.
   */
  private partlySent(index: number): void {
    const sent = this.open.get(index);
    if (sent === undefined) return;
    this.open.delete(index);
    if (sent > 0) this.publish('chunk-sent', { chunk: index, to: this.wire.label, bytes: sent });
  }

  private request(r: BlockRequest): void {
    if (!this.store.has(r.index)) {
      this.wire.close(
        `requested chunk ${r.index}, which we do not hold`,
        new WireError('ERR_PIECE_INDEX', `request for chunk ${r.index} not held`),
      );
      return;
    }
    if (this.queue.length >= this.maxQueued) {
      this.wire.close(
        `more than ${this.maxQueued} requests pending`,
        new WireError('ERR_REQUEST_LENGTH', 'request flood'),
      );
      return;
    }
    if (!this.open.has(r.index)) {
      this.open.set(r.index, 0);
      this.publish('request-received', { chunk: r.index, from: this.wire.label });
    }
    this.queue.push(r);
    if (!this.pumping) void this.pump();
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      // The chunk the head of the queue needed, held here: with a cache budget
      // in bytes it may already have been evicted for another connection's.
      let loaded: { index: number; data: Buffer } | undefined;
      // After a wait in drained() one block goes out, whatever the limit says by then.
      let granted = false;
      while (this.queue.length > 0 && !this.wire.isClosed) {
        const head = this.queue[0]!;
        this.prefetch();
        if (loaded?.index !== head.index && !this.store.cached(head.index)) {
          try {
            const data = await (this.loads.get(head.index) ?? this.store.readVerified(head.index));
            loaded = { index: head.index, data };
          } catch (err) {
            this.failRead(head.index, err);
            return;
          } finally {
            this.forgetLoad(head.index);
          }
          continue;
        }
        // A pump that starts while the upload limit is in debt waits for its turn too: a
        // remote asking one block at a time would otherwise never be held back.
        if (!granted && this.wire.needsDrain) {
          await this.wire.drained();
          granted = true;
          continue;
        }
        granted = false;
        // Every queued block whose chunk is in memory goes out in one corked write.
        let full = false;
        this.wire.batch(() => {
          while (this.queue.length > 0 && !full) {
            const r = this.queue[0]!;
            const chunk = loaded?.index === r.index ? loaded.data : this.store.cached(r.index);
            if (!chunk) break;
            this.queue.shift();
            full = !this.sendBlock(r, chunk);
          }
        });
        if (full) {
          await this.wire.drained();
          granted = true;
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  /**
   * Starts reading the next few distinct chunks the queue asks for, so disk
   * reads overlap with sending instead of stalling the socket once per chunk.
   */
  private prefetch(): void {
    for (const r of this.queue) {
      if (this.loads.has(r.index) || this.store.cached(r.index)) continue;
      const size = this.store.metainfo.geometry.pieceSize(r.index);
      // Within the byte budget, but always one read, whatever the chunk size.
      if (this.loads.size > 0 && this.loadBytes + size > this.readAheadBytes) break;
      const load = this.store.readVerified(r.index);
      this.loads.set(r.index, load);
      this.loadBytes += size;
      this.peakReadAheadBytes = Math.max(this.peakReadAheadBytes, this.loadBytes);
      // A chunk read is done once cached; a failed one stays for the pump to report.
      load.then(
        () => {
          if (this.loads.get(r.index) === load) this.forgetLoad(r.index);
        },
        () => {},
      );
    }
  }

  private forgetLoad(index: number): void {
    if (this.loads.delete(index)) this.loadBytes -= this.store.metainfo.geometry.pieceSize(index);
  }

  private sendBlock(r: BlockRequest, chunk: Buffer): boolean {
    const ok = this.wire.sendPiece(r.index, r.begin, chunk.subarray(r.begin, r.begin + r.length));
    this.bytesSent += r.length;
    const sent = (this.open.get(r.index) ?? 0) + r.length;
    if (sent >= chunk.length) {
      this.open.delete(r.index);
      this.chunksSent++;
      this.publish('chunk-sent', { chunk: r.index, to: this.wire.label, bytes: chunk.length });
    } else {
      this.open.set(r.index, sent);
    }
    return ok;
  }

  private failRead(index: number, err: unknown): void {
    if (err instanceof ChunkError && err.code === 'ERR_CHUNK_HASH') {
      if (this.onChunkCorrupt) this.onChunkCorrupt(index);
      else
        this.publish('chunk-corrupt', {
          chunk: index,
          reason: 'stored file failed SHA-1; dropped',
        });
      // The remote was told we hold it; reconnecting gets it a bitfield without it.
      this.wire.close(`stored chunk ${index} was corrupt; dropped it`);
    } else {
      this.wire.close(`cannot read chunk ${index}: ${(err as Error).message}`);
    }
  }
}
