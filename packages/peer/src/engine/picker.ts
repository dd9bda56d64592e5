import {
  Bitfield,
  BLOCK_SIZE,
  type Block,
  type Geometry,
  OptionError,
  type Rng,
  randomBelow,
} from '@swarmdrop/protocol';
import { RarityOrder } from './rarity-order.js';

/** Pieces picked at random before rarest-first starts: a new peer gets something to trade fast (libtorrent uses 4). */
export const DEFAULT_RANDOM_FIRST_PIECES = 4;
/** In endgame, at most this many connections are asked for the same block at once. */
export const DEFAULT_ENDGAME_MAX_REQUESTERS = 3;

export interface SwarmPickerOptions {
  readonly geometry: Geometry;
  /**
   * What we hold at the start. Copied: from then on the picker's "held" moves
   * only with `pieceVerified`, because the store marks a piece held before its
   * put resolves, and the picker must see each piece become held exactly once.
   */
  readonly held: Bitfield;
  readonly rng: Rng;
  /**
   * The grid every piece is cut into (16 KiB, what stock clients take). A
   * connection may be asked for several adjacent grid blocks in one request
   * (`requestBytes`), but bookkeeping, endgame and cancels work per grid block.
   */
  readonly blockSizeBytes?: number;
  readonly randomFirstPieces?: number;
  readonly endgameMaxRequesters?: number;
}

/** One request to send to one connection: a run of adjacent grid blocks of one piece. */
export interface PickedBlock {
  readonly index: number;
  readonly begin: number;
  readonly length: number;
}

/**
 * The pieces one connection may be asked for: its remote's bitfield, or a
 * view of it narrowed by the link's policy (a ring's owner link: its batch).
 */
export type PieceSet = Pick<Bitfield, 'has'>;

/** How much to ask one connection for, in one `pick`. */
export interface PickBudget {
  /**
   * Start another request while the bytes picked in this call are below
   * this (the link's free pipeline); a request is never cut short for it, so
   * the total may pass it by less than one request.
   */
  readonly maxBytes: number;
  /**
   * Largest single request: the grid block for a stock client; up to a whole
   * piece for a swarmdrop remote, a sixth of the per-request work on both ends.
   */
  readonly requestBytes?: number;
  /**
   * Every piece the connection has that we may still want, when the caller
   * knows them to be few (a super-seeding owner reveals its pieces a few
   * `have`s at a time): new pieces are then picked among these, in the same
   * rarest-first order, instead of walking the whole order for each `have`
   * (O(pieces) per have made 2,622 haves cost 0.5 CPU-s, --cpu-prof).
   */
  readonly candidates?: Iterable<number>;
  /**
   * BEP 6: pieces the remote suggested. A hint only: one is started before
   * the piece the order would start when it is as rare (same availability),
   * and in the random first pieces, where any piece is as good; never over
   * a rarer piece, nor over pieces already started.
   */
  readonly suggested?: Iterable<number>;
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
  /** Per grid block: the connections asked for it, each with the request that covers it. */
  readonly requesters: Array<Map<string, PickedBlock>>;
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
  private readonly rng: Rng;
  /** Started pieces, in the order they were started: the oldest is finished first. */
  private readonly started = new Map<number, PieceProgress>();
  /** Blocks not received and not asked of anybody, over all started pieces. */
  private unrequestedBlocks = 0;

  constructor(options: SwarmPickerOptions) {
    this.geometry = options.geometry;
    this.held = Bitfield.fromBytes(options.held.toBytes(), options.held.size);
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
    this.rng = options.rng;
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
  wantsFrom(remote: PieceSet): boolean {
    for (const index of this.rarity.rarestFirst()) if (remote.has(index)) return true;
    return false;
  }

  /**
   * Requests to send `peer`, among the pieces `remote` has, up to the
   * budget; each is recorded as asked of `peer` until it arrives or is dropped.
   */
  pick(peer: string, remote: PieceSet, budget: PickBudget): PickedBlock[] {
    const out: PickedBlock[] = [];
    const requestBytes = Math.max(this.blockSizeBytes, budget.requestBytes ?? this.blockSizeBytes);
    const room = { left: budget.maxBytes };
    if (room.left <= 0) return out;
    // 1. Finish what is started.
    for (const piece of this.started.values()) {
      if (piece.unrequested > 0 && remote.has(piece.index)) {
        this.take(peer, piece, out, room, requestBytes);
      }
      if (room.left <= 0) return out;
    }
    // 2 and 3. Start new pieces: a few at random, then rarest first.
    const order = budget.candidates
      ? this.candidateOrder(budget.candidates)
      : this.held.count() < this.randomFirstPieces
        ? this.rarity.randomOrder()
        : this.rarity.rarestFirst();
    const random = this.held.count() < this.randomFirstPieces;
    let suggestions = budget.suggested;
    for (const index of order) {
      if (room.left <= 0) return out;
      if (this.started.has(index) || !remote.has(index)) continue;
      if (suggestions) {
        // The first piece the order would start sets the level a suggestion must match.
        this.takeSuggested(
          peer,
          remote,
          suggestions,
          random ? undefined : index,
          out,
          room,
          requestBytes,
        );
        suggestions = undefined;
        if (room.left <= 0) return out;
        if (this.started.has(index)) continue;
      }
      this.take(peer, this.start(index), out, room, requestBytes);
    }
    // 4. Endgame: what others are already fetching, one grid block per request.
    if (room.left > 0 && this.inEndgame) this.takeDuplicates(peer, remote, out, room);
    return out;
  }

  /** Requests of `peer` no longer in flight (a choke, a cancel, a stall steal): free for others. */
  requestsDropped(peer: string, requests: Iterable<PickedBlock>): void {
    for (const request of requests) {
      const piece = this.started.get(request.index);
      if (!piece) continue;
      for (const k of this.gridBlocks(piece, request.begin, request.length))
        this.unask(piece, k, peer);
    }
  }

  /**
   * A block arrived from `peer` (one whole answer to one request). Not
   * accepted when every grid block it covers is already here, or its piece
   * is not started. Every other connection asked for any block it covers
   * gets its whole request cancelled; the rest of such a request is
   * unasked again, for the next pick.
   */
  blockReceived(peer: string, index: number, begin: number, length: number): BlockOutcome {
    const piece = this.started.get(index);
    const covered = piece ? this.gridBlocks(piece, begin, length) : [];
    if (!piece || covered.length === 0 || covered.every((k) => piece.received[k])) {
      // A duplicate: its requesters were cleared (and cancelled) when the first copy arrived.
      if (piece) this.requestsDropped(peer, [{ index, begin, length }]);
      return { accepted: false, pieceComplete: false, cancels: [] };
    }
    const cancels = new Map<string, CancelOrder>();
    for (const k of covered) {
      for (const [other, request] of piece.requesters[k]!) {
        if (other === peer) continue;
        cancels.set(`${other}/${request.begin}`, { peer: other, block: request });
      }
    }
    // Our own request and theirs are over: every grid block they cover loses those requesters.
    this.requestsDropped(peer, [{ index, begin, length }]);
    for (const { peer: other, block } of cancels.values()) this.requestsDropped(other, [block]);
    for (const k of covered) {
      if (piece.received[k]) continue;
      if (piece.requesters[k]!.size === 0) {
        // It was unasked (dropped above, or crossed a choke): it leaves the unasked count.
        piece.unrequested--;
        this.unrequestedBlocks--;
      }
      piece.received[k] = 1;
      piece.receivedCount++;
    }
    return {
      accepted: true,
      pieceComplete: piece.receivedCount === piece.blocks.length,
      cancels: [...cancels.values()],
    };
  }

  /** The piece passed its hash and is stored: it leaves the picker for good. */
  pieceVerified(index: number): void {
    this.forgetStarted(index);
    this.held.set(index);
    this.rarity.retire(index);
  }

  /**
   * We lost a held piece (its stored copy failed a re-check and was dropped):
   * it is queued again, at its place in the rarity order.
   */
  pieceLost(index: number): void {
    if (!this.held.clear(index)) return;
    this.rarity.restore(index);
  }

  /** The piece failed its hash: every block is wanted again, from anybody. */
  pieceFailed(index: number): void {
    this.forgetStarted(index);
  }

  /** Requests of `peer` the picker counts as in flight. */
  requestedOf(peer: string): PickedBlock[] {
    const out = new Map<string, PickedBlock>();
    for (const piece of this.started.values()) {
      for (const requesters of piece.requesters) {
        const request = requesters.get(peer);
        if (request) out.set(`${request.index}:${request.begin}`, request);
      }
    }
    return [...out.values()];
  }

  /** Where a piece is in its life: queued → started → (complete, awaiting its hash) → held. */
  stateOf(index: number): 'queued' | 'started' | 'complete' | 'held' {
    if (this.held.has(index)) return 'held';
    const piece = this.started.get(index);
    if (!piece) return 'queued';
    return piece.receivedCount === piece.blocks.length ? 'complete' : 'started';
  }

  /**
   * Checks the invariants of STATE.md against the whole state and throws on
   * the first one broken. O(blocks): for tests and debugging, not for a hot path.
   */
  assertConsistent(): void {
    let unasked = 0;
    for (const piece of this.started.values()) {
      if (this.held.has(piece.index))
        throw new Error(`piece ${piece.index} is both held and started`);
      let received = 0;
      let pieceUnasked = 0;
      piece.requesters.forEach((requesters, k) => {
        if (piece.received[k]) {
          received++;
          if (requesters.size > 0)
            throw new Error(`block ${piece.index}/${k} received but still asked`);
        } else if (requesters.size === 0) {
          pieceUnasked++;
        } else if (requesters.size > 1 && !this.duplicatesAllowed(requesters.size)) {
          throw new Error(`block ${piece.index}/${k} asked of ${requesters.size} connections`);
        }
        for (const [peer, request] of requesters) {
          const covered = this.gridBlocks(piece, request.begin, request.length);
          if (request.index !== piece.index || !covered.includes(k)) {
            throw new Error(`block ${piece.index}/${k}: ${peer}'s request does not cover it`);
          }
        }
      });
      if (received !== piece.receivedCount)
        throw new Error(`piece ${piece.index}: received count off`);
      if (pieceUnasked !== piece.unrequested)
        throw new Error(`piece ${piece.index}: unasked count off`);
      unasked += pieceUnasked;
    }
    if (unasked !== this.unrequestedBlocks) throw new Error('unrequestedBlocks is off');
    const active = [...this.rarity.rarestFirst()];
    for (let k = 1; k < active.length; k++) {
      if (this.rarity.availability(active[k]!) < this.rarity.availability(active[k - 1]!)) {
        throw new Error('the rarity order is not sorted');
      }
    }
    if (active.length + this.held.count() !== this.geometry.pieceCount) {
      throw new Error('active and held pieces do not add up');
    }
  }

  /** The candidates we lack and have not started, rarest first (random while we hold few, as pick does). */
  private candidateOrder(candidates: Iterable<number>): number[] {
    const out: number[] = [];
    for (const index of candidates)
      if (!this.held.has(index) && !this.started.has(index)) out.push(index);
    if (this.held.count() < this.randomFirstPieces) {
      for (let i = out.length - 1; i > 0; i--) {
        const j = randomBelow(this.rng, i + 1);
        [out[i], out[j]] = [out[j]!, out[i]!];
      }
      return out;
    }
    return out.sort((a, b) => this.rarity.position(a) - this.rarity.position(b));
  }

  /** Starts the suggested pieces `remote` has that are as rare as `level` (any, without one). */
  private takeSuggested(
    peer: string,
    remote: PieceSet,
    suggested: Iterable<number>,
    level: number | undefined,
    out: PickedBlock[],
    room: { left: number },
    requestBytes: number,
  ): void {
    const availability = level === undefined ? undefined : this.rarity.availability(level);
    for (const index of suggested) {
      if (room.left <= 0) return;
      if (index < 0 || index >= this.geometry.pieceCount) continue;
      if (this.held.has(index) || this.started.has(index) || !remote.has(index)) continue;
      if (availability !== undefined && this.rarity.availability(index) !== availability) continue;
      this.take(peer, this.start(index), out, room, requestBytes);
    }
  }

  /** Outside endgame a block has one requester; a block may have more once endgame began (it can end again). */
  private duplicatesAllowed(requesters: number): boolean {
    return requesters <= this.endgameMaxRequesters;
  }

  private queuedCount(): number {
    return this.rarity.activeCount - this.started.size;
  }

  private start(index: number): PieceProgress {
    const blocks = this.geometry.blocks(index, this.blockSizeBytes);
    const piece: PieceProgress = {
      index,
      blocks,
      requesters: blocks.map(() => new Map<string, PickedBlock>()),
      received: new Uint8Array(blocks.length),
      receivedCount: 0,
      unrequested: blocks.length,
    };
    this.started.set(index, piece);
    this.unrequestedBlocks += blocks.length;
    return piece;
  }

  /** Asks `peer` for the unasked blocks of `piece`, in runs of up to `requestBytes`. */
  private take(
    peer: string,
    piece: PieceProgress,
    out: PickedBlock[],
    room: { left: number },
    requestBytes: number,
  ): void {
    const n = piece.blocks.length;
    for (let k = 0; k < n && room.left > 0 && piece.unrequested > 0; k++) {
      if (!this.isUnasked(piece, k)) continue;
      let end = k + 1;
      let length = piece.blocks[k]!.length;
      while (
        end < n &&
        this.isUnasked(piece, end) &&
        length + piece.blocks[end]!.length <= requestBytes
      ) {
        length += piece.blocks[end]!.length;
        end++;
      }
      const request = { index: piece.index, begin: piece.blocks[k]!.begin, length };
      for (let j = k; j < end; j++) {
        piece.requesters[j]!.set(peer, request);
        piece.unrequested--;
        this.unrequestedBlocks--;
      }
      out.push(request);
      room.left -= length;
      k = end - 1;
    }
  }

  private takeDuplicates(
    peer: string,
    remote: PieceSet,
    out: PickedBlock[],
    room: { left: number },
  ): void {
    // Fewest requesters first, so that every remaining block gets a second source before any gets a third.
    const candidates: Array<{ piece: PieceProgress; k: number; load: number }> = [];
    for (const piece of this.started.values()) {
      if (!remote.has(piece.index)) continue;
      piece.requesters.forEach((requesters, k) => {
        if (
          !piece.received[k] &&
          !requesters.has(peer) &&
          requesters.size < this.endgameMaxRequesters
        ) {
          candidates.push({ piece, k, load: requesters.size });
        }
      });
    }
    candidates.sort((a, b) => a.load - b.load);
    for (const { piece, k } of candidates) {
      if (room.left <= 0) return;
      const request = { index: piece.index, ...piece.blocks[k]! };
      piece.requesters[k]!.set(peer, request);
      out.push(request);
      room.left -= request.length;
    }
  }

  private isUnasked(piece: PieceProgress, k: number): boolean {
    return !piece.received[k] && piece.requesters[k]!.size === 0;
  }

  /** Takes `peer` off grid block `k`; a block left with nobody asked and not received is unasked again. */
  private unask(piece: PieceProgress, k: number, peer: string): void {
    if (!piece.requesters[k]!.delete(peer)) return;
    if (piece.requesters[k]!.size === 0 && !piece.received[k]) {
      piece.unrequested++;
      this.unrequestedBlocks++;
    }
  }

  private forgetStarted(index: number): void {
    const piece = this.started.get(index);
    if (!piece) return;
    this.unrequestedBlocks -= piece.unrequested;
    this.started.delete(index);
  }

  /**
   * The grid blocks a request covers: it must start on the grid and end on
   * it or at the piece's end; anything else covers nothing.
   */
  private gridBlocks(piece: PieceProgress, begin: number, length: number): number[] {
    if (begin % this.blockSizeBytes !== 0 || length <= 0) return [];
    const first = begin / this.blockSizeBytes;
    const out: number[] = [];
    let end = begin;
    for (let k = first; k < piece.blocks.length && end < begin + length; k++) {
      out.push(k);
      end += piece.blocks[k]!.length;
    }
    return end === begin + length ? out : [];
  }
}
