import {
  bencodeEncode,
  type Clock,
  encodeCompactPeers,
  encodeCompactPeers6,
  formatEndpoint,
  sourceKey,
  type TrackerPeer,
  unmapIPv4,
} from '@swarmdrop/protocol';

/** Announce interval we ask clients to keep, in seconds. */
export const ANNOUNCE_INTERVAL_S = 30;
/**
 * A peer that has not announced for this long is forgotten (three announce
 * intervals, as trackers commonly do): a client killed without
 * `event=stopped` is not handed out forever.
 */
export const ANNOUNCE_EXPIRY_MS = 3 * ANNOUNCE_INTERVAL_S * 1000;
/** Peers in an announce answer when the client does not say `numwant` (BEP 3's customary 50). */
export const DEFAULT_NUMWANT = 50;
/** The most peers one answer carries, whatever `numwant` asks: 200 x 6 bytes. */
export const MAX_NUMWANT = 200;
/**
 * Tracker records kept per source address (an IPv6 /64); a new one past it
 * replaces that address's least recently announced. A test swarm on one
 * machine shares one address, so this is well above a few dozen.
 */
export const DEFAULT_TRACKER_MAX_PER_ADDRESS = 64;
/** Tracker records kept in all; a new one past it replaces the least recently announced. */
export const DEFAULT_TRACKER_MAX_PEERS = 1_000;
/** The announce response key carrying a swarmdrop peer's initial batch; stock clients ignore it. */
export const BATCH_KEY = 'swarmdrop batch';

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

/** Validates an announce query; throws AnnounceError naming the bad parameter. */
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

export type SwarmPeer = TrackerPeer;

export interface TrackerOptions {
  /** The time (only differences count); tests move a ManualClock instead of sleeping. */
  readonly clock: Clock;
  readonly expiryMs?: number;
  readonly maxPerAddress?: number;
  readonly maxPeers?: number;
}

interface TrackerRecord extends SwarmPeer {
  /** `host:port`, the key. */
  readonly address: string;
  readonly source: string;
  announcedAt: number;
  seed: boolean;
}

/**
 * The tracker's table: who announced, when, and whether it is a seed.
 * Pure (no sockets, no timers): time comes from the injected clock.
 *
 * Every record expires `expiryMs` after its last announce, stock clients'
 * as much as swarmdrop peers'. The table holds at most `maxPerAddress`
 * records per source address and `maxPeers` in all; past either, the least
 * recently announced one (of that address, else of all) makes room, so a
 * flood of announces with ever new ports costs the flooder's own records
 * first and never grows memory. Records are kept in order of last announce,
 * so expiry and eviction are O(1) per record.
 */
export class TrackerRegistry {
  private readonly clock: Clock;
  private readonly expiryMs: number;
  private readonly maxPerAddress: number;
  private readonly maxPeers: number;
  /** Oldest announce first. */
  private readonly records = new Map<string, TrackerRecord>();
  /** Addresses per source, oldest announce first. */
  private readonly bySource = new Map<string, Set<string>>();

  constructor(options: TrackerOptions) {
    this.clock = options.clock;
    this.expiryMs = options.expiryMs ?? ANNOUNCE_EXPIRY_MS;
    this.maxPerAddress = options.maxPerAddress ?? DEFAULT_TRACKER_MAX_PER_ADDRESS;
    this.maxPeers = options.maxPeers ?? DEFAULT_TRACKER_MAX_PEERS;
  }

  get size(): number {
    return this.records.size;
  }

  has(address: string): boolean {
    return this.records.has(address);
  }

  /**
   * Records an announce from `host` for `port` (or removes it on `stopped`).
   * Returns the addresses that left the table on the way (expired, or
   * replaced to make room), so the caller can drop what it keeps about them.
   */
  announce(
    host: string,
    port: number,
    fields: { event?: string | undefined; left?: number | undefined },
  ): { address: string; forgotten: string[] } {
    const now = this.clock.now();
    const forgotten = this.expire();
    const address = formatEndpoint(host, port);
    const old = this.records.get(address);
    if (old) this.remove(old);
    if (fields.event === 'stopped') return { address, forgotten };
    const source = sourceKey(host);
    let mine = this.bySource.get(source);
    if (mine && mine.size >= this.maxPerAddress) {
      const oldest = mine.values().next().value as string;
      this.remove(this.records.get(oldest)!);
      forgotten.push(oldest);
    }
    if (this.records.size >= this.maxPeers) {
      const oldest = this.records.values().next().value as TrackerRecord;
      this.remove(oldest);
      forgotten.push(oldest.address);
    }
    const record: TrackerRecord = {
      address,
      host: unmapIPv4(host),
      port,
      source,
      announcedAt: now,
      seed: fields.left === 0 || (fields.event === 'completed' && fields.left === undefined),
    };
    this.records.set(address, record);
    mine = this.bySource.get(source);
    if (!mine) {
      mine = new Set();
      this.bySource.set(source, mine);
    }
    mine.add(address);
    return { address, forgotten };
  }

  /** Drops the records whose last announce is older than the expiry; returns their addresses. */
  expire(): string[] {
    const now = this.clock.now();
    const gone: string[] = [];
    for (const record of this.records.values()) {
      if (now - record.announcedAt <= this.expiryMs) break;
      this.remove(record);
      gone.push(record.address);
    }
    return gone;
  }

  /**
   * Up to `count` peers other than `except`, picked at random when there are
   * more (so every peer gets handed out, not only the newest), with the
   * table's seed and leecher counts.
   */
  peers(except: string, count: number): { peers: SwarmPeer[]; seeds: number; leechers: number } {
    const picked: SwarmPeer[] = [];
    let seen = 0;
    let seeds = 0;
    for (const record of this.records.values()) {
      if (record.seed) seeds++;
      if (record.address === except || count <= 0) continue;
      seen++;
      // Reservoir sampling: each candidate ends up picked with probability count/seen.
      if (picked.length < count) picked.push(record);
      else {
        const at = Math.floor(Math.random() * seen);
        if (at < count) picked[at] = record;
      }
    }
    return {
      peers: picked.map((r) => ({ host: r.host, port: r.port })),
      seeds,
      leechers: this.records.size - seeds,
    };
  }

  private remove(record: TrackerRecord): void {
    this.records.delete(record.address);
    const mine = this.bySource.get(record.source);
    mine?.delete(record.address);
    if (mine?.size === 0) this.bySource.delete(record.source);
  }
}

export function announceResponse(fields: {
  peers: readonly SwarmPeer[];
  complete: number;
  incomplete: number;
  batch?: readonly number[] | undefined;
}): Buffer {
  const body: Record<string, unknown> = {
    complete: fields.complete,
    incomplete: fields.incomplete,
    interval: ANNOUNCE_INTERVAL_S,
    'min interval': 5,
    peers: encodeCompactPeers(fields.peers),
  };
  const peers6 = encodeCompactPeers6(fields.peers);
  if (peers6.length > 0) body.peers6 = peers6;
  if (fields.batch) body[BATCH_KEY] = [...fields.batch];
  return bencodeEncode(body);
}

export function announceFailure(reason: string): Buffer {
  return bencodeEncode({ 'failure reason': reason });
}
