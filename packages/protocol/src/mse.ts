import { createHash } from 'node:crypto';
import { OptionError } from './errors.js';

/**
 * Message Stream Encryption / Protocol Encryption (MSE/PE), the pure parts:
 * the constants, RC4 and the hashes of the spec that libtorrent,
 * Transmission, aria2 and qBittorrent implement. The handshake that uses them
 * lives in `node/mse-handshake.ts`.
 *
 * The exchange (A initiates, B responds; S is the Diffie-Hellman secret,
 * SKEY the info hash):
 *   1 A->B: Ya (96 bytes), PadA (0-512 random bytes)
 *   2 B->A: Yb (96 bytes), PadB (0-512 random bytes)
 *   3 A->B: HASH('req1', S), HASH('req2', SKEY) xor HASH('req3', S),
 *           ENCRYPT(VC, crypto_provide, len(PadC), PadC, len(IA)), ENCRYPT(IA)
 *   4 B->A: ENCRYPT(VC, crypto_select, len(PadD), PadD), ENCRYPT2(payload)
 *   5 A->B: ENCRYPT2(payload)
 * ENCRYPT is RC4 keyed with HASH('keyA', S, SKEY) from A and HASH('keyB', S,
 * SKEY) from B, first 1024 bytes of keystream discarded; ENCRYPT2 is that RC4
 * or nothing, as crypto_select says. Lengths are big-endian u16, VC is 8 zeros.
 */

/** The 768-bit safe prime of the spec, big-endian; the generator is 2. */
export const MSE_PRIME_HEX =
  'FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A63A36210000000000090563';
export const MSE_GENERATOR = 2;
/** Bytes of a public key (Ya, Yb) and of the shared secret S. */
export const MSE_KEY_LENGTH = 96;
/** Longest PadA/PadB/PadC/PadD the spec allows. */
export const MSE_MAX_PAD = 512;
/** The verification constant: 8 zero bytes. */
export const MSE_VC = new Uint8Array(8);
/** Keystream bytes RC4 throws away before its first use. */
export const RC4_DROP = 1024;

/** Bits of crypto_provide / crypto_select. */
export const CRYPTO_PLAINTEXT = 0x01;
export const CRYPTO_RC4 = 0x02;

/** What a connection ended up with, as every `connected` log line reports it. */
export type WireEncryption = 'plaintext' | 'rc4';

/**
 * How a service uses MSE:
 * - `require`: every connection is RC4; plaintext handshakes and MSE offers
 *   without RC4 are refused.
 * - `prefer` (the default of owner and peer): incoming connections may be
 *   plaintext or MSE, and an MSE offer that includes RC4 gets RC4. The peer
 *   opens its own connections in plaintext under `prefer` (see connectWire in
 *   the peer); `mseInitiate` with `prefer` offers RC4 and plaintext.
 * - `off`: outgoing is plaintext; an incoming MSE handshake is closed at once,
 *   before we send a byte. (A stock client then retries in plaintext; one
 *   that already read bytes from us would keep them in front of our plaintext
 *   handshake and fail: Transmission 3.00 does.)
 */
export type EncryptionPolicy = 'prefer' | 'require' | 'off';
export const ENCRYPTION_POLICIES: readonly EncryptionPolicy[] = ['prefer', 'require', 'off'];
export const DEFAULT_ENCRYPTION: EncryptionPolicy = 'prefer';

/** Reads an encryption policy; `field` names the option in the error (`encryption` for a library caller). */
export function parseEncryptionPolicy(
  text: string | undefined,
  field = '--encryption',
): EncryptionPolicy {
  if (text === undefined) return DEFAULT_ENCRYPTION;
  if ((ENCRYPTION_POLICIES as readonly string[]).includes(text)) return text as EncryptionPolicy;
  throw new OptionError(field, `"${text}" is not one of: ${ENCRYPTION_POLICIES.join(', ')}`);
}

/** The crypto_provide bits an initiator sends under `policy` (never called for `off`). */
export function cryptoProvide(policy: EncryptionPolicy): number {
  return policy === 'require' ? CRYPTO_RC4 : CRYPTO_RC4 | CRYPTO_PLAINTEXT;
}

/**
 * The responder's crypto_select for an offer, or undefined when nothing
 * offered is acceptable (always, under `off`). RC4 wins whenever offered.
 */
export function cryptoSelect(provide: number, policy: EncryptionPolicy): number | undefined {
  const rc4 = (provide & CRYPTO_RC4) !== 0;
  const plain = (provide & CRYPTO_PLAINTEXT) !== 0;
  if (policy === 'off') return undefined;
  if (rc4) return CRYPTO_RC4;
  if (policy === 'prefer' && plain) return CRYPTO_PLAINTEXT;
  return undefined;
}

/** HASH(...) of the spec: SHA-1 over the concatenation. */
export function mseHash(...parts: Array<string | Uint8Array>): Buffer {
  const hash = createHash('sha1');
  for (const part of parts)
    hash.update(typeof part === 'string' ? Buffer.from(part, 'latin1') : part);
  return hash.digest();
}

/** HASH('req1', S): the marker the responder scans for after PadA. */
export function req1Hash(secret: Uint8Array): Buffer {
  return mseHash('req1', secret);
}

/** HASH('req2', SKEY) xor HASH('req3', S): names the torrent without revealing it. */
export function req23Hash(infoHash: Uint8Array, secret: Uint8Array): Buffer {
  return xor20(mseHash('req2', infoHash), mseHash('req3', secret));
}

/** Recovers HASH('req2', SKEY) from what the initiator sent, for comparing with each torrent's. */
export function req2FromReq23(received: Uint8Array, secret: Uint8Array): Buffer {
  return xor20(Buffer.from(received), mseHash('req3', secret));
}

export function req2Hash(infoHash: Uint8Array): Buffer {
  return mseHash('req2', infoHash);
}

/**
 * The two RC4 streams of one side of a connection: `encrypt` for what we
 * send, `decrypt` for what we receive. A's outgoing key is keyA, B's is keyB.
 */
export function mseCiphers(
  secret: Uint8Array,
  infoHash: Uint8Array,
  initiator: boolean,
): { encrypt: Rc4; decrypt: Rc4 } {
  const keyA = new Rc4(mseHash('keyA', secret, infoHash), RC4_DROP);
  const keyB = new Rc4(mseHash('keyB', secret, infoHash), RC4_DROP);
  return initiator ? { encrypt: keyA, decrypt: keyB } : { encrypt: keyB, decrypt: keyA };
}

/** Left-pads a big-endian number to `length` bytes (DH output may be shorter than 96). */
export function padKey(bytes: Uint8Array, length = MSE_KEY_LENGTH): Buffer {
  if (bytes.length === length) return Buffer.from(bytes);
  if (bytes.length > length) throw new RangeError(`key of ${bytes.length} bytes exceeds ${length}`);
  const out = Buffer.alloc(length);
  out.set(bytes, length - bytes.length);
  return out;
}

function xor20(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(20);
  for (let i = 0; i < 20; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

/**
 * RC4, because Node 20's OpenSSL 3 no longer offers it. A stream: each call
 * continues where the last one stopped.
 */
export class Rc4 {
  private readonly s = new Uint8Array(256);
  private i = 0;
  private j = 0;

  constructor(key: Uint8Array, drop = 0) {
    if (key.length === 0 || key.length > 256) throw new RangeError('RC4 key must be 1-256 bytes');
    const s = this.s;
    for (let k = 0; k < 256; k++) s[k] = k;
    for (let k = 0, j = 0; k < 256; k++) {
      j = (j + s[k]! + key[k % key.length]!) & 0xff;
      const t = s[k]!;
      s[k] = s[j]!;
      s[j] = t;
    }
    if (drop > 0) this.update(new Uint8Array(drop));
  }

  /** XORs the next keystream bytes over `data`, in place, and returns it. */
  update<T extends Uint8Array>(data: T): T {
    const s = this.s;
    let i = this.i;
    let j = this.j;
    for (let k = 0; k < data.length; k++) {
      i = (i + 1) & 0xff;
      const si = s[i]!;
      j = (j + si) & 0xff;
      const sj = s[j]!;
      s[i] = sj;
      s[j] = si;
      data[k] = data[k]! ^ s[(si + sj) & 0xff]!;
    }
    this.i = i;
    this.j = j;
    return data;
  }

  /** Encrypts (or decrypts) into a new buffer, leaving `data` as it was. */
  process(data: Uint8Array): Buffer {
    return this.update(Buffer.from(data));
  }
}

/**
 * Which transports carry BitTorrent connections (HTTP is always TCP):
 * - `both` (default): listen on TCP and µTP (UDP, same port number); connect
 *   over TCP, and over µTP when TCP cannot connect;
 * - `tcp`: TCP only, no UDP socket;
 * - `utp`: µTP only; a BitTorrent connection over TCP is refused.
 */
export type TransportPolicy = 'both' | 'tcp' | 'utp';
export const TRANSPORT_POLICIES: readonly TransportPolicy[] = ['both', 'tcp', 'utp'];
export const DEFAULT_TRANSPORT: TransportPolicy = 'both';
/** What a connection runs over, as every `connected` log line reports it. */
export type WireTransport = 'tcp' | 'utp';

/** Reads a transport policy; `field` names the option in the error (`transport` for a library caller). */
export function parseTransportPolicy(
  text: string | undefined,
  field = '--transport',
): TransportPolicy {
  if (text === undefined) return DEFAULT_TRANSPORT;
  if ((TRANSPORT_POLICIES as readonly string[]).includes(text)) return text as TransportPolicy;
  throw new OptionError(field, `"${text}" is not one of: ${TRANSPORT_POLICIES.join(', ')}`);
}
