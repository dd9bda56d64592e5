import type { Duplex } from 'node:stream';
import { formatEndpoint } from '../address.js';
import { type SwarmdropError, WireError } from '../errors.js';
import type { Metainfo } from '../metainfo.js';
import type { WireEncryption, WireTransport } from '../mse.js';
import { listenPortOf } from '../peer-id.js';
import { RateLimiter } from '../rate/rate-limiter.js';
import { UploadFloor, type UploadFloorSettings } from '../rate/upload-floor.js';
import type { Timer, TimerClock } from '../time/clock.js';
import { FrameDecoder } from '../wire/decoder.js';
import { encodeMessage, encodePieceHeader } from '../wire/encode.js';
import type { Handshake, Message } from '../wire/messages.js';
import { systemClock } from './clock.js';
import type { MessageWire, WireClose } from './message-wire.js';

export type { WireClose } from './message-wire.js';

export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
export const DEFAULT_IDLE_TIMEOUT_MS = 120_000;
export const DEFAULT_KEEPALIVE_MS = 60_000;
/** The soonest the idle and keep-alive timer looks again (as the 50 ms floor of its old interval). */
const MIN_CHECK_MS = 50;

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
  /**
   * The torrent: its info-hash for the handshake, its geometry for the
   * decoder's checks. A connection that only fetches the metadata (BEP 9)
   * has none yet: it gives `infoHash` alone, and the messages about chunks
   * are skipped.
   */
  readonly metainfo?: Metainfo;
  /** The info-hash when there is no metainfo yet. */
  readonly infoHash?: Uint8Array;
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
  /** Times the handshake, idleness, keep-alives and the minimum upload rate (default systemClock). */
  readonly clock?: TimerClock;
  /** The process's shared rate limits (--upload-limit, --download-limit); none by default. */
  readonly limits?: WireLimits;
  /**
   * The minimum upload rate while we hold data for the remote (UploadFloor's
   * defaults when omitted); false for none.
   */
  readonly minUpload?: UploadFloorSettings | false;
  /** The 8 reserved bytes of our handshake (default all zero): the extensions we offer. */
  readonly reserved?: Uint8Array;
}

/**
 * One token bucket per direction, shared by every connection of a process.
 * Every byte of the BitTorrent wire counts (handshake, messages, pieces;
 * not the TCP, UDP or µTP headers below, nor HTTP).
 */
export interface WireLimits {
  /** Pieces wait for tokens before they are written (`needsDrain`, `drained()`). */
  readonly upload?: RateLimiter | undefined;
  /** Reading pauses while the bucket is in debt, so the transport's window holds the sender back. */
  readonly download?: RateLimiter | undefined;
}

/**
 * The limits of one process from its options: a bucket for each direction
 * with a limit above 0, none for 0 or undefined (no limit).
 */
export function createWireLimits(options: {
  readonly uploadLimitBytesPerSecond?: number | undefined;
  readonly downloadLimitBytesPerSecond?: number | undefined;
  readonly clock: TimerClock;
}): WireLimits {
  const bucket = (bytesPerSecond: number | undefined, field: string) => {
    if (bytesPerSecond === undefined || bytesPerSecond === 0) return undefined;
    if (!(bytesPerSecond > 0) || !Number.isFinite(bytesPerSecond))
      throw new RangeError(
        `${field} must be 0 (no limit) or a positive number, not ${bytesPerSecond}`,
      );
    return new RateLimiter({ bytesPerSecond, clock: options.clock });
  };
  return {
    upload: bucket(options.uploadLimitBytesPerSecond, 'uploadLimitBytesPerSecond'),
    download: bucket(options.downloadLimitBytesPerSecond, 'downloadLimitBytesPerSecond'),
  };
}

const RESERVED = new Uint8Array(8);

/**
 * Wires whose socket is corked until the end of this turn of the event
 * loop. The small messages a wire sends in one turn (the `have`s and
 * requests that follow a stored chunk) go out in one writev, or with the
 * next piece, which is sent at once (see sendPiece):
 * on loopback each write(2) also runs the receiver's half of TCP, and a
 * write per message was 0.6 of a 256 MiB download's 3.3 CPU-s (--cpu-prof).
 */
const corkedWires = new Set<PeerWire>();
let uncorkScheduled = false;

function uncorkAll(): void {
  uncorkScheduled = false;
  const wires = [...corkedWires];
  corkedWires.clear();
  for (const wire of wires) wire.flush();
}

/**
 * One BitTorrent connection over a socket: sends our handshake, decodes the
 * remote's frames, and closes itself on a protocol violation, a silent
 * handshake, idleness, or an upload below the minimum rate while data waits
 * for the remote (a reader that keeps our socket full and takes nothing).
 * Never throws into the event loop; every ending is reported once through
 * `closed`.
 */
export class PeerWire implements MessageWire {
  readonly socket: WireSocket;
  readonly remoteHost: string;
  readonly remotePort: number;
  readonly encryption: WireEncryption;
  readonly transport: WireTransport;
  remoteHandshake: Handshake | undefined;
  /** Called once with the remote's handshake, before any message that follows it. */
  onHandshake: (handshake: Handshake) => void = () => {};
  /**
   * Called for each message after the handshake. A piece's `block` may be a
   * buffer the decoder reuses: it is valid during this call only (copy it).
   */
  onMessage: (message: Message) => void = () => {};
  /** Resolves once, when the connection has ended. */
  readonly closed: Promise<WireClose>;

  private readonly decoder: FrameDecoder;
  private readonly clock: TimerClock;
  private readonly handshakeTimer: Timer;
  /** The next look at idleness and keep-alives: set for when the first of them is due. */
  private keepAliveTimer: Timer | undefined;
  private resolveClosed!: (close: WireClose) => void;
  private resolveHandshake!: (handshake: Handshake) => void;
  private rejectHandshake!: (err: Error) => void;
  private readonly handshake: Promise<Handshake>;
  private ended = false;
  private drainWaiters: Array<() => void> = [];
  /** Corked until the end of this turn (see corkedWires). */
  private corked = false;
  private lastReceivedAt: number;
  private readonly limits: WireLimits;
  /** Set while reading is paused for the download limit; cancels the wait. */
  private throttled: (() => void) | undefined;
  /** Waits for the upload limit's tokens under way (for close). */
  private readonly tokenWaits = new Set<() => void>();
  /** Bytes handed to the socket; less what it still buffers, what the remote took. */
  private bytesWritten = 0;
  /** The minimum upload rate's policy (none with minUpload: false), and its sampling timer while data waits. */
  private readonly floor: UploadFloor | undefined;
  private floorTimer: Timer | undefined;

  constructor(options: PeerWireOptions) {
    const infoHash = options.metainfo?.infoHash ?? options.infoHash;
    if (!infoHash) throw new TypeError('PeerWire needs a metainfo or an info-hash');
    this.socket = options.socket;
    this.remoteHost = options.socket.remoteAddress ?? 'unknown';
    this.remotePort = options.socket.remotePort ?? 0;
    this.encryption = options.encryption ?? 'plaintext';
    this.transport = options.transport ?? 'tcp';
    this.limits = options.limits ?? {};
    this.decoder = new FrameDecoder({
      geometry: options.metainfo?.geometry,
      infoHash,
      // Messages are handed on one by one as they are decoded; a piece's block is valid during its onMessage.
      reuseBlockBuffer: true,
    });
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    this.handshake = new Promise((resolve, reject) => {
      this.resolveHandshake = resolve;
      this.rejectHandshake = reject;
    });
    this.handshake.catch(() => {});

    const clock = options.clock ?? systemClock;
    this.clock = clock;
    this.lastReceivedAt = clock.now();
    const timeoutMs = options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    this.handshakeTimer = clock.setTimeout(
      () => this.close(`no handshake within ${timeoutMs} ms`),
      timeoutMs,
    );
    // Idle means nothing *received*: socket.setTimeout would be reset by our own keep-alives.
    const idleMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    const keepAliveMs = options.keepAliveMs ?? DEFAULT_KEEPALIVE_MS;
    let lastKeepAlive = clock.now();
    // One timer, set for whichever is due first: the next keep-alive or the idle deadline. A
    // read moves the deadline on without touching the timer (reads are the hot path); the timer
    // then finds it not yet due and waits for the new one. An idle connection wakes once a
    // keep-alive (it looked four times as often before).
    const check = () => {
      if (this.ended) return;
      const now = clock.now();
      // While we hold reading back for the download limit, the silence is ours, not the remote's.
      if (this.throttled) this.lastReceivedAt = now;
      if (now - this.lastReceivedAt >= idleMs) {
        this.close(`idle: nothing received for ${idleMs} ms`);
        return;
      }
      if (now - lastKeepAlive >= keepAliveMs) {
        lastKeepAlive = now;
        this.send({ type: 'keepAlive' });
      }
      const dueMs = Math.min(this.lastReceivedAt + idleMs, lastKeepAlive + keepAliveMs) - now;
      this.keepAliveTimer = clock.setTimeout(check, Math.max(MIN_CHECK_MS, dueMs));
    };
    this.keepAliveTimer = clock.setTimeout(
      check,
      Math.max(MIN_CHECK_MS, Math.min(keepAliveMs, idleMs)),
    );
    if (options.minUpload !== false) {
      this.floor = new UploadFloor({ ...options.minUpload, clock });
    }
    this.socket.setNoDelay?.(true);
    this.socket.on('data', (bytes: Buffer) => this.receive(bytes));
    this.socket.on('drain', () => this.flushDrainWaiters());
    this.socket.on('error', (err) => this.close(`socket error: ${err.message}`));
    this.socket.on('close', () => this.close('closed by remote'));
    this.write(
      encodeMessage({
        type: 'handshake',
        reserved: options.reserved ?? RESERVED,
        infoHash,
        peerId: options.peerId,
      }),
    );
    // Deferred so the caller can attach onHandshake/onMessage before the first bytes are decoded.
    const initial = options.initial;
    queueMicrotask(() => {
      if (initial && initial.length > 0) this.receive(initial);
      if (!this.ended && !this.throttled && this.socket.isPaused()) this.socket.resume();
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

  /**
   * How logs name the remote: its listening address when known, else the
   * socket's. Kept once the handshake is in: every log line of the
   * connection asks for it, and the peer id's port is a regex away.
   */
  get label(): string {
    if (this.labelAfterHandshake !== undefined) return this.labelAfterHandshake;
    const label = formatEndpoint(this.remoteHost, this.remoteListenPort ?? this.remotePort);
    if (this.remoteHandshake) this.labelAfterHandshake = label;
    return label;
  }
  private labelAfterHandshake: string | undefined;

  get isClosed(): boolean {
    return this.ended;
  }

  /** Bytes of ours the remote has taken: what left our socket buffer. */
  get bytesTaken(): number {
    return this.bytesWritten - this.socket.writableLength;
  }

  /**
   * Sends one message; false means the socket buffer is full: wait for
   * `drained()`. Messages other than pieces are small and never wait for the
   * upload limit, but their bytes count against it.
   */
  send(message: Message): boolean {
    if (this.ended) return false;
    return this.write(encodeMessage(message));
  }

  /**
   * Sends a piece without copying the block into the frame. False when the
   * socket is full or the upload limit is in debt: wait for `drained()`
   * before the next piece.
   */
  sendPiece(index: number, begin: number, block: Uint8Array): boolean {
    if (this.ended) return false;
    // Header and block leave at once, in one writev with the small messages this turn
    // corked before them: held until the end of the turn, the socket would look full after
    // one piece (its buffer past the high-water mark), and a connection would send one
    // piece per turn of the event loop.
    this.write(encodePieceHeader(index, begin, block.length));
    this.write(block);
    this.flush();
    return !this.needsDrain;
  }

  /** True when the next piece must wait: the socket buffer is full, or the upload limit is in debt. */
  get needsDrain(): boolean {
    return this.socket.writableNeedDrain || (this.limits.upload?.blocked ?? false);
  }

  /**
   * Runs `send`s as one burst. Every write is already held until the end of
   * the turn (see write), so this only marks where a caller meant one.
   */
  batch(fn: () => void): void {
    fn();
  }

  /**
   * Resolves when the socket can take more and the upload limit has given
   * this connection its turn, or the connection has ended. After a turn the
   * caller sends one piece even if others have spent the tokens meanwhile
   * (the limiter queues turns oldest first, so no connection starves).
   */
  async drained(): Promise<void> {
    while (!this.ended && this.socket.writableNeedDrain)
      await new Promise<void>((resolve) => this.drainWaiters.push(resolve));
    const limit = this.limits.upload;
    if (this.ended || !limit?.blocked) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.tokenWaits.delete(done);
        cancel();
        resolve();
      };
      const cancel = limit.whenAvailable(done);
      this.tokenWaits.add(done);
    });
  }

  close(reason: string, error?: SwarmdropError | Error): void {
    if (this.ended) return;
    this.ended = true;
    // What this turn wrote goes out before the socket is destroyed, as it did when each write went at once.
    this.flush();
    this.handshakeTimer.cancel();
    this.keepAliveTimer?.cancel();
    this.floorTimer?.cancel();
    this.socket.destroy();
    this.flushDrainWaiters();
    this.throttled?.();
    this.throttled = undefined;
    for (const done of [...this.tokenWaits]) done();
    this.rejectHandshake(new Error(reason));
    this.resolveClosed(error ? { reason, error } : { reason });
  }

  private flushDrainWaiters(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const wake of waiters) wake();
  }

  /**
   * Samples the minimum upload rate while anything we wrote is still
   * waiting for the remote; the timer stops once nothing waits, so an idle
   * connection does not wake for it, and the next write starts it again.
   */
  private watchUpload(): void {
    const floor = this.floor;
    if (!floor || this.floorTimer || this.ended) return;
    this.floorTimer = this.clock.setInterval(() => {
      const waiting = this.socket.writableLength > 0;
      const reason = floor.sample(this.bytesTaken, waiting);
      if (reason !== undefined) this.close(reason);
      else if (!waiting) {
        this.floorTimer?.cancel();
        this.floorTimer = undefined;
      }
    }, floor.sampleEveryMs);
  }

  private write(bytes: Uint8Array): boolean {
    this.bytesWritten += bytes.length;
    this.watchUpload();
    this.limits.upload?.consume(bytes.length);
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      corkedWires.add(this);
      if (!uncorkScheduled) {
        uncorkScheduled = true;
        setImmediate(uncorkAll);
      }
    }
    return this.socket.write(bytes);
  }

  /** Sends what this turn's writes left corked (see corkedWires); the event loop calls it. */
  flush(): void {
    if (!this.corked) return;
    this.corked = false;
    corkedWires.delete(this);
    if (!this.socket.destroyed) this.socket.uncork();
  }

  /** Pauses reading until the download limit is out of debt: the transport's window then holds the sender back. */
  private throttleReading(limit: RateLimiter): void {
    this.socket.pause();
    this.throttled = limit.whenAvailable(() => {
      this.throttled = undefined;
      if (!this.ended) this.socket.resume();
    });
  }

  private receive(bytes: Uint8Array): void {
    if (this.ended) return;
    this.lastReceivedAt = this.clock.now();
    const limit = this.limits.download;
    if (limit) {
      limit.consume(bytes.length);
      if (limit.blocked && !this.throttled) this.throttleReading(limit);
    }
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
        this.handshakeTimer.cancel();
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
