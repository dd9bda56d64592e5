import { WireError } from '../errors.js';
import { TypedEmitter } from '../events/typed-emitter.js';
import { type Clock, MONOTONIC_CLOCK } from '../time/clock.js';
import {
  decodeMetadataMessage,
  encodeMetadataMessage,
  METADATA_PIECE_SIZE,
  metadataPieceCount,
} from '../wire/metadata.js';
import type { Connection } from './connection.js';

/** Window over which a remote's ut_metadata requests are counted against its allowance. */
export const METADATA_REQUEST_WINDOW_MS = 60_000;
/**
 * Requests over the allowance (answered with a reject) one remote may send
 * before it counts as a flood and its connection is closed.
 */
export const MAX_METADATA_OVERRUN = 64;
/** Requests held while our socket is full (1 MiB of answers); one more is rejected. */
export const MAX_METADATA_QUEUED = 64;

export type MetadataServerEvents = {
  /** The remote asked for metadata piece `piece` (of `of`). */
  requested: (piece: number, of: number) => void;
  /** We sent it: `bytes` of the info dictionary. */
  sent: (piece: number, bytes: number) => void;
  /** We refused it (BEP 9 reject): out of range, over the rate, or our socket is full. */
  rejected: (piece: number, reason: string) => void;
};

export interface MetadataServerOptions {
  readonly connection: Connection;
  /** The bencoded info dictionary, exactly the bytes whose SHA-1 is the info-hash. */
  readonly infoBytes: Uint8Array;
  readonly clock?: Clock;
}

/**
 * Serves one connection's BEP 9 requests from the info dictionary. A remote
 * may take the whole of it twice (and 16 pieces more) in each window of
 * METADATA_REQUEST_WINDOW_MS: enough for a fetch that lost a piece, far
 * from what a loop would ask. Requests past that are answered with a
 * reject; while our socket is full at most MAX_METADATA_QUEUED wait, and
 * any more are rejected; a remote that
 * keeps asking past MAX_METADATA_OVERRUN rejects is cut off
 * (`ERR_REQUEST_FLOOD`), this connection only. Data sent counts against the
 * process's upload limit like any other byte.
 */
export class MetadataServer extends TypedEmitter<MetadataServerEvents> {
  readonly size: number;
  readonly pieces: number;
  /** Requests the remote may make in one window. */
  readonly allowance: number;
  private readonly connection: Connection;
  private readonly infoBytes: Uint8Array;
  private readonly clock: Clock;
  private windowStart: number;
  private inWindow = 0;
  private overrun = 0;
  /** Requests waiting for our socket to drain, oldest first. */
  private readonly queued: number[] = [];
  private draining = false;

  constructor(options: MetadataServerOptions) {
    super();
    this.connection = options.connection;
    this.infoBytes = options.infoBytes;
    this.clock = options.clock ?? MONOTONIC_CLOCK;
    this.size = options.infoBytes.length;
    this.pieces = metadataPieceCount(this.size);
    this.allowance = 2 * this.pieces + 16;
    this.windowStart = this.clock.now();
    this.onListenerError = (error) =>
      this.connection.close(`metadata handler failed: ${(error as Error).message}`, error as Error);
    this.connection.on('extended', (name, payload) => {
      if (name === 'ut_metadata') this.receive(payload);
    });
  }

  private receive(payload: Uint8Array): void {
    let message: ReturnType<typeof decodeMetadataMessage>;
    try {
      message = decodeMetadataMessage(payload);
    } catch (err) {
      const error = err as WireError;
      this.connection.close(`${error.code}: ${error.message}`, error);
      return;
    }
    // Data and rejects are a fetcher's business; we hold the metadata already.
    if (message?.type !== 'request') return;
    const { piece } = message;
    this.emit('requested', piece, this.pieces);
    const now = this.clock.now();
    if (now - this.windowStart >= METADATA_REQUEST_WINDOW_MS) {
      this.windowStart = now;
      this.inWindow = 0;
    }
    if (piece >= this.pieces) {
      this.reject(piece, `no piece ${piece} of ${this.pieces}`);
      return;
    }
    if (++this.inWindow > this.allowance) {
      if (++this.overrun > MAX_METADATA_OVERRUN) {
        this.connection.close(
          `ERR_REQUEST_FLOOD: more than ${this.allowance + MAX_METADATA_OVERRUN} metadata requests in ${METADATA_REQUEST_WINDOW_MS} ms`,
          new WireError('ERR_REQUEST_FLOOD', 'metadata request flood'),
        );
        return;
      }
      this.reject(piece, `over ${this.allowance} requests in ${METADATA_REQUEST_WINDOW_MS} ms`);
      return;
    }
    if (this.connection.needsDrain || this.queued.length > 0) {
      if (this.queued.length >= MAX_METADATA_QUEUED) {
        this.reject(piece, `${MAX_METADATA_QUEUED} requests already wait for our socket`);
        return;
      }
      this.queued.push(piece);
      void this.drain();
      return;
    }
    this.send(piece);
  }

  /** Answers the queued requests as the socket takes them. */
  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      const wire = this.connection.wire;
      while (this.queued.length > 0 && !wire.isClosed) {
        if (this.connection.needsDrain) await this.connection.drained();
        if (wire.isClosed) break;
        this.send(this.queued.shift()!);
      }
    } finally {
      this.draining = false;
      this.queued.length = 0;
    }
  }

  private send(piece: number): void {
    const begin = piece * METADATA_PIECE_SIZE;
    const data = this.infoBytes.subarray(begin, Math.min(this.size, begin + METADATA_PIECE_SIZE));
    const sent = this.connection.sendExtended(
      'ut_metadata',
      encodeMetadataMessage({ type: 'data', piece, totalSize: this.size, data }),
    );
    if (sent) this.emit('sent', piece, data.length);
  }

  private reject(piece: number, reason: string): void {
    this.connection.sendExtended('ut_metadata', encodeMetadataMessage({ type: 'reject', piece }));
    this.emit('rejected', piece, reason);
  }
}
