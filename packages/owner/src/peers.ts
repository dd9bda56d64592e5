import type { Clock } from '@swarmdrop/protocol';
import { formatEndpoint } from '@swarmdrop/protocol';
import { formatRanges } from '@swarmdrop/service';
import { BatchAssigner } from './batch-assigner.js';
import { type AnnounceTable, TrackerRegistry } from './tracker.js';

/** Peers listed in `/status` at most (connected ones first, then the most recently seen). */
export const STATUS_MAX_PEERS = 100;

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

  /** `/status`'s list: connected first, then the most recently seen, STATUS_MAX_PEERS at most. */
  listed(date: (atMs: number) => Date): Record<string, unknown>[] {
    this.expire();
    return [...this.peers.values()]
      .sort(
        (a, b) =>
          Number(b.connections > 0) - Number(a.connections > 0) || b.lastSeenMs - a.lastSeenMs,
      )
      .slice(0, STATUS_MAX_PEERS)
      .map((p) => ({
        address: p.address,
        client: p.client,
        connected: p.connections > 0,
        batch: p.batch ? formatRanges(p.batch) : null,
        holds: p.holds,
        bytesServed: p.bytesServed,
        lastSeen: date(p.lastSeenMs).toISOString(),
      }));
  }
}
