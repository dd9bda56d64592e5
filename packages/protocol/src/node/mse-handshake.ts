import { createDiffieHellman, type DiffieHellman, randomBytes, randomInt } from 'node:crypto';
import { Duplex } from 'node:stream';
import { SwarmdropError } from '../errors.js';
import {
  CRYPTO_PLAINTEXT,
  CRYPTO_RC4,
  cryptoProvide,
  cryptoSelect,
  type EncryptionPolicy,
  MSE_GENERATOR,
  MSE_KEY_LENGTH,
  MSE_MAX_PAD,
  MSE_PRIME_HEX,
  MSE_VC,
  mseCiphers,
  padKey,
  type Rc4,
  req1Hash,
  req2FromReq23,
  req2Hash,
  req23Hash,
  type WireEncryption,
} from '../mse.js';
import type { WireSocket } from './peer-wire.js';

export const DEFAULT_MSE_TIMEOUT_MS = 10_000;
/** Largest initial payload (IA) we take from an initiator: a handshake and some messages. */
export const MAX_MSE_INITIAL_PAYLOAD = 16_384;
/**
 * Most bytes a responder holds for a handshake before it is done: all an
 * initiator may send before our reply (Ya, PadA, the two hashes, VC,
 * crypto_provide, PadC, len(IA), IA: 17,560 bytes), plus 16 KiB for a
 * client that sends its first messages without waiting. A half-open
 * handshake holds no more, however much its remote sends.
 */
export const MAX_MSE_RESPONDER_BYTES =
  MSE_KEY_LENGTH +
  MSE_MAX_PAD +
  20 +
  20 +
  8 +
  4 +
  2 +
  MSE_MAX_PAD +
  2 +
  MAX_MSE_INITIAL_PAYLOAD +
  16_384;
/** Random padding we send in PadA/PadB: enough to vary the length, less than the spec's 512. */
const OUR_MAX_PAD = 64;

/** An MSE handshake failed: the remote is not speaking MSE, or not for our torrent. */
export class MseError extends SwarmdropError {}

export interface MseResult {
  /** The connection to run PeerWire over: the socket itself for plaintext, an RC4 stream for rc4. */
  readonly socket: WireSocket;
  /** Payload bytes already received (plaintext), for PeerWire's `initial`. */
  readonly initial: Buffer;
  readonly encryption: WireEncryption;
}

export interface MseOptions {
  readonly infoHash: Uint8Array;
  readonly policy: EncryptionPolicy;
  readonly timeoutMs?: number;
  /** Initiator only: crypto_provide bits to offer instead of the policy's (tests play stock clients). */
  readonly provide?: number;
}

/**
 * Runs the initiator's side (A) on a connected socket. Resolves with the
 * stream to run PeerWire over; rejects with an MseError (and destroys the
 * socket) when the remote does not complete the handshake.
 */
export async function mseInitiate(socket: WireSocket, options: MseOptions): Promise<MseResult> {
  const reader = new HandshakeReader(socket, Buffer.alloc(0), options.timeoutMs);
  try {
    const keys = new MseKeyPair();
    socket.write(Buffer.concat([keys.publicKey, randomBytes(randomInt(OUR_MAX_PAD + 1))]));
    const yb = await reader.take(MSE_KEY_LENGTH, 'the remote public key (Yb)');
    const secret = keys.secret(yb);
    const { encrypt, decrypt } = mseCiphers(secret, options.infoHash, true);
    // VC, crypto_provide, len(PadC)=0, len(IA)=0: our handshake goes in the payload stream.
    const provide = options.provide ?? cryptoProvide(options.policy);
    const offer = Buffer.alloc(8 + 4 + 2 + 2);
    offer.writeUInt32BE(provide, 8);
    socket.write(
      Buffer.concat([req1Hash(secret), req23Hash(options.infoHash, secret), encrypt.update(offer)]),
    );
    // B's reply starts after PadB with ENCRYPT(VC): find it by encrypting VC ourselves.
    const marker = decrypt.process(MSE_VC);
    await reader.scan(marker, MSE_MAX_PAD, 'the encrypted verification constant');
    const head = decrypt.update(await reader.take(6, 'crypto_select'));
    const select = head.readUInt32BE(0);
    const padD = head.readUInt16BE(4);
    if (padD > MSE_MAX_PAD) throw new MseError('ERR_HANDSHAKE', `MSE PadD of ${padD} bytes`);
    if (select !== CRYPTO_RC4 && select !== CRYPTO_PLAINTEXT) {
      throw new MseError('ERR_HANDSHAKE', `MSE crypto_select ${select} is not one method`);
    }
    if ((select & provide) === 0) {
      throw new MseError('ERR_HANDSHAKE', `MSE crypto_select ${select} was not offered`);
    }
    decrypt.update(await reader.take(padD, 'PadD'));
    const rest = reader.release();
    return select === CRYPTO_RC4
      ? {
          socket: new MseStream(socket, encrypt, decrypt),
          initial: decrypt.update(rest),
          encryption: 'rc4',
        }
      : { socket, initial: rest, encryption: 'plaintext' };
  } catch (err) {
    reader.release();
    socket.destroy();
    throw asMseError(err);
  }
}

/**
 * Runs the responder's side (B) on an accepted socket whose first bytes
 * (`initial`) were not a plaintext handshake. Rejects with an MseError (and
 * destroys the socket) on anything that is not MSE for our torrent, or an
 * offer `policy` does not accept.
 */
export async function mseRespond(
  socket: WireSocket,
  initial: Buffer,
  options: MseOptions,
): Promise<MseResult> {
  if (options.policy === 'off') {
    // Not a byte back: a client that falls back to plaintext must find its buffer empty.
    socket.destroy();
    throw new MseError('ERR_HANDSHAKE', 'MSE handshake, but --encryption is off');
  }
  const reader = new HandshakeReader(socket, initial, options.timeoutMs, MAX_MSE_RESPONDER_BYTES);
  try {
    const ya = await reader.take(MSE_KEY_LENGTH, 'the remote public key (Ya)');
    // Our key pair only once Ya is in: a remote that opens and sends less than 96 bytes costs no DH.
    const keys = new MseKeyPair();
    let secret: Buffer;
    try {
      secret = keys.secret(ya);
    } catch {
      throw new MseError('ERR_HANDSHAKE', 'not a valid MSE public key');
    }
    socket.write(Buffer.concat([keys.publicKey, randomBytes(randomInt(OUR_MAX_PAD + 1))]));
    await reader.scan(req1Hash(secret), MSE_MAX_PAD, "HASH('req1', S)");
    const req23 = await reader.take(20, "HASH('req2', SKEY) xor HASH('req3', S)");
    if (!req2FromReq23(req23, secret).equals(req2Hash(options.infoHash))) {
      throw new MseError('ERR_INFO_HASH', 'MSE handshake for a torrent we do not serve');
    }
    const { encrypt, decrypt } = mseCiphers(secret, options.infoHash, false);
    const head = decrypt.update(await reader.take(14, 'VC and crypto_provide'));
    if (!head.subarray(0, 8).equals(MSE_VC)) {
      throw new MseError('ERR_HANDSHAKE', 'MSE verification constant does not decrypt to zeros');
    }
    const provide = head.readUInt32BE(8);
    const padC = head.readUInt16BE(12);
    if (padC > MSE_MAX_PAD) throw new MseError('ERR_HANDSHAKE', `MSE PadC of ${padC} bytes`);
    decrypt.update(await reader.take(padC, 'PadC'));
    const iaLength = decrypt.update(await reader.take(2, 'len(IA)')).readUInt16BE(0);
    if (iaLength > MAX_MSE_INITIAL_PAYLOAD) {
      throw new MseError('ERR_HANDSHAKE', `MSE initial payload of ${iaLength} bytes`);
    }
    const ia = decrypt.update(await reader.take(iaLength, 'the initial payload'));
    const select = cryptoSelect(provide, options.policy);
    if (select === undefined) {
      throw new MseError(
        'ERR_HANDSHAKE',
        `MSE offer ${describeProvide(provide)} is not allowed with --encryption ${options.policy}`,
      );
    }
    const reply = Buffer.alloc(8 + 4 + 2);
    reply.writeUInt32BE(select, 8);
    socket.write(encrypt.update(reply));
    const rest = reader.release();
    if (select === CRYPTO_RC4) {
      return {
        socket: new MseStream(socket, encrypt, decrypt),
        initial: Buffer.concat([ia, decrypt.update(rest)]),
        encryption: 'rc4',
      };
    }
    return { socket, initial: Buffer.concat([ia, rest]), encryption: 'plaintext' };
  } catch (err) {
    reader.release();
    socket.destroy();
    throw asMseError(err);
  }
}

function describeProvide(provide: number): string {
  const names = [];
  if (provide & CRYPTO_PLAINTEXT) names.push('plaintext');
  if (provide & CRYPTO_RC4) names.push('rc4');
  return names.length > 0 ? names.join('+') : `0x${provide.toString(16)}`;
}

/**
 * The MSE group (the spec's 768-bit prime, generator 2), built once per
 * process. Building it is what costs: Node checks the prime with DH_check,
 * measured at 23.6-29 ms of CPU here, where a key pair on a built group
 * costs about 0.1 ms and a secret 0.08 ms. A handshake per DH group was the
 * price an attacker paid 96 bytes for.
 */
let mseGroup: DiffieHellman | undefined;

function group(): DiffieHellman {
  mseGroup ??= createDiffieHellman(Buffer.from(MSE_PRIME_HEX, 'hex'), MSE_GENERATOR);
  return mseGroup;
}

/**
 * One handshake's Diffie-Hellman key pair on the shared group: a fresh
 * 160-bit private key (the spec asks for 128 bits at least; 160 as the
 * clients use), held here, not in the group object.
 *
 * The group object is only a calculator that every handshake shares: each
 * use sets this pair's private key on it and computes in the same
 * synchronous step, never across an await, so interleaved handshakes never
 * see each other's key. (Node's generateKeys keeps a private key that was
 * set, and derives the public key from it.)
 */
export class MseKeyPair {
  /** Ya or Yb: 96 bytes, big-endian. */
  readonly publicKey: Buffer;
  private readonly privateKey: Buffer;

  constructor() {
    this.privateKey = randomBytes(20);
    const dh = group();
    dh.setPrivateKey(this.privateKey);
    dh.generateKeys();
    this.publicKey = padKey(dh.getPublicKey());
  }

  /** S from the remote's public key; throws on a key outside the group (0, 1, p-1, p and above). */
  secret(remotePublicKey: Uint8Array): Buffer {
    const dh = group();
    dh.setPrivateKey(this.privateKey);
    return padKey(dh.computeSecret(remotePublicKey));
  }
}

function asMseError(err: unknown): MseError {
  return err instanceof MseError ? err : new MseError('ERR_HANDSHAKE', (err as Error).message);
}

/**
 * Reads the handshake off a socket: waits for exact byte counts or for a
 * marker within a bounded window, fails on close, error or the deadline. All
 * bytes it has not consumed go back to the caller through `release()`.
 */
class HandshakeReader {
  private buffer: Buffer;
  private wake: (() => void) | undefined;
  private failure: MseError | undefined;
  private readonly timer: NodeJS.Timeout;
  private readonly onData = (chunk: Buffer) => {
    if (this.failure) return;
    if (this.buffer.length + chunk.length > this.maxBufferedBytes) {
      this.buffer = Buffer.alloc(0);
      this.fail(`more than ${this.maxBufferedBytes} bytes before the MSE handshake was done`);
      return;
    }
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    this.poke();
  };
  private readonly onEnd = () =>
    this.fail('the remote closed the connection during the MSE handshake');
  private readonly onError = (err: Error) => this.fail(`socket error: ${err.message}`);

  constructor(
    private readonly socket: WireSocket,
    initial: Buffer,
    timeoutMs = DEFAULT_MSE_TIMEOUT_MS,
    /** Bytes held unconsumed at most; more fails the handshake (the initiator, who dialled, sets none). */
    private readonly maxBufferedBytes = Number.POSITIVE_INFINITY,
  ) {
    this.buffer = initial;
    this.timer = setTimeout(
      () => this.fail(`no MSE handshake within ${timeoutMs} ms`),
      timeoutMs,
    ).unref();
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onError);
    socket.resume();
  }

  async take(length: number, what: string): Promise<Buffer> {
    while (this.buffer.length < length) await this.more(what);
    const out = this.buffer.subarray(0, length);
    this.buffer = this.buffer.subarray(length);
    return Buffer.from(out);
  }

  /** Skips up to `maxSkip` bytes until `marker`, and consumes the marker too. */
  async scan(marker: Buffer, maxSkip: number, what: string): Promise<void> {
    for (;;) {
      const at = this.buffer.indexOf(marker);
      if (at >= 0 && at <= maxSkip) {
        this.buffer = this.buffer.subarray(at + marker.length);
        return;
      }
      if (this.buffer.length >= maxSkip + marker.length) {
        throw new MseError('ERR_HANDSHAKE', `no ${what} within ${maxSkip} bytes of padding`);
      }
      await this.more(what);
    }
  }

  /** Stops reading and hands back what was received but not consumed. */
  release(): Buffer {
    clearTimeout(this.timer);
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    this.socket.off('error', this.onError);
    this.socket.pause();
    const rest = this.buffer;
    this.buffer = Buffer.alloc(0);
    return rest;
  }

  private more(what: string): Promise<void> {
    if (this.failure) {
      return Promise.reject(
        new MseError(this.failure.code, `${this.failure.message} (waiting for ${what})`),
      );
    }
    return new Promise((resolve) => {
      this.wake = resolve;
    });
  }

  private fail(message: string): void {
    this.failure ??= new MseError('ERR_HANDSHAKE', message);
    this.poke();
  }

  private poke(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

/**
 * RC4 both ways over a socket, as a Duplex that PeerWire uses like the
 * socket itself. Writes are encrypted into fresh buffers, because callers
 * hand us blocks they keep (pooled chunk buffers).
 */
export class MseStream extends Duplex {
  constructor(
    private readonly socket: WireSocket,
    private readonly encrypt: Rc4,
    private readonly decrypt: Rc4,
  ) {
    super({ allowHalfOpen: false });
    socket.on('data', (chunk: Buffer) => {
      // The socket's buffer is ours alone: decrypt in place.
      if (!this.push(this.decrypt.update(chunk))) socket.pause();
    });
    socket.on('end', () => this.push(null));
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => this.destroy());
  }

  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }

  get remotePort(): number | undefined {
    return this.socket.remotePort;
  }

  setNoDelay(noDelay?: boolean): this {
    this.socket.setNoDelay?.(noDelay);
    return this;
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(
    chunk: Buffer,
    _encoding: BufferEncoding,
    callback: (err?: Error | null) => void,
  ): void {
    if (this.socket.write(this.encrypt.process(chunk))) callback();
    else this.socket.once('drain', () => callback());
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (err?: Error | null) => void): void {
    const all = Buffer.concat(chunks.map((c) => c.chunk));
    if (this.socket.write(this.encrypt.update(all))) callback();
    else this.socket.once('drain', () => callback());
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.socket.end();
    callback();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.socket.destroy();
    callback(err);
  }
}
