import { Bitfield } from '../bitfield.js';
import {
  HANDSHAKE_LENGTH,
  MAX_BLOCK_LENGTH,
  MAX_PIECE_COUNT,
  PROTOCOL_NAME,
} from '../constants.js';
import { WireError } from '../errors.js';
import type { Geometry } from '../geometry.js';
import { MAX_EXTENDED_PAYLOAD } from './extended.js';
import { MESSAGE_ID, type Message } from './messages.js';

export interface FrameDecoderOptions {
  /**
   * Chunk count and sizes: indexes, ranges and the bitfield length are
   * checked against it. Without it (a connection that only fetches the
   * metadata, BEP 9) the messages about chunks are skipped after their
   * lengths are checked against the largest torrent we accept.
   */
  readonly geometry?: Geometry | undefined;
  /** The stream starts with a 68-byte handshake (default true). */
  readonly expectHandshake?: boolean;
  /** When given, a handshake for any other torrent is refused. */
  readonly infoHash?: Uint8Array;
  /** Largest block accepted in request, cancel and piece (default MAX_BLOCK_LENGTH). */
  readonly maxBlockLength?: number;
  /**
   * A piece whose bytes arrived in several reads is put together in one
   * buffer the decoder keeps and reuses, instead of a new one each time:
   * its `block` is then valid only until the next `push`, so the caller
   * must copy what it keeps (PeerWire's consumer, the scheduler, copies
   * each block into its piece at once). Default false: every block is the
   * caller's. A new 100 KiB buffer per piece was most of what a download
   * handed the garbage collector (19 full collections in a 256 MiB run).
   */
  readonly reuseBlockBuffer?: boolean;
}

const FIXED_LENGTH: Record<number, number> = {
  [MESSAGE_ID.choke]: 1,
  [MESSAGE_ID.unchoke]: 1,
  [MESSAGE_ID.interested]: 1,
  [MESSAGE_ID.notInterested]: 1,
  [MESSAGE_ID.have]: 5,
  [MESSAGE_ID.request]: 13,
  [MESSAGE_ID.cancel]: 13,
  [MESSAGE_ID.suggest]: 5,
  [MESSAGE_ID.haveAll]: 1,
  [MESSAGE_ID.haveNone]: 1,
  [MESSAGE_ID.reject]: 13,
  [MESSAGE_ID.allowedFast]: 5,
};

/** The messages that name chunks: without a geometry, skipped. */
const CHUNK_MESSAGES = new Set<number>([
  MESSAGE_ID.have,
  MESSAGE_ID.bitfield,
  MESSAGE_ID.request,
  MESSAGE_ID.piece,
  MESSAGE_ID.cancel,
]);

const PROTOCOL_BYTES = Buffer.from(PROTOCOL_NAME, 'latin1');
const EMPTY = Buffer.alloc(0);

type State =
  | { kind: 'handshake' }
  | { kind: 'length' }
  | { kind: 'id'; length: number }
  | { kind: 'body'; id: number; length: number }
  | { kind: 'skip'; remaining: number };

/**
 * Streaming BEP 3 decoder. Feed it bytes as TCP delivers them; it returns the
 * complete messages they finish. Partial frames live only here; "need more
 * bytes" is an empty result, never an exception. Every limit is checked on the
 * header before the body is buffered, and a violation throws a WireError and
 * leaves the decoder failed: the connection must close, never resync.
 */
export class FrameDecoder {
  /** Messages with an id we do not know, skipped without buffering their body. */
  unknownSkipped = 0;

  private readonly geometry: Geometry | undefined;
  private readonly infoHash: Uint8Array | undefined;
  private readonly maxBlockLength: number;
  private readonly maxMessageLength: number;
  private readonly bitfieldLength: number;
  private state: State;
  private readonly queue: Buffer[] = [];
  private queued = 0;
  private failure: WireError | undefined;
  private readonly reuseBlockBuffer: boolean;
  /** The buffer reused for pieces put together from several reads (reuseBlockBuffer). */
  private blockBuffer: Buffer | undefined;

  constructor(options: FrameDecoderOptions) {
    this.geometry = options.geometry;
    this.infoHash = options.infoHash;
    this.maxBlockLength = options.maxBlockLength ?? MAX_BLOCK_LENGTH;
    this.reuseBlockBuffer = options.reuseBlockBuffer === true;
    this.bitfieldLength = Bitfield.byteLength(this.geometry?.pieceCount ?? MAX_PIECE_COUNT);
    this.maxMessageLength = Math.max(
      9 + this.maxBlockLength,
      1 + this.bitfieldLength,
      2 + MAX_EXTENDED_PAYLOAD,
    );
    this.state = options.expectHandshake === false ? { kind: 'length' } : { kind: 'handshake' };
  }

  /** Bytes received but not yet part of a returned message. */
  get buffered(): number {
    return this.queued;
  }

  push(chunk: Uint8Array): Message[] {
    if (this.failure) throw this.failure;
    if (chunk.length > 0) {
      this.queue.push(
        Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length),
      );
      this.queued += chunk.length;
    }
    const out: Message[] = [];
    try {
      for (;;) {
        const message = this.step();
        if (message === undefined) break;
        if (message !== null) out.push(message);
      }
    } catch (err) {
      this.failure =
        err instanceof WireError ? err : new WireError('ERR_MESSAGE_LENGTH', String(err));
      this.queue.length = 0;
      this.queued = 0;
      throw this.failure;
    }
    return out;
  }

  /** One state transition: a message, null (progress, no message) or undefined (need bytes). */
  private step(): Message | null | undefined {
    const state = this.state;
    switch (state.kind) {
      case 'handshake':
        return this.readHandshake();
      case 'length': {
        if (this.queued < 4) return undefined;
        const length = this.take(4).readUInt32BE(0);
        if (length === 0) return { type: 'keepAlive' };
        if (length > this.maxMessageLength) {
          throw new WireError(
            'ERR_FRAME_TOO_LARGE',
            `message length ${length} exceeds the limit of ${this.maxMessageLength}`,
          );
        }
        this.state = { kind: 'id', length };
        return null;
      }
      case 'id': {
        if (this.queued < 1) return undefined;
        const id = this.take(1)[0]!;
        this.checkLength(id, state.length);
        const bodyLength = state.length - 1;
        const known =
          id in FIXED_LENGTH ||
          id === MESSAGE_ID.bitfield ||
          id === MESSAGE_ID.piece ||
          id === MESSAGE_ID.extended;
        if (!known || (this.geometry === undefined && CHUNK_MESSAGES.has(id))) {
          this.unknownSkipped++;
          this.state =
            bodyLength > 0 ? { kind: 'skip', remaining: bodyLength } : { kind: 'length' };
          return null;
        }
        this.state = { kind: 'body', id, length: bodyLength };
        return null;
      }
      case 'body': {
        if (this.queued < state.length) return undefined;
        const body =
          state.id === MESSAGE_ID.piece && this.reuseBlockBuffer
            ? this.take(state.length, this.blockBufferFor(state.length))
            : this.take(state.length);
        this.state = { kind: 'length' };
        return this.parseBody(state.id, body);
      }
      case 'skip': {
        if (this.queued === 0) return undefined;
        const n = Math.min(state.remaining, this.queued);
        this.discard(n);
        this.state =
          n === state.remaining
            ? { kind: 'length' }
            : { kind: 'skip', remaining: state.remaining - n };
        return null;
      }
    }
  }

  private readHandshake(): Message | undefined {
    // Reject a wrong protocol string as soon as its bytes arrive, not after 68.
    const seen = Math.min(this.queued, 1 + PROTOCOL_BYTES.length);
    if (seen > 0) {
      const head = this.peek(seen);
      if (head[0] !== PROTOCOL_BYTES.length) {
        throw new WireError(
          'ERR_HANDSHAKE',
          `handshake protocol length is ${head[0]}, expected 19`,
        );
      }
      if (!head.subarray(1).equals(PROTOCOL_BYTES.subarray(0, seen - 1))) {
        throw new WireError('ERR_HANDSHAKE', 'handshake protocol is not "BitTorrent protocol"');
      }
    }
    if (this.queued < HANDSHAKE_LENGTH) return undefined;
    const bytes = Buffer.from(this.take(HANDSHAKE_LENGTH));
    const infoHash = bytes.subarray(28, 48);
    if (this.infoHash && !infoHash.equals(this.infoHash)) {
      throw new WireError(
        'ERR_INFO_HASH',
        `handshake is for info-hash ${infoHash.toString('hex')}, not ours`,
      );
    }
    this.state = { kind: 'length' };
    return {
      type: 'handshake',
      reserved: bytes.subarray(20, 28),
      infoHash,
      peerId: bytes.subarray(48, 68),
    };
  }

  private checkLength(id: number, length: number): void {
    const fixed = FIXED_LENGTH[id];
    if (fixed !== undefined && length !== fixed) {
      throw new WireError(
        'ERR_MESSAGE_LENGTH',
        `message id ${id} has length ${length}, expected ${fixed}`,
      );
    }
    if (id === MESSAGE_ID.bitfield && this.geometry === undefined) {
      if (length > 1 + this.bitfieldLength)
        throw new WireError('ERR_BITFIELD_LENGTH', `bitfield of ${length - 1} bytes is too long`);
    } else if (id === MESSAGE_ID.bitfield && length !== 1 + this.bitfieldLength) {
      throw new WireError(
        'ERR_BITFIELD_LENGTH',
        `bitfield is ${length - 1} bytes, expected ${this.bitfieldLength} for ${this.geometry!.pieceCount} chunks`,
      );
    }
    if (id === MESSAGE_ID.extended && (length < 2 || length > 2 + MAX_EXTENDED_PAYLOAD)) {
      throw new WireError(
        'ERR_MESSAGE_LENGTH',
        `extended message of ${length - 1} bytes is out of 1..${1 + MAX_EXTENDED_PAYLOAD}`,
      );
    }
    if (id === MESSAGE_ID.piece && (length <= 9 || length > 9 + this.maxBlockLength)) {
      throw new WireError(
        'ERR_REQUEST_LENGTH',
        `piece block of ${length - 9} bytes is out of bounds`,
      );
    }
  }

  private parseBody(id: number, body: Buffer): Message {
    switch (id) {
      case MESSAGE_ID.choke:
        return { type: 'choke' };
      case MESSAGE_ID.unchoke:
        return { type: 'unchoke' };
      case MESSAGE_ID.interested:
        return { type: 'interested' };
      case MESSAGE_ID.notInterested:
        return { type: 'notInterested' };
      case MESSAGE_ID.have:
        return { type: 'have', index: this.checkIndex(body.readUInt32BE(0)) };
      case MESSAGE_ID.suggest:
        return { type: 'suggest', index: this.checkIndex(body.readUInt32BE(0)) };
      case MESSAGE_ID.allowedFast:
        return { type: 'allowedFast', index: this.checkIndex(body.readUInt32BE(0)) };
      case MESSAGE_ID.haveAll:
        return { type: 'haveAll' };
      case MESSAGE_ID.haveNone:
        return { type: 'haveNone' };
      case MESSAGE_ID.bitfield:
        // fromBytes checks the spare bits; the length was checked on the header.
        Bitfield.fromBytes(body, this.geometry!.pieceCount);
        return { type: 'bitfield', bytes: body };
      case MESSAGE_ID.request:
      case MESSAGE_ID.cancel:
      case MESSAGE_ID.reject: {
        const index = this.checkIndex(body.readUInt32BE(0));
        const begin = body.readUInt32BE(4);
        const length = body.readUInt32BE(8);
        if (length === 0 || length > this.maxBlockLength) {
          throw new WireError(
            'ERR_REQUEST_LENGTH',
            `request length ${length} is out of 1..${this.maxBlockLength}`,
          );
        }
        this.checkRange(index, begin, length);
        const type =
          id === MESSAGE_ID.request ? 'request' : id === MESSAGE_ID.cancel ? 'cancel' : 'reject';
        return { type, index, begin, length };
      }
      case MESSAGE_ID.extended:
        // A copy: the body may be a view of a read buffer the socket reuses, and handlers keep payloads.
        return { type: 'extended', id: body[0]!, payload: Buffer.from(body.subarray(1)) };
      default: {
        const index = this.checkIndex(body.readUInt32BE(0));
        const begin = body.readUInt32BE(4);
        const block = body.subarray(8);
        this.checkRange(index, begin, block.length);
        return { type: 'piece', index, begin, block };
      }
    }
  }

  private checkIndex(index: number): number {
    if (index >= this.geometry!.pieceCount) {
      throw new WireError(
        'ERR_PIECE_INDEX',
        `chunk ${index} is out of range (${this.geometry!.pieceCount} chunks)`,
      );
    }
    return index;
  }

  private checkRange(index: number, begin: number, length: number): void {
    const size = this.geometry!.pieceSize(index);
    if (begin + length > size) {
      throw new WireError(
        'ERR_BLOCK_RANGE',
        `block ${begin}+${length} runs past chunk ${index} of ${size} bytes`,
      );
    }
  }

  /** The first `n` queued bytes without consuming them (n is small). */
  private peek(n: number): Buffer {
    const first = this.queue[0]!;
    if (first.length >= n) return first.subarray(0, n);
    return Buffer.concat(this.queue, n);
  }

  /** The reused buffer, grown to `n` bytes (at most a piece message: maxBlockLength + 8). */
  private blockBufferFor(n: number): Buffer {
    if (!this.blockBuffer || this.blockBuffer.length < n)
      this.blockBuffer = Buffer.allocUnsafeSlow(n);
    return this.blockBuffer;
  }

  /**
   * Consumes `n` bytes: a view when they sit in one read, one copy when they
   * straddle reads (into `into` when given, else a new buffer).
   */
  private take(n: number, into?: Buffer): Buffer {
    // A zero-length body (choke, interested, an empty bitfield…) may end the read: the queue is empty.
    if (n === 0) return EMPTY;
    const first = this.queue[0]!;
    if (first.length > n) {
      this.queue[0] = first.subarray(n);
      this.queued -= n;
      return first.subarray(0, n);
    }
    if (first.length === n) {
      this.queue.shift();
      this.queued -= n;
      return first;
    }
    const out = into ? into.subarray(0, n) : Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const head = this.queue[0]!;
      const want = n - filled;
      if (head.length <= want) {
        out.set(head, filled);
        filled += head.length;
        this.queue.shift();
      } else {
        out.set(head.subarray(0, want), filled);
        this.queue[0] = head.subarray(want);
        filled += want;
      }
    }
    this.queued -= n;
    return out;
  }

  private discard(n: number): void {
    let left = n;
    while (left > 0) {
      const head = this.queue[0]!;
      if (head.length <= left) {
        left -= head.length;
        this.queue.shift();
      } else {
        this.queue[0] = head.subarray(left);
        left = 0;
      }
    }
    this.queued -= n;
  }
}
