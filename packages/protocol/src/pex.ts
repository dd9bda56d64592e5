/**
 * Peer exchange (BEP 11, `ut_pex`): the payload of the extension message,
 * both directions. Pure: the policies (what we list, how often, what we do
 * with what we are told) are the peer's.
 *
 * ```
 * d
 *   5:added    <6 bytes per IPv4 peer: address, port>
 *   7:added.f  <1 flag byte per entry of added>
 *   6:added6   <18 bytes per IPv6 peer>
 *   8:added6.f <1 flag byte per entry of added6>
 *   7:dropped  <6 bytes per IPv4 peer>
 *   8:dropped6 <18 bytes per IPv6 peer>
 * e
 * ```
 */
import { canonicalHost } from './address.js';
import { bencodeDecode, bencodeEncode } from './bencoding.js';
import { WireError } from './errors.js';
import {
  decodeCompactPeers,
  decodeCompactPeers6,
  encodeCompactPeers,
  encodeCompactPeers6,
} from './tracker.js';

/** The extension's name in the extended handshake's `m` dictionary. */
export const PEX_EXTENSION = 'ut_pex';
/** BEP 11: at most this many added (and as many dropped) peers in one message we send. */
export const PEX_MAX_ADDED = 50;
/** BEP 11: at most one message a minute to one connection. */
export const PEX_INTERVAL_MS = 60_000;
/**
 * The most entries of one list (`added`, `added6`, `dropped`, `dropped6`) a
 * message we accept may carry: libtorrent sends up to 100 added, so twice
 * that leaves room for any stock client and still bounds the work one
 * message can cause. More closes the connection.
 */
export const PEX_MAX_ENTRIES_RECEIVED = 200;
/**
 * The largest payload we decode: four full lists of IPv6 entries with
 * flags (4 x 200 x 19 bytes) and the keys fit well inside it.
 */
export const PEX_MAX_PAYLOAD_BYTES = 16 * 1024;

/** BEP 11's `added.f` bits. */
export const PEX_FLAG = {
  /** Prefers encryption (MSE). */
  encryption: 0x01,
  /** A seed (or upload only). */
  seed: 0x02,
  /** Speaks µTP. */
  utp: 0x04,
  /** Speaks ut_holepunch. */
  holepunch: 0x08,
  /** Reachable: the sender connected to it (outgoing). */
  reachable: 0x10,
} as const;

/** One peer in a PEX message: where it listens, and what the sender says of it. */
export interface PexPeer {
  readonly host: string;
  readonly port: number;
  /** PEX_FLAG bits; 0 when the sender gave none. */
  readonly flags: number;
}

export interface PexMessage {
  readonly added: readonly PexPeer[];
  readonly dropped: readonly { readonly host: string; readonly port: number }[];
}

const isV6 = (host: string): boolean => host.includes(':');

/**
 * Bencodes a PEX message: IPv4 peers in `added`/`dropped`, IPv6 ones in
 * `added6`/`dropped6`, each added list with its flag bytes. Empty lists are
 * still written (stock clients write all keys too). Hosts must be IP
 * literals; anything else is a bug of the caller, not the remote's.
 */
export function encodePex(message: PexMessage): Buffer {
  const added4 = message.added.filter((p) => !isV6(p.host));
  const added6 = message.added.filter((p) => isV6(p.host));
  const dropped4 = message.dropped.filter((p) => !isV6(p.host));
  const dropped6 = message.dropped.filter((p) => isV6(p.host));
  return bencodeEncode({
    added: encodeCompactPeers(added4),
    'added.f': Buffer.from(added4.map((p) => p.flags & 0xff)),
    added6: encodeCompactPeers6(added6),
    'added6.f': Buffer.from(added6.map((p) => p.flags & 0xff)),
    dropped: encodeCompactPeers(dropped4),
    dropped6: encodeCompactPeers6(dropped6),
  });
}

const pexError = (why: string): WireError => new WireError('ERR_PEX_MESSAGE', `ut_pex: ${why}`);

/**
 * Reads a PEX payload, or throws a WireError (`ERR_PEX_MESSAGE`, one line
 * naming what was wrong): larger than PEX_MAX_PAYLOAD_BYTES, not bencode,
 * not a dictionary, a list that is not a string or not a whole number of
 * entries, or more than PEX_MAX_ENTRIES_RECEIVED entries. A flag list whose
 * length does not match its peers is ignored (the flags are hints; libtorrent
 * ignores such a list too), and so are keys we do not know. Entries with
 * port 0 are dropped: nobody listens there. Hosts come back in
 * canonicalHost's spelling, so they compare with a socket's.
 */
export function decodePex(payload: Uint8Array): PexMessage {
  if (payload.length > PEX_MAX_PAYLOAD_BYTES)
    throw pexError(`message of ${payload.length} bytes, over ${PEX_MAX_PAYLOAD_BYTES}`);
  let decoded: unknown;
  try {
    decoded = bencodeDecode(payload);
  } catch (err) {
    throw pexError((err as Error).message);
  }
  if (decoded === null || typeof decoded !== 'object' || Array.isArray(decoded))
    throw pexError('not a dictionary');
  if (decoded instanceof Uint8Array) throw pexError('not a dictionary');
  const dict = decoded as Record<string, unknown>;
  const list = (key: string, width: 6 | 18): { host: string; port: number }[] => {
    const value = dict[key];
    if (value === undefined) return [];
    if (!(value instanceof Uint8Array)) throw pexError(`${key} is not a string`);
    if (value.length % width !== 0)
      throw pexError(`${key} has ${value.length} bytes, not a multiple of ${width}`);
    if (value.length / width > PEX_MAX_ENTRIES_RECEIVED)
      throw pexError(
        `${key} lists ${value.length / width} peers, over ${PEX_MAX_ENTRIES_RECEIVED}`,
      );
    const peers = width === 6 ? decodeCompactPeers(value) : decodeCompactPeers6(value);
    return peers.map((p) => ({ host: canonicalHost(p.host), port: p.port }));
  };
  const flagsOf = (key: string, count: number): Uint8Array | undefined => {
    const value = dict[key];
    return value instanceof Uint8Array && value.length === count ? value : undefined;
  };
  const withFlags = (peers: { host: string; port: number }[], flags: Uint8Array | undefined) =>
    peers.map((p, i) => ({ ...p, flags: flags?.[i] ?? 0 }));
  const added4 = list('added', 6);
  const added6 = list('added6', 18);
  const added = [
    ...withFlags(added4, flagsOf('added.f', added4.length)),
    ...withFlags(added6, flagsOf('added6.f', added6.length)),
  ].filter((p) => p.port !== 0);
  const dropped = [...list('dropped', 6), ...list('dropped6', 18)].filter((p) => p.port !== 0);
  return { added, dropped };
}
