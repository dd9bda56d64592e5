import type { ChunkStore } from '../chunks/chunk-store.js';
import { ChunkError } from '../errors.js';
import { TypedEmitter } from '../events/typed-emitter.js';
import type { BlockRef, Connection } from './connection.js';
import type { MessageWire } from './message-wire.js';

/**
 * Where a BlockServer reads blocks: verified reads with a small cache.
 * `ChunkStore` is one; the simulator's data-less store is another.
 */
export type BlockSource = Pick<ChunkStore, 'readVerified' | 'cached'>;

export interface BlockServerOptions {
  readonly connection: Connection<MessageWire>;
  readonly store: BlockSource;
}

export type BlockServerEvents = {
  /** The remote asked for a block of a chunk it had not asked for yet (the `request-received` line). */
  requestReceived: (index: number) => void;
  /**
   * The last byte of a chunk went to the remote (the `chunk-sent` line, and
   * the owner's initial seeding). When the remote took only part of a chunk
   * from us (endgame, or a piece that several links shared), it is reported
   * once the remote announces the chunk (`have`), with the bytes we sent of
   * it: the receiver names the sender of its last block, and that sender
   * must have logged the chunk as sent.
   */
  chunkSent: (index: number, bytes: number) => void;
  /** A stored chunk failed its re-check and was dropped (`chunk-corrupt`); the connection is closed. */
  chunkCorrupt: (index: number) => void;
};

/**
 * The serving half of a connection, built on `Connection`: answers the
 * remote's requests in the order they came, from the store, waiting for the
 * socket to drain. The queue is the Connection's `incoming`: a cancel or our
 * choke removes requests there, and this server simply finds them gone
 * (`sendPiece` returns false), so there is no second copy to keep in step.
 * Choking is not decided here: whoever runs the Choker calls
 * `connection.choke()` / `unchoke()`.
 */
export class BlockServer extends TypedEmitter<BlockServerEvents> {
  bytesSent = 0;
  chunksSent = 0;
  private readonly connection: Connection<MessageWire>;
  private readonly store: BlockServerOptions['store'];
  /** Bytes sent so far of each chunk the remote has asked for. */
  private readonly open = new Map<number, number>();
  private pumping = false;
  private readonly unsubscribe: Array<() => void> = [];

  constructor(options: BlockServerOptions) {
    super();
    this.connection = options.connection;
    this.store = options.store;
    // A listener that throws ends this one connection, never the process.
    this.onListenerError = (error, event) =>
      this.connection.close(
        `${String(event)} handler failed: ${(error as Error).message}`,
        error as Error,
      );
    this.unsubscribe.push(this.connection.on('request', (r) => this.onRequest(r)));
    this.unsubscribe.push(this.connection.on('have', (index) => this.onHave(index)));
    this.unsubscribe.push(this.connection.on('closed', () => this.stop()));
  }

  /** Stops serving; the connection stays open. */
  stop(): void {
    for (const off of this.unsubscribe.splice(0)) off();
  }

  private onRequest(r: BlockRef): void {
    if (!this.open.has(r.index)) {
      this.open.set(r.index, 0);
      this.emit('requestReceived', r.index);
    }
    if (!this.pumping) void this.pump();
  }

  private onHave(index: number): void {
    const sent = this.open.get(index);
    if (sent === undefined) return;
    this.open.delete(index);
    if (sent > 0) {
      this.chunksSent++;
      this.emit('chunkSent', index, sent);
    }
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    // After a wait in drained() one block goes out, whatever the limit says by then.
    let granted = false;
    try {
      for (;;) {
        if (this.isClosed()) return;
        const head = this.connection.incoming.values().next().value;
        if (!head) return;
        // The store reads synchronously (see ChunkStore): reading ahead of the socket
        // would overlap nothing, so each chunk is read when its first request is at the head.
        let chunk = this.store.cached(head.index);
        if (!chunk) {
          try {
            chunk = await this.store.readVerified(head.index);
          } catch (err) {
            this.failRead(head.index, err);
            return;
          }
          if (this.isClosed()) return; // it may have closed while we read
        }
        // A pump that starts while the upload limit is in debt waits for its turn too: a
        // remote asking one block at a time would otherwise never be held back.
        if (!granted && this.connection.needsDrain) {
          await this.connection.drained();
          granted = true;
          continue;
        }
        granted = false;
        // Every queued block whose chunk is in memory goes out in one corked write. The head's
        // chunk is used as read, not looked up again: the shared cache may have evicted it.
        const headChunk = chunk;
        this.connection.batch(() => {
          for (const r of [...this.connection.incoming.values()]) {
            const data = r.index === head.index ? headChunk : this.store.cached(r.index);
            if (!data) break;
            this.send(r, data);
            if (this.connection.needsDrain) break;
          }
        });
        if (this.connection.needsDrain) {
          await this.connection.drained();
          granted = true;
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  private isClosed(): boolean {
    return this.connection.state === 'closed';
  }

  private send(r: BlockRef, chunk: Buffer): void {
    if (!this.connection.sendPiece(r.index, r.begin, chunk.subarray(r.begin, r.begin + r.length))) {
      return;
    }
    this.bytesSent += r.length;
    const sent = (this.open.get(r.index) ?? 0) + r.length;
    if (sent >= chunk.length) {
      this.open.delete(r.index);
      this.chunksSent++;
      this.emit('chunkSent', r.index, chunk.length);
    } else {
      this.open.set(r.index, sent);
    }
  }

  private failRead(index: number, err: unknown): void {
    if (err instanceof ChunkError && err.code === 'ERR_CHUNK_HASH') {
      this.emit('chunkCorrupt', index);
      // The remote was told we hold it; reconnecting gets it a bitfield without it.
      this.connection.close(`stored chunk ${index} was corrupt; dropped it`);
    } else {
      this.connection.close(`cannot read chunk ${index}: ${(err as Error).message}`);
    }
  }
}
