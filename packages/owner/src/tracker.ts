import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  ANNOUNCE_EXPIRY_MS,
  type AnnounceRequest,
  announceFailure,
  announceResponse,
  type Clock,
  formatEndpoint,
  isSwarmdropPeer,
  listenPortOf,
  parseAnnounce,
  sourceKey,
  type TrackerPeer,
  unmapIPv4,
} from '@swarmdrop/protocol';
import { type Admission, formatRanges, type Publish } from '@swarmdrop/service';

// The announce format (query, response, batch key) is protocol's, shared with
// the peer's tracker client; the owner's face keeps naming it, as before.
export {
  ANNOUNCE_EXPIRY_MS,
  ANNOUNCE_INTERVAL_S,
  type AnnounceRequest,
  announceFailure,
  announceResponse,
  BATCH_KEY,
  DEFAULT_NUMWANT,
  MAX_NUMWANT,
  parseAnnounce,
  parseQueryBytes,
} from '@swarmdrop/protocol';

/**
 * Tracker records kept per source address (an IPv6 /64); a new one past it
 * replaces that address's least recently announced. A test swarm on one
 * machine shares one address, so this is well above a few dozen.
 */
export const DEFAULT_TRACKER_MAX_PER_ADDRESS = 64;
/** Tracker records kept in all; a new one past it replaces the least recently announced. */
export const DEFAULT_TRACKER_MAX_PEERS = 1_000;
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
  readonly announcedAt: number;
  readonly seed: boolean;
  /** Where it is in `list`. */
  at: number;
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
 * so expiry and eviction are O(1) per record; they are also kept in an array
 * (swap-removed) and seeds are counted as they come and go, so an announce's
 * answer costs O(count), not O(table): a fleet's 10,000 records are not
 * walked 2,000 times a second.
 */
export class TrackerRegistry {
  private readonly clock: Clock;
  private readonly expiryMs: number;
  private readonly maxPerAddress: number;
  private readonly maxPeers: number;
  /** Oldest announce first. */
  private readonly records = new Map<string, TrackerRecord>();
  /** The same records in no order, for picking at random by index. */
  private readonly list: TrackerRecord[] = [];
  /** Addresses per source, oldest announce first. */
  private readonly bySource = new Map<string, Set<string>>();
  private seeds = 0;

  constructor(options: TrackerOptions) {
    this.clock = options.clock;
    this.expiryMs = options.expiryMs ?? ANNOUNCE_EXPIRY_MS;
    this.maxPerAddress = options.maxPerAddress ?? DEFAULT_TRACKER_MAX_PER_ADDRESS;
    this.maxPeers = options.maxPeers ?? DEFAULT_TRACKER_MAX_PEERS;
  }

  get size(): number {
    return this.records.size;
  }

  /** The bounds it keeps: records in all, and per source address. */
  get bounds(): { maxPeers: number; maxPerAddress: number } {
    return { maxPeers: this.maxPeers, maxPerAddress: this.maxPerAddress };
  }

  has(address: string): boolean {
    return this.records.has(address);
  }

  /** In the table, and its last announce said it holds everything (`left=0`). */
  isSeed(address: string): boolean {
    return this.records.get(address)?.seed === true;
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
      at: this.list.length,
    };
    this.records.set(address, record);
    this.list.push(record);
    if (record.seed) this.seeds++;
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
    const size = this.list.length;
    const asker = this.records.get(except);
    // The others are `list` without the asker: index i stands for i + 1 from the asker's place on.
    const others = size - (asker ? 1 : 0);
    const skip = asker ? asker.at : size;
    const want = Math.max(0, Math.min(count, others));
    // Floyd's sampling: `want` distinct indexes, uniform, in O(want) steps and
    // memory whatever the table's size.
    const chosen = new Set<number>();
    for (let j = others - want; j < others; j++) {
      const t = Math.floor(Math.random() * (j + 1));
      chosen.add(chosen.has(t) ? j : t);
    }
    const picked: SwarmPeer[] = [];
    for (const i of chosen) {
      const record = this.list[i >= skip ? i + 1 : i]!;
      picked.push({ host: record.host, port: record.port });
    }
    return { peers: picked, seeds: this.seeds, leechers: size - this.seeds };
  }

  private remove(record: TrackerRecord): void {
    this.records.delete(record.address);
    const last = this.list.pop()!;
    if (last !== record) {
      this.list[record.at] = last;
      last.at = record.at;
    }
    if (record.seed) this.seeds--;
    const mine = this.bySource.get(record.source);
    mine?.delete(record.address);
    if (mine?.size === 0) this.bySource.delete(record.source);
  }
}

/** What the announce handler reads and updates of the owner's peer table (peers.ts). */
export interface AnnounceTable {
  readonly tracker: TrackerRegistry;
  readonly assigner: {
    batchOf(key: string): readonly number[] | undefined;
    assign(key: string): readonly number[];
  };
  record(address: string): {
    readonly address: string;
    client: string;
    batch: readonly number[] | undefined;
    announced: boolean;
  };
  forgetAnnounced(address: string): void;
  forgetIfUnused(record: ReturnType<AnnounceTable['record']>): void;
}

export interface AnnounceContext {
  /** The one torrent this owner serves. */
  readonly infoHash: Buffer;
  /** The owner's port: the owner lists itself first. */
  readonly port: number;
  readonly table: AnnounceTable;
  /** A private swarm's admission: an announce (with the token, checked before) admits its address. */
  readonly admission: Admission | undefined;
  readonly publish: Publish;
}

function sendAnnounceBody(res: ServerResponse, status: number, body: Buffer): void {
  res.writeHead(status, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
}

/**
 * `GET /announce`: records the peer in the tracker's table, gives a
 * swarmdrop peer its initial batch, and answers with the owner first, then
 * up to `numwant - 1` other peers (compact, BEP 23 and BEP 7).
 */
export function answerAnnounce(
  context: AnnounceContext,
  req: IncomingMessage,
  res: ServerResponse,
  query: string,
): void {
  const { table, publish } = context;
  let request: AnnounceRequest;
  try {
    request = parseAnnounce(query);
  } catch (err) {
    sendAnnounceBody(res, 400, announceFailure((err as Error).message));
    return;
  }
  if (!request.infoHash.equals(context.infoHash)) {
    sendAnnounceBody(res, 200, announceFailure('unknown info_hash: this owner serves one torrent'));
    return;
  }
  const host = unmapIPv4(req.socket.remoteAddress ?? '127.0.0.1');
  const { address, forgotten } = table.tracker.announce(host, request.port, request);
  for (const gone of forgotten) table.forgetAnnounced(gone);
  // A private swarm admits this address to the wire. By address, not port; a
  // `stopped` does not revoke it, since other peers may share the address:
  // it simply expires.
  context.admission?.admit([host]);
  const record = table.record(address);
  record.announced = table.tracker.has(address);
  const swarmdrop =
    isSwarmdropPeer(request.peerId) && listenPortOf(request.peerId) === request.port;
  if (swarmdrop) record.client = 'swarmdrop';
  let batch: readonly number[] | undefined;
  if (swarmdrop && request.event !== 'stopped') {
    const known = table.assigner.batchOf(address);
    batch = table.assigner.assign(address);
    record.batch = batch;
    if (!known)
      publish('batch-assigned', {
        peer: address,
        count: batch.length,
        chunks: formatRanges(batch),
      });
  }
  publish('announce', { peer: address, event: request.event, left: request.left });
  const self: SwarmPeer = {
    host: unmapIPv4(req.socket.localAddress ?? '127.0.0.1'),
    port: context.port,
  };
  // The owner itself first, so a stock client that only knows the .torrent finds it.
  const { peers, seeds, leechers } = table.tracker.peers(address, request.numwant - 1);
  sendAnnounceBody(
    res,
    200,
    announceResponse({
      peers: request.numwant > 0 ? [self, ...peers] : [],
      complete: 1 + seeds,
      incomplete: leechers,
      batch,
    }),
  );
  if (!record.announced) table.forgetIfUnused(record);
}
