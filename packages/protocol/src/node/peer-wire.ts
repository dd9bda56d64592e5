import type { Duplex } from 'node:stream';
import { formatEndpoint } from '../address.js';
import { type SwarmdropError, WireError } from '../errors.js';
import type { Metainfo } from '../metainfo.js';
import type { WireEncryption, WireTransport } from '../mse.js';
import { listenPortOf } from '../peer-id.js';
import { FrameDecoder } from '../wire/decoder.js';
import { encodeMessage, encodePieceHeader } from '../wire/encode.js';
import type { Handshake, Message } from '../wire/messages.js';

export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
export const DEFAULT_IDLE_TIMEOUT_MS = 120_000;
export const DEFAULT_KEEPALIVE_MS = 60_000;

/**
 * What PeerWire needs from a connection. A net.Socket is one; so is an
 * MseStream (RC4 over a socket) and a UtpStream.
 */
export type WireSocket = Duplex & {
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
  setNoDelay?(noDelay?: boolean): unknown;
};

export interface PeerWireOptions {
  readonly socket: WireSocket;
  readonly metainfo: Metainfo;
  /** Our 20-byte peer id. */
  readonly peerId: Uint8Array;
  /** Bytes already read from the socket (the first read, used to tell BitTorrent from HTTP). */
  readonly initial?: Uint8Array;
  /** What the transport below encrypts with, for the logs (default plaintext). */
  readonly encryption?: WireEncryption;
  /** What the connection runs over, for the logs (default tcp). */
  readonly transport?: WireTransport;
  readonly handshakeTimeoutMs?: number;
  readonly idleTimeoutMs?: number;
  readonly keepAliveMs?: number;
}

export interface WireClose {
  /** One line for the log: why the connection ended. */
  readonly reason: string;
  /** Set when the remote broke the protocol. */
  readonly error?: SwarmdropError | Error;
}

const RESERVED = new Uint8Array(8);

/**
 * One BitTorrent connection over a socket: sends our handshake, decodes the
 * remote's frames, and closes itself on a protocol violation, a silent
 * handshake, or idleness. Never throws into the event loop; every ending is
 * reported once through `closed`.
 */
export class PeerWire {
  readonly socket: WireSocket;
  readonly remoteHost: string;
  readonly remotePort: number;
  readonly encryption: WireEncryption;
  readonly transport: WireTransport;
  remoteHandshake: Handshake | undefined;
  /** Called once with the remote's handshake, before any message that follows it. */
  onHandshake: (handshake: Handshake) => void = () => {};
  /** Called for each message after the handshake. */
  onMessage: (message: Message) => void = () => {};
  /** Resolves once, when the connection has ended. */
  readonly closed: Promise<WireClose>;

  private readonly decoder: FrameDecoder;
  private readonly handshakeTimer: NodeJS.Timeout;
  private readonly keepAliveTimer: NodeJS.Timeout;
  private resolveClosed!: (close: WireClose) => void;
  private resolveHandshake!: (handshake: Handshake) => void;
  private rejectHandshake!: (err: Error) => void;
  private readonly handshake: Promise<Handshake>;
  private ended = false;
  private drainWaiters: Array<() => void> = [];
  private lastReceivedAt = Date.now();

  constructor(options: PeerWireOptions) {
    this.socket = options.socket;
    this.remoteHost = options.socket.remoteAddress ?? 'unknown';
    this.remotePort = options.socket.remotePort ?? 0;
    this.encryption = options.encryption ?? 'plaintext';
    this.transport = options.transport ?? 'tcp';
    this.decoder = new FrameDecoder({
      geometry: options.metainfo.geometry,
      infoHash: options.metainfo.infoHash,
    });
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    this.handshake = new Promise((resolve, reject) => {
      this.resolveHandshake = resolve;
      this.rejectHandshake = reject;
    });
    this.handshake.catch(() => {});

    const timeoutMs = options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    this.handshakeTimer = setTimeout(
      () => this.close(`no handshake within ${timeoutMs} ms`),
      timeoutMs,
    ).unref();
    // Idle means nothing *received*: socket.setTimeout would be reset by our own keep-alives.
    const idleMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    const keepAliveMs = options.keepAliveMs ?? DEFAULT_KEEPALIVE_MS;
    let lastKeepAlive = Date.now();
    this.keepAliveTimer = setInterval(
      () => {
        const now = Date.now();
        if (now - this.lastReceivedAt >= idleMs) {
          this.close(`idle: nothing received for ${idleMs} ms`);
        } else if (now - lastKeepAlive >= keepAliveMs) {
          lastKeepAlive = now;
          this.send({ type: 'keepAlive' });
        }
      },
      Math.max(50, Math.min(keepAliveMs, idleMs) / 4),
    ).unref();
    this.socket.setNoDelay?.(true);
    this.socket.on('data', (bytes: Buffer) => this.receive(bytes));
    this.socket.on('drain', () => this.flushDrainWaiters());
    this.socket.on('error', (err) => this.close(`socket error: ${err.message}`));
    this.socket.on('close', () => this.close('closed by remote'));
    this.socket.write(
      encodeMessage({
        type: 'handshake',
        reserved: RESERVED,
        infoHash: options.metainfo.infoHash,
        peerId: options.peerId,
      }),
    );
    // Deferred so the caller can attach onHandshake/onMessage before the first bytes are decoded.
    const initial = options.initial;
    queueMicrotask(() => {
      if (initial && initial.length > 0) this.receive(initial);
      if (!this.ended && this.socket.isPaused()) this.socket.resume();
    });
  }

  /** Resolves with the remote's handshake; rejects if the connection ends first. */
  ready(): Promise<Handshake> {
    return this.handshake;
  }

  /** The remote's listening port from a swarmdrop peer id, if it sent one. */
  get remoteListenPort(): number | undefined {
    return this.remoteHandshake ? listenPortOf(this.remoteHandshake.peerId) : undefined;
  }

  /** How logs name the remote: its listening address when known, else the socket's. */
  get label(): string {
    return formatEndpoint(this.remoteHost, this.remoteListenPort ?? this.remotePort);
  }

  get isClosed(): boolean {
    return this.ended;
  }

  /** Sends one message; false means the socket buffer is full: wait for `drained()`. */
  send(message: Message): boolean {
    if (this.ended) return false;
    return this.socket.write(encodeMessage(message));
  }

  /** Sends a piece without copying the block into the frame. */
  sendPiece(index: number, begin: number, block: Uint8Array): boolean {
    if (this.ended) return false;
    this.socket.cork();
    this.socket.write(encodePieceHeader(index, begin, block.length));
    this.socket.write(block);
    this.socket.uncork();
    return !this.socket.writableNeedDrain;
  }

  /** Runs `send`s inside one corked write, so a burst of messages costs one syscall. */
  batch(fn: () => void): void {
    this.socket.cork();
    try {
      fn();
    } finally {
      this.socket.uncork();
    }
  }

  /** Resolves when the socket can take more, or the connection has ended. */
  drained(): Promise<void> {
    if (this.ended || !this.socket.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  close(reason: string, error?: SwarmdropError | Error): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.handshakeTimer);
    clearInterval(this.keepAliveTimer);
    this.socket.destroy();
    this.flushDrainWaiters();
    this.rejectHandshake(new Error(reason));
    this.resolveClosed(error ? { reason, error } : { reason });
  }

  private flushDrainWaiters(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const wake of waiters) wake();
  }

  private receive(bytes: Uint8Array): void {
    if (this.ended) return;
    this.lastReceivedAt = Date.now();
    let messages: Message[];
    try {
      messages = this.decoder.push(bytes);
    } catch (err) {
      const error =
        err instanceof WireError ? err : new WireError('ERR_MESSAGE_LENGTH', String(err));
      this.close(`${error.code}: ${error.message}`, error);
      return;
    }
    for (const message of messages) {
      if (this.ended) return;
      if (message.type === 'handshake') {
        clearTimeout(this.handshakeTimer);
        this.remoteHandshake = message;
        try {
          this.onHandshake(message);
        } catch (err) {
          this.close(`handler failed: ${(err as Error).message}`, err as Error);
          return;
        }
        this.resolveHandshake(message);
        continue;
      }
      try {
        this.onMessage(message);
      } catch (err) {
        this.close(`handler failed: ${(err as Error).message}`, err as Error);
        return;
      }
    }
  }
}
