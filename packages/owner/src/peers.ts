import type { Clock } from '@swarmdrop/protocol';
import { formatEndpoint } from '@swarmdrop/protocol';
import { formatRanges } from '@swarmdrop/service';
import { BatchAssigner } from './batch-assigner.js';
import { type AnnounceTable, TrackerRegistry } from './tracker.js';

/** Peers listed in `/status` at most (connected ones first, then the most recently seen), and per page of `/status/peers`. */
export const STATUS_MAX_PEERS = 100;
/** Peers named in each of `/status`'s `swarm.slowest` and `swarm.topServed`. */
export const STATUS_SWARM_NAMED = 10;
/** Buckets of `swarm.progress`: held fractions [0, 10%), …, [90%, 100%), then complete. */
export const STATUS_PROGRESS_BUCKETS = 11;

/** The swarm in aggregate, as `/status` shows it: a fixed size whatever the swarm's. */
export interface SwarmSummary {
  readonly peers: number;
  readonly connected: number;
  readonly complete: number;
  readonly progress: number[];
  readonly slowest: { address: string; holds: number }[];
  readonly topServed: { address: string; bytesServed: number }[];
}

/** Keeps the `size` best of what it is offered under `better`, in order; O(size) per offer. */
function keepBest<T>(list: T[], item: T, size: number, better: (a: T, b: T) => boolean): void {
  if (list.length === size && !better(item, list[size - 1]!)) return;
  let at = list.length === size ? size - 1 : list.length;
  while (at > 0 && better(item, list[at - 1]!)) {
    list[at] = list[at - 1]!;
    at--;
  }
  list[at] = item;
}

/** What the owner knows of one remote, announced or connected. */
export interface PeerRecord {
  readonly address: string;
  client: string;
  batch: readonly number[] | undefined;
  connections: number;
  holds: number;
  bytesServed: number;
  /** In the tracker's table: announced recently, and not `stopped`. */
  announced: boolean;
  /** On the owner's clock. */
  lastSeenMs: number;
}

/**
 * The owner's peer table: every peer in the tracker's table and every open
 * connection's remote, with the tracker's records and the batches they were
 * given. One owner of this state, so a peer the tracker forgets is forgotten
 * by the batches and `/status` in the same step.
 */
export class PeerTable implements AnnounceTable {
  readonly tracker: TrackerRegistry;
  readonly assigner: BatchAssigner;
  private readonly clock: Clock;
  private readonly peers = new Map<string, PeerRecord>();

  constructor(options: {
    clock: Clock;
    pieceCount: number;
    expectedPeers: number;
    trackerMaxPeers?: number;
    trackerMaxPerAddress?: number;
  }) {
    this.clock = options.clock;
    this.tracker = new TrackerRegistry({
      clock: options.clock,
      maxPeers: options.trackerMaxPeers,
      maxPerAddress: options.trackerMaxPerAddress,
    });
    this.assigner = new BatchAssigner(options.pieceCount, options.expectedPeers);
  }

  get size(): number {
    return this.peers.size;
  }

  get(address: string): PeerRecord | undefined {
    return this.peers.get(address);
  }

  /** The record of `address`, made if new; seen now either way. */
  record(address: string): PeerRecord {
    let record = this.peers.get(address);
    if (!record) {
      record = {
        address,
        client: 'unknown',
        batch: undefined,
        connections: 0,
        holds: 0,
        bytesServed: 0,
        announced: false,
        lastSeenMs: this.clock.now(),
      };
      this.peers.set(address, record);
    }
    record.lastSeenMs = this.clock.now();
    return record;
  }

  /** The tracker dropped `address` (expired, stopped, or replaced to make room). */
  forgetAnnounced(address: string): void {
    const record = this.peers.get(address);
    if (!record) return;
    record.announced = false;
    this.forgetIfUnused(record);
  }

  /**
   * Forgets a peer neither in the tracker's table nor connected, with what
   * it counted for in batches: a stock client's connection is named by its
   * ephemeral port, and announces can come with ever new ports, so keeping
   * such records would grow the map (and /status) for ever and skew later
   * batches. Both sources are bounded (connection caps, the tracker's), so
   * this map is too.
   */
  forgetIfUnused(record: PeerRecord): void {
    if (record.connections > 0 || record.announced) return;
    this.peers.delete(record.address);
    this.assigner.forget(record.address);
  }

  /** Drops what the tracker let expire. */
  expire(): void {
    for (const gone of this.tracker.expire()) this.forgetAnnounced(gone);
  }

  /** True when `host` announced `port` recently and not `stopped` (a report may speak for it). */
  isAnnounced(host: string, port: number): boolean {
    this.expire();
    return this.tracker.has(formatEndpoint(host, port));
  }

  /** Peers in the tracker's table now (expired ones dropped first, as `/status` does). */
  trackerPeers(): number {
    this.expire();
    return this.tracker.size;
  }

  /** What the remote holds changed: its record, and (announced swarmdrop peers) later batches. */
  noteHolds(record: PeerRecord, count: number, indexes: Iterable<number>): void {
    record.holds = count;
    // Only announced swarmdrop peers shape later batches: a stock client's
    // record is gone when it disconnects, so its holds must not linger.
    if (!record.announced) return;
    for (const i of indexes) this.assigner.noteHolds(record.address, i);
  }

  /**
   * The swarm in aggregate, in one pass over the table and bounded memory:
   * how far along the peers are (as their bitfields and `have`s to us say),
   * the slowest incomplete ones and the ones we served most.
   */
  summary(chunks: number): SwarmSummary {
    this.expire();
    const progress = new Array<number>(STATUS_PROGRESS_BUCKETS).fill(0);
    const slowest: PeerRecord[] = [];
    const top: PeerRecord[] = [];
    let connected = 0;
    for (const p of this.peers.values()) {
      if (p.connections > 0) connected++;
      // A peer that left us (its connection closed) says it is done in its announces.
      const done = (chunks > 0 && p.holds >= chunks) || this.tracker.isSeed(p.address);
      progress[done ? 10 : Math.min(9, Math.floor((p.holds / Math.max(1, chunks)) * 10))]!++;
      if (!done)
        keepBest(
          slowest,
          p,
          STATUS_SWARM_NAMED,
          (a, b) => a.holds < b.holds || (a.holds === b.holds && a.lastSeenMs < b.lastSeenMs),
        );
      if (p.bytesServed > 0)
        keepBest(top, p, STATUS_SWARM_NAMED, (a, b) => a.bytesServed > b.bytesServed);
    }
    return {
      peers: this.peers.size,
      connected,
      complete: progress[10]!,
      progress,
      slowest: slowest.map((p) => ({ address: p.address, holds: p.holds })),
      topServed: top.map((p) => ({ address: p.address, bytesServed: p.bytesServed })),
    };
  }

  /** `/status`'s list: connected first, then the most recently seen, STATUS_MAX_PEERS at most. */
  listed(date: (atMs: number) => Date): Record<string, unknown>[] {
    return this.page(0, date).peers;
  }

  /**
   * Page `page` (from 0) of every peer in `/status`'s order, STATUS_MAX_PEERS
   * a page; `pages` says how many there are (at least 1). Sorting is paid per
   * request, never per announce.
   */
  page(
    page: number,
    date: (atMs: number) => Date,
  ): { page: number; pages: number; total: number; peers: Record<string, unknown>[] } {
    this.expire();
    const total = this.peers.size;
    const pages = Math.max(1, Math.ceil(total / STATUS_MAX_PEERS));
    const peers = [...this.peers.values()]
      .sort(
        (a, b) =>
          Number(b.connections > 0) - Number(a.connections > 0) ||
          b.lastSeenMs - a.lastSeenMs ||
          (a.address < b.address ? -1 : 1),
      )
      .slice(page * STATUS_MAX_PEERS, (page + 1) * STATUS_MAX_PEERS)
      .map((p) => ({
        address: p.address,
        client: p.client,
        connected: p.connections > 0,
        batch: p.batch ? formatRanges(p.batch) : null,
        holds: p.holds,
        bytesServed: p.bytesServed,
        lastSeen: date(p.lastSeenMs).toISOString(),
      }));
    return { page, pages, total, peers };
  }
}
