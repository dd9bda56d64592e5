import {
  type Bitfield,
  BLOCK_SIZE,
  type Block,
  type Geometry,
  OptionError,
  type Rng,
} from '@swarmdrop/protocol';
import { RarityOrder } from './rarity-order.js';

/** Pieces picked at random before rarest-first starts: a new peer gets something to trade fast (libtorrent uses 4). */
export const DEFAULT_RANDOM_FIRST_PIECES = 4;
/** In endgame, at most this many connections are asked for the same block at once. */
export const DEFAULT_ENDGAME_MAX_REQUESTERS = 3;

export interface SwarmPickerOptions {
  readonly geometry: Geometry;
  /** What we hold already; the picker keeps it as the truth for "held", updated via `pieceVerified`. */
  readonly held: Bitfield;
  readonly rng: Rng;
  readonly blockSizeBytes?: number;
  readonly randomFirstPieces?: number;
  readonly endgameMaxRequesters?: number;
}

/** A block to ask one connection for. */
export interface PickedBlock {
  readonly index: number;
  readonly begin: number;
  readonly length: number;
}

/** A request to withdraw: `peer` was asked for a block that another connection has delivered. */
export interface CancelOrder {
  readonly peer: string;
  readonly block: PickedBlock;
}

export interface BlockOutcome {
  /** True when the block was new to us: keep its bytes. False for a duplicate or a block nobody wants. */
  readonly accepted: boolean;
  /** True when every block of the piece has arrived: hash it, then call pieceVerified or pieceFailed. */
  readonly pieceComplete: boolean;
  /** Other connections asked for the same block (endgame): send them a cancel. */
  readonly cancels: readonly CancelOrder[];
}

/** What a started piece looks like to the picker (see STATE.md). */
interface PieceProgress {
  readonly index: number;
  readonly blocks: readonly Block[];
  /** Connections asked for each block; empty when nobody is. */
  readonly requesters: Array<Set<string>>;
  readonly received: Uint8Array;
  receivedCount: number;
  /** Blocks neither received nor asked of anybody. */
  unrequested: number;
}

/**
 * Which blocks to ask a connection for, in swarm mode. Pure bookkeeping on
 * an injected RNG: no I/O, no clock.
 *
 * Order of preference for each connection (the policy of BitTorrent's
 * reference clients):
 * 1. blocks of pieces already started, so that pieces complete and can be
 *    shared (strict priority);
 * 2. while we have fewer than `randomFirstPieces` pieces, a random piece,
 *    because a rare piece comes slowly and a new peer needs something to
 *    trade at once;
 * 3. the rarest piece the connection has, random among equally rare;
 * 4. endgame: once every missing block is asked of somebody, blocks already
 *    asked of others, so that one slow link cannot hold up the end; when a
 *    block arrives, the other requesters get cancels.
 */
export class SwarmPicker {
  readonly geometry: Geometry;
  private readonly held: Bitfield;
  private readonly blockSizeBytes: number;
  private readonly randomFirstPieces: number;
  private readonly endgameMaxRequesters: number;
  private readonly rarity: RarityOrder;
  /** Started pieces, in the order they were started: the oldest is finished first. */
  private readonly started = new Map<number, PieceProgress>();
  /** Blocks not received and not asked of anybody, over all started pieces. */
  private unrequestedBlocks = 0;

  constructor(options: SwarmPickerOptions) {
    this.geometry = options.geometry;
    this.held = options.held;
    this.blockSizeBytes = options.blockSizeBytes ?? BLOCK_SIZE;
    this.randomFirstPieces = options.randomFirstPieces ?? DEFAULT_RANDOM_FIRST_PIECES;
    this.endgameMaxRequesters = options.endgameMaxRequesters ?? DEFAULT_ENDGAME_MAX_REQUESTERS;
    if (!Number.isInteger(this.blockSizeBytes) || this.blockSizeBytes <= 0) {
      throw new OptionError(
        'blockSizeBytes',
        `must be a positive integer, got ${this.blockSizeBytes}`,
      );
    }
    if (!Number.isInteger(this.endgameMaxRequesters) || this.endgameMaxRequesters < 1) {
      throw new OptionError(
        'endgameMaxRequesters',
        `must be a positive integer, got ${this.endgameMaxRequesters}`,
      );
    }
    if (this.held.size !== this.geometry.pieceCount) {
      throw new OptionError(
        'held',
        `has ${this.held.size} pieces, the torrent ${this.geometry.pieceCount}`,
      );
    }
    this.rarity = new RarityOrder(this.geometry.pieceCount, options.rng);
    for (const index of this.held.heldIds()) this.rarity.retire(index);
  }

  // --- availability, from the connections' events ---

  /** A connection's bitfield arrived (or a connection with a known bitfield joined). */
  peerBitfield(remote: Bitfield): void {
    for (const index of remote.heldIds()) this.rarity.increment(index);
  }

  peerHave(index: number): void {
    this.rarity.increment(index);
  }

  /** A connection closed: its pieces no longer count, and its requests are free for others. */
  peerGone(peer: string, remote: Bitfield, unanswered: Iterable<PickedBlock>): void {
    for (const index of remote.heldIds()) this.rarity.decrement(index);
    this.requestsDropped(peer, unanswered);
  }

  availability(index: number): number {
    return this.rarity.availability(index);
  }

  // --- picking ---

  /** True once every block we lack is asked of somebody: from here on, blocks are asked of several. */
  get inEndgame(): boolean {
    return this.rarity.activeCount > 0 && this.queuedCount() === 0 && this.unrequestedBlocks === 0;
  }

  /** True when `remote` has a piece we lack: whether to be interested in it. */
  wantsFrom(remote: Bitfield): boolean {
    for (const index of this.rarity.rarestFirst()) if (remote.has(index)) return true;
    return false;
  }

  /**
   * Up to `maxBlocks` blocks to ask `peer` for, among the pieces `remote`
   * has; each is recorded as asked of `peer` until it arrives or is dropped.
   */
  pick(peer: string, remote: Bitfield, maxBlocks: number): PickedBlock[] {
    const out: PickedBlock[] = [];
    if (maxBlocks <= 0) return out;
    // 1. Finish what is started.
    for (const piece of this.started.values()) {
      if (piece.unrequested > 0 && remote.has(piece.index)) this.take(peer, piece, out, maxBlocks);
      if (out.length >= maxBlocks) return out;
    }
    // 2 and 3. Start new pieces: a few at random, then rarest first.
    const order =
      this.held.count() < this.randomFirstPieces
        ? this.rarity.randomOrder()
        : this.rarity.rarestFirst();
    for (const index of order) {
      if (out.length >= maxBlocks) return out;
      if (this.started.has(index) || !remote.has(index)) continue;
      this.take(peer, this.start(index), out, maxBlocks);
    }
    // 4. Endgame: what others are already fetching.
    if (out.length < maxBlocks && this.inEndgame) this.takeDuplicates(peer, remote, out, maxBlocks);
    return out;
  }

  /** The blocks of `peer` no longer in flight (a choke, a cancel, a stall steal): free for others. */
  requestsDropped(peer: string, blocks: Iterable<PickedBlock>): void {
    for (const block of blocks) {
      const piece = this.started.get(block.index);
      if (!piece) continue;
      const k = this.blockNumber(piece, block.begin);
      if (k === undefined) continue;
      const requesters = piece.requesters[k]!;
      if (!requesters.delete(peer)) continue;
      if (requesters.size === 0 && !piece.received[k]) {
        piece.unrequested++;
        this.unrequestedBlocks++;
      }
    }
  }

  /**
   * A block arrived from `peer`. Duplicates and blocks of pieces nobody
   * started are not accepted. Every other connection that was asked for it
   * gets a cancel.
   */
  blockReceived(peer: string, index: number, begin: number): BlockOutcome {
    const piece = this.started.get(index);
    const k = piece ? this.blockNumber(piece, begin) : undefined;
    if (!piece || k === undefined || piece.received[k]) {
      // A duplicate: its requesters were cleared (and cancelled) when the first copy arrived.
      return { accepted: false, pieceComplete: false, cancels: [] };
    }
    const requesters = piece.requesters[k]!;
    if (requesters.size === 0) {
      // Unasked (it crossed a choke or a cancel), but it is data we lack.
      piece.unrequested--;
      this.unrequestedBlocks--;
    }
    piece.received[k] = 1;
    piece.receivedCount++;
    const block = { index, ...piece.blocks[k]! };
    const cancels: CancelOrder[] = [];
    for (const other of requesters) if (other !== peer) cancels.push({ peer: other, block });
    requesters.clear();
    return { accepted: true, pieceComplete: piece.receivedCount === piece.blocks.length, cancels };
  }

  /** The piece passed its hash and is stored: it leaves the picker for good. */
  pieceVerified(index: number): void {
    this.forgetStarted(index);
    this.held.set(index);
    this.rarity.retire(index);
  }

  /** The piece failed its hash: every block is wanted again, from anybody. */
  pieceFailed(index: number): void {
    this.forgetStarted(index);
  }

  /** Blocks we asked of `peer` and still wait for, per the picker. */
  requestedOf(peer: string): PickedBlock[] {
    const out: PickedBlock[] = [];
    for (const piece of this.started.values()) {
      piece.requesters.forEach((set, k) => {
        if (set.has(peer)) out.push({ index: piece.index, ...piece.blocks[k]! });
      });
    }
    return out;
  }

  /** Where a piece is in its life: queued → started → (complete, awaiting its hash) → held. */
  stateOf(index: number): 'queued' | 'started' | 'complete' | 'held' {
    if (this.held.has(index)) return 'held';
    const piece = this.started.get(index);
    if (!piece) return 'queued';
    return piece.receivedCount === piece.blocks.length ? 'complete' : 'started';
  }

  private queuedCount(): number {
    return this.rarity.activeCount - this.started.size;
  }

  private start(index: number): PieceProgress {
    const blocks = this.geometry.blocks(index, this.blockSizeBytes);
    const piece: PieceProgress = {
      index,
      blocks,
      requesters: blocks.map(() => new Set<string>()),
      received: new Uint8Array(blocks.length),
      receivedCount: 0,
      unrequested: blocks.length,
    };
    this.started.set(index, piece);
    this.unrequestedBlocks += blocks.length;
    return piece;
  }

  private take(peer: string, piece: PieceProgress, out: PickedBlock[], maxBlocks: number): void {
    for (
      let k = 0;
      k < piece.blocks.length && out.length < maxBlocks && piece.unrequested > 0;
      k++
    ) {
      const requesters = piece.requesters[k]!;
      if (piece.received[k] || requesters.size > 0) continue;
      requesters.add(peer);
      piece.unrequested--;
      this.unrequestedBlocks--;
      out.push({ index: piece.index, ...piece.blocks[k]! });
    }
  }

  private takeDuplicates(
    peer: string,
    remote: Bitfield,
    out: PickedBlock[],
    maxBlocks: number,
  ): void {
    // Fewest requesters first, so that every remaining block gets a second source before any gets a third.
    const candidates: Array<{ piece: PieceProgress; k: number; load: number }> = [];
    for (const piece of this.started.values()) {
      if (!remote.has(piece.index)) continue;
      piece.requesters.forEach((set, k) => {
        if (!piece.received[k] && !set.has(peer) && set.size < this.endgameMaxRequesters) {
          candidates.push({ piece, k, load: set.size });
        }
      });
    }
    candidates.sort((a, b) => a.load - b.load);
    for (const { piece, k } of candidates) {
      if (out.length >= maxBlocks) return;
      piece.requesters[k]!.add(peer);
      out.push({ index: piece.index, ...piece.blocks[k]! });
    }
  }

  private forgetStarted(index: number): void {
    const piece = this.started.get(index);
    if (!piece) return;
    this.unrequestedBlocks -= piece.unrequested;
    this.started.delete(index);
  }

  private blockNumber(piece: PieceProgress, begin: number): number | undefined {
    if (begin % this.blockSizeBytes !== 0) return undefined;
    const k = begin / this.blockSizeBytes;
    return k < piece.blocks.length ? k : undefined;
  }
}
