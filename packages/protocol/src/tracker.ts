/**
 * The tracker's format, both directions, in one place: the announce query
 * (built by the peer's tracker client, parsed by the owner's tracker), the
 * announce response (built by the owner, decoded by the peer) with its
 * compact peer lists (BEP 3, BEP 23, BEP 7) and swarmdrop's batch key.
 * Pure: no sockets. The owner's tracker table (who announced, expiry) is
 * the owner's; only the bytes live here, so that both sides agree by
 * construction.
 */
import { bencodeDecode, bencodeEncode } from './bencoding.js';

/** Announce interval we ask clients to keep, in seconds. */
export const ANNOUNCE_INTERVAL_S = 30;
/**
 * A peer that has not announced for this long is forgotten (three announce
 * intervals, as trackers commonly do): a client killed without
 * `event=stopped` is not handed out forever. A private swarm's admission
 * lasts as long, on both sides.
 */
export const ANNOUNCE_EXPIRY_MS = 3 * ANNOUNCE_INTERVAL_S * 1000;
/** The shortest re-announce interval the tracker asks for (`min interval`), in seconds. */
export const ANNOUNCE_MIN_INTERVAL_S = 5;
/** Peers in an announce answer when the client does not say `numwant` (BEP 3's customary 50). */
export const DEFAULT_NUMWANT = 50;
/** The most peers one answer carries, whatever `numwant` asks: 200 x 6 bytes. */
export const MAX_NUMWANT = 200;
/** The announce response key carrying a swarmdrop peer's initial batch; stock clients ignore it. */
export const BATCH_KEY = 'swarmdrop batch';

/** An address as a tracker lists it. */
export interface TrackerPeer {
  readonly host: string;
  readonly port: number;
}

/**
 * Every byte as `%xx`: how a tracker client sends `info_hash` and `peer_id`,
 * which are binary and would be mangled as UTF-8 text.
 */
export function percentEncodeBytes(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += `%${b.toString(16).padStart(2, '0')}`;
  return out;
}

export interface AnnounceQueryFields {
  readonly infoHash: Uint8Array;
  readonly peerId: Uint8Array;
  readonly port: number;
  readonly left: number;
  readonly uploaded?: number;
  readonly downloaded?: number;
  readonly event?: 'started' | 'completed' | 'stopped' | undefined;
  readonly numwant?: number | undefined;
}

/** The query string of an announce (without the leading `?`), compact peers requested. */
export function announceQuery(fields: AnnounceQueryFields): string {
  const parts = [
    `info_hash=${percentEncodeBytes(fields.infoHash)}`,
    `peer_id=${percentEncodeBytes(fields.peerId)}`,
    `port=${fields.port}`,
    `uploaded=${fields.uploaded ?? 0}`,
    `downloaded=${fields.downloaded ?? 0}`,
    `left=${fields.left}`,
    'compact=1',
  ];
  if (fields.numwant !== undefined) parts.push(`numwant=${fields.numwant}`);
  if (fields.event) parts.push(`event=${fields.event}`);
  return parts.join('&');
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** BEP 23: 6 bytes per IPv4 peer (address, port); other addresses are left out. */
export function encodeCompactPeers(peers: readonly TrackerPeer[]): Buffer {
  const v4 = peers.filter((p) => IPV4.test(p.host));
  const out = Buffer.allocUnsafe(v4.length * 6);
  // By hand, not split('.'): a tracker answering thousands of announces a
  // second spent a fifth of each answer here.
  for (let i = 0; i < v4.length; i++) {
    const { host, port } = v4[i]!;
    let at = i * 6;
    let octet = 0;
    for (let c = 0; c < host.length; c++) {
      const code = host.charCodeAt(c);
      if (code === 46) {
        out[at++] = octet;
        octet = 0;
      } else octet = octet * 10 + code - 48;
    }
    out[at] = octet;
    out.writeUInt16BE(port, i * 6 + 4);
  }
  return out;
}

/** BEP 7: 18 bytes per IPv6 peer (address, port), for the `peers6` key. */
export function encodeCompactPeers6(peers: readonly TrackerPeer[]): Buffer {
  const v6 = peers.filter((p) => p.host.includes(':'));
  const out = Buffer.alloc(v6.length * 18);
  v6.forEach((p, i) => {
    ipv6Bytes(p.host).copy(out, i * 18);
    out.writeUInt16BE(p.port, i * 18 + 16);
  });
  return out;
}

/** The peers of a BEP 23 compact list; a trailing partial entry is ignored. */
export function decodeCompactPeers(bytes: Uint8Array): TrackerPeer[] {
  const out: TrackerPeer[] = [];
  for (let i = 0; i + 6 <= bytes.length; i += 6) {
    out.push({
      host: `${bytes[i]}.${bytes[i + 1]}.${bytes[i + 2]}.${bytes[i + 3]}`,
      port: (bytes[i + 4]! << 8) | bytes[i + 5]!,
    });
  }
  return out;
}

/** The peers of a BEP 7 `peers6` list; a trailing partial entry is ignored. */
export function decodeCompactPeers6(bytes: Uint8Array): TrackerPeer[] {
  const out: TrackerPeer[] = [];
  for (let i = 0; i + 18 <= bytes.length; i += 18) {
    const groups: string[] = [];
    for (let g = 0; g < 8; g++)
      groups.push(((bytes[i + 2 * g]! << 8) | bytes[i + 2 * g + 1]!).toString(16));
    out.push({ host: groups.join(':'), port: (bytes[i + 16]! << 8) | bytes[i + 17]! });
  }
  return out;
}

/** The 16 bytes of an IPv6 address (`::1`, `fe80::1%eth0`, `::ffff:1.2.3.4`). */
function ipv6Bytes(host: string): Buffer {
  const text = host.replace(/%.*$/, '');
  const out = Buffer.alloc(16);
  let groups = text.split(':');
  const last = groups[groups.length - 1]!;
  if (last.includes('.')) {
    const [a, b, c, d] = last.split('.').map(Number) as [number, number, number, number];
    groups = [...groups.slice(0, -1), ((a << 8) | b).toString(16), ((c << 8) | d).toString(16)];
  }
  const gap = groups.indexOf('');
  if (gap !== -1) {
    const head = groups.slice(0, gap).filter((g) => g !== '');
    const tail = groups.slice(gap + 1).filter((g) => g !== '');
    groups = [...head, ...Array<string>(8 - head.length - tail.length).fill('0'), ...tail];
  }
  groups.forEach((g, i) => {
    out.writeUInt16BE(Number.parseInt(g, 16), i * 2);
  });
  return out;
}

export interface AnnounceRequest {
  readonly infoHash: Buffer;
  readonly peerId: Buffer;
  readonly port: number;
  readonly left: number | undefined;
  readonly event: string | undefined;
  readonly compact: boolean;
  /** Peers wanted in the answer, DEFAULT_NUMWANT when not given, at most MAX_NUMWANT. */
  readonly numwant: number;
}

export class AnnounceError extends Error {}

/**
 * Splits a raw query string into byte values: `info_hash` and `peer_id` are
 * percent-encoded binary, which URLSearchParams would mangle as UTF-8.
 */
export function parseQueryBytes(query: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const part of query.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const key = decodePercent(eq === -1 ? part : part.slice(0, eq)).toString('latin1');
    out.set(key, decodePercent(eq === -1 ? '' : part.slice(eq + 1)));
  }
  return out;
}

function decodePercent(text: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x25 /* % */) {
      const hex = text.slice(i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(hex))
        throw new AnnounceError(`bad percent-encoding near "${text.slice(i, i + 3)}"`);
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else if (c === 0x2b /* + */) {
      bytes.push(0x20);
    } else if (c < 0x80) {
      bytes.push(c);
    } else {
      throw new AnnounceError('non-ASCII character in query');
    }
  }
  return Buffer.from(bytes);
}

/** Validates an announce query (announceQuery's output, or a stock client's); throws AnnounceError naming the bad parameter. */
export function parseAnnounce(query: string): AnnounceRequest {
  const q = parseQueryBytes(query);
  const infoHash = q.get('info_hash');
  if (infoHash?.length !== 20) throw new AnnounceError('info_hash must be 20 bytes');
  const peerId = q.get('peer_id');
  if (peerId?.length !== 20) throw new AnnounceError('peer_id must be 20 bytes');
  const portText = q.get('port')?.toString('latin1') ?? '';
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < 1 || port > 65_535)
    throw new AnnounceError('port must be 1-65535');
  const leftText = q.get('left')?.toString('latin1');
  const left = leftText !== undefined && /^\d+$/.test(leftText) ? Number(leftText) : undefined;
  // A numwant that is not a number is ignored (the default applies), as trackers commonly do.
  const numwantText = q.get('numwant')?.toString('latin1');
  const numwant =
    numwantText !== undefined && /^\d{1,9}$/.test(numwantText)
      ? Math.min(Number(numwantText), MAX_NUMWANT)
      : DEFAULT_NUMWANT;
  return {
    infoHash,
    peerId,
    port,
    numwant,
    left,
    event: q.get('event')?.toString('latin1') || undefined,
    compact: q.get('compact')?.toString('latin1') !== '0',
  };
}

/** The bencoded answer to an announce: compact IPv4 `peers`, `peers6` when any, and a swarmdrop peer's batch. */
export function announceResponse(fields: {
  peers: readonly TrackerPeer[];
  complete: number;
  incomplete: number;
  batch?: readonly number[] | undefined;
}): Buffer {
  const body: Record<string, unknown> = {
    complete: fields.complete,
    incomplete: fields.incomplete,
    interval: ANNOUNCE_INTERVAL_S,
    'min interval': ANNOUNCE_MIN_INTERVAL_S,
    peers: encodeCompactPeers(fields.peers),
  };
  const peers6 = encodeCompactPeers6(fields.peers);
  if (peers6.length > 0) body.peers6 = peers6;
  if (fields.batch) body[BATCH_KEY] = [...fields.batch];
  return bencodeEncode(body);
}

/** BEP 3's refusal: a dictionary with only `failure reason`. */
export function announceFailure(reason: string): Buffer {
  return bencodeEncode({ 'failure reason': reason });
}

/** An announce answer as a client reads it (decodeAnnounceResponse). */
export type AnnounceAnswer =
  | { readonly failure: string }
  | {
      readonly failure?: undefined;
      /** The initial batch the owner assigned (BATCH_KEY), when it assigned one. */
      readonly batch: number[] | undefined;
      /** Entries in the compact IPv4 list. */
      readonly peers: number;
      /** Every peer listed, IPv4 (`peers`) then IPv6 (`peers6`), port 0 included. */
      readonly listed: TrackerPeer[];
    };

/** Reads an announceResponse (or a stock tracker's compact answer); throws on bencode that does not parse. */
export function decodeAnnounceResponse(body: Uint8Array): AnnounceAnswer {
  const decoded = bencodeDecode(body) as Record<string, unknown>;
  if (decoded['failure reason'] instanceof Uint8Array)
    return { failure: Buffer.from(decoded['failure reason']).toString() };
  const raw = decoded[BATCH_KEY];
  const batch = Array.isArray(raw)
    ? raw.filter((n): n is number => Number.isInteger(n) && n >= 0)
    : undefined;
  const listed = [
    ...(decoded.peers instanceof Uint8Array ? decodeCompactPeers(decoded.peers) : []),
    ...(decoded.peers6 instanceof Uint8Array ? decodeCompactPeers6(decoded.peers6) : []),
  ];
  const peers = decoded.peers instanceof Uint8Array ? decoded.peers.length / 6 : 0;
  return { batch, peers, listed };
}
