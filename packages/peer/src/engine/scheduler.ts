import {
  BLOCK_SIZE,
  ChunkError,
  type Clock,
  OptionError,
  RateEstimator,
  TypedEmitter,
} from '@swarmdrop/protocol';
import type {
  BufferPool,
  Connection,
  MessageWire,
  OutgoingRequest,
  PieceEvent,
} from '@swarmdrop/protocol/node';
import type { MinRatePolicy } from './min-rate-policy.js';
import type { PickedBlock, PieceSet, SwarmPicker } from './picker.js';

/** Blocks of 16 KiB asked ahead per link at most (`--pipeline-blocks`): 128 keeps a loopback link full (measured). */
export const DEFAULT_PIPELINE_BLOCKS = 128;
/** Most bytes asked ahead per link: DEFAULT_PIPELINE_BLOCKS x 16 KiB. */
export const DEFAULT_PIPELINE_BYTES = DEFAULT_PIPELINE_BLOCKS * BLOCK_SIZE;
/**
 * Below that cap, a link is asked for what it delivers in this long (its
 * measured rate times this). A request waits behind everything asked of
 * that link before it: with a fixed 2 MiB, a link that gets a fifth of a
 * 10 Mbit/s upload (five unchoked peers) answers a request picked now,
 * the rarest piece, 8 s later, and the swarm's last pieces crawl. Half a
 * second of the link's rate keeps it busy across a round trip (it must
 * stay above the RTT, or the pipeline would cap the rate it measures).
 */
export const DEFAULT_PIPELINE_QUEUE_MS = 500;
/**
 * Bytes asked ahead of a link whatever its rate (a fresh link has none yet):
 * 256 KiB fills 40 Mbit/s over a 50 ms round trip, and a link that is faster
 * than that grows its share through its rate.
 */
export const MIN_PIPELINE_BYTES = 16 * BLOCK_SIZE;

/**
 * Bytes to keep asked ahead of a link delivering `bytesPerSec`: `queueMs` of
 * its rate, at least `minBytes`, at most `maxBytes` (which also caps the minimum).
 */
export function pipelineBytesFor(
  bytesPerSec: number,
  limits: { readonly queueMs: number; readonly minBytes: number; readonly maxBytes: number },
): number {
  const floor = Math.min(limits.minBytes, limits.maxBytes);
  return Math.min(limits.maxBytes, Math.max(floor, (bytesPerSec * limits.queueMs) / 1000));
}
/** BEP 6: how often a link that rejected all we asked is asked again at once, between two of its blocks. */
export const MAX_EMPTY_RETRIES = 4;

/** A remote with at most this many pieces we lack is picked from by its pieces, not by the whole rarity order. */
export const SPARSE_PIECES = 64;

/** Complete pieces waiting for the disk before the links stop asking for more: reading waits while the disk is behind. */
export const DEFAULT_MAX_STORING_PIECES = 16;

/**
 * Where complete pieces go: `ChunkStore` is one. `put` rejects with ChunkError ERR_CHUNK_HASH on a bad hash;
 * `cache` asks it to keep a copy for serving (the sink owns that copy; `data` is reused after `put` settles).
 */
export interface PieceSink {
  put(index: number, data: Uint8Array, options?: { readonly cache?: boolean }): Promise<boolean>;
}

export interface SwarmSchedulerOptions {
  /** Most bytes asked ahead per link (default DEFAULT_PIPELINE_BYTES). */
  readonly pipelineBytes?: number;
  /** Seconds of a link's rate asked ahead of it, in ms (default DEFAULT_PIPELINE_QUEUE_MS). */
  readonly pipelineQueueMs?: number;
  /** Bytes asked ahead of any link whatever its rate (default MIN_PIPELINE_BYTES, at most pipelineBytes). */
  readonly minPipelineBytes?: number;
  readonly maxStoringPieces?: number;
  /**
   * Keep a copy of each stored piece in the sink's serving cache (default
   * true: a swarm peer serves mostly what it just got). Ring mode turns it
   * off: it serves each chunk from its file, re-checked as it is read, as
   * the seed's ring always did. A function is asked at each piece.
   */
  readonly cacheStored?: boolean | (() => boolean);
}

/** The injected parts: the scheduler owns none of their state. */
export interface SwarmSchedulerComponents {
  readonly picker: SwarmPicker;
  readonly policy: MinRatePolicy;
  readonly sink: PieceSink;
  readonly clock: Clock;
  readonly buffers?: BufferPool;
}

export interface LinkOptions {
  /** Largest request this remote is sent: BLOCK_SIZE for a stock client, a whole chunk for swarmdrop. */
  readonly requestBytes?: number;
  /**
   * The link's policy: which pieces it may be asked for (default: any its
   * remote has). A ring's owner link takes its batch only, a neighbour all
   * but the batch and the chunks it sent bad. Call `refresh()` when the
   * answer changes.
   */
  readonly allowed?: (index: number) => boolean;
}

export type SwarmSchedulerEvents = {
  /** A piece was first asked of a link (the `request-sent` log line). */
  requested: (index: number, link: string) => void;
  /** Requests went out on a link: there is something in flight for `tick()`'s review to watch. */
  asked: (link: string) => void;
  /** A piece passed its hash and is stored; `from` delivered its last block. Send `have` to every connection. */
  pieceStored: (index: number, from: string) => void;
  /** A piece failed its hash; `from` lists every link that sent a block of it: blame them. */
  pieceRejected: (index: number, from: readonly string[]) => void;
  /** A link was too slow for a window: its requests went to the others. */
  stalled: (link: string, cancelled: number) => void;
  /**
   * BEP 6: a link choked us and left requests standing that it neither
   * served nor rejected within the grace (DEFAULT_CHOKED_REQUEST_GRACE_MS):
   * they went to the others.
   */
  rejectsMissing: (link: string, voided: number) => void;
  /** Storing failed for another reason than the hash (disk full, I/O): the torrent must stop. */
  error: (error: Error) => void;
};

interface Link {
  readonly id: string;
  readonly connection: Connection<MessageWire>;
  readonly requestBytes: number;
  /** What it may be asked for: its remote's bitfield through the link's policy. */
  readonly view: PieceSet;
  /** This link's delivery rate, on the policy's window (the Connection's own window is the choker's). */
  readonly rate: RateEstimator;
  /** Pieces it has that we lack: interest without a scan per `have`. */
  wanted: number;
  /**
   * BEP 6: pieces it rejected a request for while it did not choke us (its
   * queue was full): not asked of it again until it sends a block (it has
   * room again), its queue with us is empty, it unchokes us anew, or the
   * next `tick()`, so that a reject does not come straight back as the
   * same request, reject after reject.
   */
  readonly refused: Set<number>;
  /**
   * Times `refused` was forgiven because nothing was left in flight, since
   * its last block: a remote that rejects everything, always, is asked
   * again only MAX_EMPTY_RETRIES times, not at the speed of its rejects.
   */
  emptyRetries: number;
  /** Pieces already announced as requested of it (one `requested` event each). */
  readonly announced: Set<number>;
  /**
   * While its remote has announced few pieces (SPARSE_PIECES; a
   * super-seeding owner, a peer that just joined): those we lack, so that
   * picking looks at them only (PickBudget.candidates). Undefined once it
   * has more.
   */
  sparse: Set<number> | undefined;
  readonly unsubscribe: Array<() => void>;
}

interface Assembly {
  readonly data: Buffer;
  readonly from: Set<string>;
}

/**
 * The download side of swarm mode: links Connections to the picker and the
 * min-rate policy. It keeps each link interested exactly while the remote
 * has something we lack, keeps each unchoked link's pipeline full, puts
 * blocks together into pieces and hands them to the sink, sends the cancels
 * of endgame, and moves the requests of a link that is too slow to the
 * others. Everything going up is an event (STATE.md: "keeping the picker and
 * the connections in step" is implemented here).
 *
 * Time: `tick()` runs the min-rate review; the caller calls it on a timer
 * (or a test, after advancing a ManualClock).
 */
export class SwarmScheduler extends TypedEmitter<SwarmSchedulerEvents> {
  readonly pipelineBytes: number;
  readonly pipelineQueueMs: number;
  readonly minPipelineBytes: number;
  private readonly cacheStored: () => boolean;
  readonly maxStoringPieces: number;
  private readonly components: SwarmSchedulerComponents;
  private readonly links = new Map<string, Link>();
  private readonly assembling = new Map<number, Assembly>();
  private storing = 0;
  /** Pieces being written, so `settled()` can wait for them. */
  private readonly writes = new Set<Promise<void>>();
  private closed = false;

  constructor(components: SwarmSchedulerComponents, options: SwarmSchedulerOptions = {}) {
    super();
    this.components = components;
    this.pipelineBytes = options.pipelineBytes ?? DEFAULT_PIPELINE_BYTES;
    this.pipelineQueueMs = options.pipelineQueueMs ?? DEFAULT_PIPELINE_QUEUE_MS;
    this.minPipelineBytes = options.minPipelineBytes ?? MIN_PIPELINE_BYTES;
    const cache = options.cacheStored ?? true;
    this.cacheStored = typeof cache === 'function' ? cache : () => cache;
    this.maxStoringPieces = options.maxStoringPieces ?? DEFAULT_MAX_STORING_PIECES;
    if (!(this.pipelineBytes > 0)) {
      throw new OptionError('pipelineBytes', `must be positive, got ${this.pipelineBytes}`);
    }
    if (!(this.pipelineQueueMs > 0)) {
      throw new OptionError('pipelineQueueMs', `must be positive, got ${this.pipelineQueueMs}`);
    }
    if (!(this.minPipelineBytes > 0)) {
      throw new OptionError('minPipelineBytes', `must be positive, got ${this.minPipelineBytes}`);
    }
    if (!Number.isInteger(this.maxStoringPieces) || this.maxStoringPieces < 1) {
      throw new OptionError(
        'maxStoringPieces',
        `must be a positive integer, got ${this.maxStoringPieces}`,
      );
    }
    // A throwing listener is a bug above us; report it as an error event rather than lose the scheduler's state.
    this.onListenerError = (error, event) => {
      if (event === 'error') {
        queueMicrotask(() => {
          throw error;
        });
      } else {
        this.emit('error', error as Error);
      }
    };
  }

  /** Starts downloading over `connection`, known as `id` (its label), from its bitfield on. */
  add(id: string, connection: Connection<MessageWire>, options: LinkOptions = {}): void {
    if (this.links.has(id)) throw new OptionError('id', `link ${id} is already scheduled`);
    const allowed = options.allowed;
    const remote = connection.remoteHas;
    const refused = new Set<number>();
    const base: PieceSet = allowed
      ? { has: (index) => remote.has(index) && allowed(index) }
      : remote;
    const link: Link = {
      id,
      connection,
      requestBytes: options.requestBytes ?? BLOCK_SIZE,
      // Without BEP 6 nothing is ever refused: the plain view, no extra test per piece.
      view: connection.fastActive
        ? { has: (index) => base.has(index) && !refused.has(index) }
        : base,
      refused,
      emptyRetries: 0,
      rate: new RateEstimator({
        clock: this.components.clock,
        windowMs: this.components.policy.windowMs,
      }),
      wanted: 0,
      announced: new Set(),
      sparse: new Set(),
      unsubscribe: [],
    };
    this.links.set(id, link);
    const on = link.unsubscribe;
    on.push(connection.on('bitfield', (remote) => this.onBitfield(link, remote.heldIds())));
    on.push(connection.on('have', (index) => this.onHave(link, index)));
    on.push(
      connection.on('unchoke', () => {
        link.refused.clear();
        this.fill(link);
      }),
    );
    on.push(connection.on('rejected', (request) => this.onRejected(link, request)));
    on.push(connection.on('allowedFast', () => this.fill(link)));
    on.push(
      connection.on('choke', (dropped) => {
        this.components.picker.requestsDropped(id, dropped);
        this.fillAll();
      }),
    );
    on.push(connection.on('piece', (piece) => this.onPiece(link, piece)));
    on.push(connection.on('closed', (close) => this.remove(link, close.unanswered)));
    // A connection that already told us what it has (added late) counts from here.
    if (connection.remoteHas.count() > 0) this.onBitfield(link, connection.remoteHas.heldIds());
  }

  /**
   * Stops downloading over link `id` at once, before its connection has
   * closed (a connection's `closed` comes a turn after `close()`): what it
   * had asked for goes back to the picker now, so a successor can be added
   * under the same id in the same turn. Its late `closed` finds nothing.
   */
  detach(id: string): void {
    const link = this.links.get(id);
    if (link) this.remove(link, [...link.connection.outgoing.values()]);
  }

  /**
   * The min-rate review: call it on a timer while something is in flight
   * (`idle` says when nothing is; `asked` when that ends). Slow links lose
   * their requests to the others.
   */
  tick(): void {
    if (this.closed) return;
    this.expireChoked();
    const samples = [...this.links.values()].map((link) => ({
      id: link.id,
      bytesInFlight: link.connection.bytesInFlight,
      bytesPerSec: link.rate.bytesPerSecond(),
    }));
    const stripped = new Set(this.components.policy.review(samples));
    for (const id of stripped) {
      const link = this.links.get(id)!;
      const cancelled = link.connection.cancelAll();
      this.components.picker.requestsDropped(id, cancelled);
      this.emit('stalled', id, cancelled.length);
    }
    if (stripped.size === 0) return;
    // The other links first: a stripped link asking first would take its own requests back as its probe.
    for (const link of this.links.values()) if (!stripped.has(link.id)) this.fill(link);
    for (const id of stripped) this.fill(this.links.get(id)!);
  }

  /**
   * BEP 6: requests a choke left standing and nobody answered go to the
   * others; and what links refused over their queues may be asked again.
   * Part of `tick()`; ring mode, which runs no min-rate review, calls it
   * on its own timer.
   */
  expireChoked(): void {
    let voidedAny = false;
    const again: Link[] = [];
    for (const link of this.links.values()) {
      if (link.refused.size > 0) {
        link.refused.clear();
        again.push(link);
      }
      const voided = link.connection.expireChoked();
      if (voided.length === 0) continue;
      this.components.picker.requestsDropped(link.id, voided);
      this.emit('rejectsMissing', link.id, voided.length);
      voidedAny = true;
    }
    if (voidedAny) this.fillAll();
    else for (const link of again) this.fill(link);
  }

  /**
   * BEP 6: the remote will not send this block. It is free for another link
   * at once (the others ask first, so they get it), not at the next review.
   */
  private onRejected(link: Link, request: OutgoingRequest): void {
    this.components.picker.requestsDropped(link.id, [request]);
    // Refused while it does not choke us: its queue is full, so not the same piece again soon.
    // While it chokes us, it will be asked nothing but its allowed-fast pieces anyway.
    if (!link.connection.peerChoking) link.refused.add(request.index);
    for (const other of this.links.values()) if (other !== link) this.fill(other);
    // All it had was rejected: its queue is empty now, so what filled it is gone (libtorrent
    // rejects what is past `max_allowed_in_request_queue` as it comes, then serves the rest).
    if (
      link.connection.outgoing.size === 0 &&
      link.refused.size > 0 &&
      link.emptyRetries < MAX_EMPTY_RETRIES
    ) {
      link.emptyRetries++;
      link.refused.clear();
    }
    this.fill(link);
  }

  /** Nothing is asked of any link: the review has nothing to watch until the next `asked`. */
  get idle(): boolean {
    for (const link of this.links.values()) if (link.connection.bytesInFlight > 0) return false;
    return true;
  }

  /** A stored piece was dropped (it failed a re-check): it is wanted again from whoever has it. */
  pieceLost(index: number): void {
    if (this.components.picker.stateOf(index) !== 'held') return;
    this.components.picker.pieceLost(index);
    for (const link of this.links.values()) {
      if (!link.connection.remoteHas.has(index)) continue;
      link.wanted++;
      this.noteSparse(link, index);
      this.updateInterest(link);
    }
    this.fillAll();
  }

  /** A link's policy changed (`allowed`): every link asks again for what it may now take. */
  refresh(): void {
    this.fillAll();
  }

  /** True when link `id` has a piece we lack that its policy lets us ask it for. */
  wants(id: string): boolean {
    const link = this.links.get(id);
    return link !== undefined && this.components.picker.wantsFrom(link.view);
  }

  /** Pieces asked of some link and not yet answered. */
  inFlight(): Set<number> {
    const out = new Set<number>();
    for (const link of this.links.values())
      for (const request of link.connection.outgoing.values()) out.add(request.index);
    return out;
  }

  /** Resolves once every complete piece handed to the sink has been stored or rejected. */
  async settled(): Promise<void> {
    while (this.writes.size > 0) await Promise.allSettled([...this.writes]);
  }

  /** Stops asking: links are left open (they belong to the torrent), their requests stay theirs. */
  close(): void {
    this.closed = true;
    for (const link of this.links.values()) for (const off of link.unsubscribe) off();
    this.links.clear();
  }

  private onBitfield(link: Link, held: number[]): void {
    this.components.picker.peerBitfield(link.connection.remoteHas);
    for (const index of held) {
      if (this.components.picker.stateOf(index) === 'held') continue;
      link.wanted++;
      this.noteSparse(link, index);
    }
    this.updateInterest(link);
    this.fill(link);
  }

  private onHave(link: Link, index: number): void {
    this.components.picker.peerHave(index);
    if (this.components.picker.stateOf(index) === 'held') return;
    link.wanted++;
    this.noteSparse(link, index);
    this.updateInterest(link);
    this.fill(link);
  }

  /** A piece we lack that `link`'s remote has: kept while the remote has few (see Link.sparse). */
  private noteSparse(link: Link, index: number): void {
    if (!link.sparse) return;
    link.sparse.add(index);
    if (link.sparse.size > SPARSE_PIECES) link.sparse = undefined;
  }

  private updateInterest(link: Link): void {
    link.connection.setInterested(link.wanted > 0);
  }

  private onPiece(link: Link, piece: PieceEvent): void {
    link.rate.record(piece.block.length);
    if (link.refused.size > 0) link.refused.clear();
    link.emptyRetries = 0;
    const outcome = this.components.picker.blockReceived(
      link.id,
      piece.index,
      piece.begin,
      piece.block.length,
    );
    for (const cancel of outcome.cancels)
      this.links.get(cancel.peer)?.connection.cancel(cancel.block);
    if (outcome.accepted) {
      let assembly = this.assembling.get(piece.index);
      if (!assembly) {
        const size = this.components.picker.geometry.pieceSize(piece.index);
        assembly = {
          data: this.components.buffers?.take(size) ?? Buffer.allocUnsafe(size),
          from: new Set(),
        };
        this.assembling.set(piece.index, assembly);
      }
      assembly.data.set(piece.block, piece.begin);
      assembly.from.add(link.id);
      if (outcome.pieceComplete) {
        this.assembling.delete(piece.index);
        const write = this.store(piece.index, assembly, link.id);
        this.writes.add(write);
        void write.finally(() => this.writes.delete(write));
      }
    }
    // Top up in batches, not one request per block received: half the syscalls on both ends.
    if (
      link.connection.bytesInFlight <=
      this.components.policy.maxInFlightBytes(link.id, this.pipelineOf(link)) / 2
    ) {
      this.fill(link);
    }
  }

  private async store(index: number, assembly: Assembly, lastFrom: string): Promise<void> {
    this.storing++;
    try {
      // Kept for serving: a swarm peer uploads about what it downloads, mostly pieces it just got,
      // and each one served from disk costs a read and a second SHA-1 (measured in bench:net's profiles).
      await this.components.sink.put(index, assembly.data, { cache: this.cacheStored() });
      this.components.picker.pieceVerified(index);
      for (const link of this.links.values()) {
        link.announced.delete(index);
        link.sparse?.delete(index);
        if (link.connection.remoteHas.has(index)) {
          link.wanted--;
          this.updateInterest(link);
        }
      }
      this.emit('pieceStored', index, lastFrom);
    } catch (err) {
      this.components.picker.pieceFailed(index);
      for (const link of this.links.values()) link.announced.delete(index);
      if (err instanceof ChunkError && err.code === 'ERR_CHUNK_HASH') {
        this.emit('pieceRejected', index, [...assembly.from]);
      } else {
        this.emit('error', err as Error);
      }
    } finally {
      this.storing--;
      this.components.buffers?.give(assembly.data);
    }
    this.fillAll();
  }

  private remove(link: Link, unanswered: readonly OutgoingRequest[]): void {
    if (this.links.get(link.id) !== link) return;
    for (const off of link.unsubscribe) off();
    this.links.delete(link.id);
    this.components.picker.peerGone(link.id, link.connection.remoteHas, unanswered);
    this.components.policy.forget(link.id);
    this.fillAll();
  }

  /** What this link may have asked of it now: its pipeline follows its rate (DEFAULT_PIPELINE_QUEUE_MS). */
  private pipelineOf(link: Link): number {
    return pipelineBytesFor(link.rate.bytesPerSecond(), {
      queueMs: this.pipelineQueueMs,
      minBytes: this.minPipelineBytes,
      maxBytes: this.pipelineBytes,
    });
  }

  private fillAll(): void {
    for (const link of this.links.values()) this.fill(link);
  }

  private fill(link: Link): void {
    const connection = link.connection;
    if (this.closed || connection.state !== 'live') return;
    // BEP 6: a link that chokes us may still be asked for its allowed-fast pieces.
    const fastOnly = connection.peerChoking;
    if (fastOnly && connection.allowedFast.size === 0) return;
    if (this.storing >= this.maxStoringPieces) return;
    const limit = this.components.policy.maxInFlightBytes(link.id, this.pipelineOf(link));
    const room = limit - connection.bytesInFlight;
    if (room <= 0) return;
    // Whole requests: a budget that ends inside a chunk would split that chunk over two links (one
    // sends its head, another its tail) for no gain. A link on probation keeps its small budget.
    const maxBytes = this.components.policy.onProbation(link.id)
      ? room
      : Math.ceil(room / link.requestBytes) * link.requestBytes;
    const allowedFast = connection.allowedFast;
    const view: PieceSet = fastOnly
      ? { has: (index) => allowedFast.has(index) && link.view.has(index) }
      : link.view;
    const candidates = fastOnly ? allowedFast : link.sparse;
    const suggested = connection.suggested;
    const picked = this.components.picker.pick(link.id, view, {
      maxBytes,
      requestBytes: link.requestBytes,
      ...(candidates ? { candidates } : {}),
      ...(suggested.size > 0 ? { suggested } : {}),
    });
    if (picked.length === 0) return;
    const refused: PickedBlock[] = [];
    connection.batch(() => {
      for (const request of picked) {
        if (!connection.request(request)) refused.push(request);
        else if (!link.announced.has(request.index)) {
          link.announced.add(request.index);
          this.emit('requested', request.index, link.id);
        }
      }
    });
    if (refused.length > 0) this.components.picker.requestsDropped(link.id, refused);
    if (refused.length < picked.length) this.emit('asked', link.id);
  }
}
