import {
  type Bitfield,
  type Clock,
  MONOTONIC_CLOCK,
  OptionError,
  type Rng,
  randomBelow,
} from '@swarmdrop/protocol';

/**
 * Most pieces offered to one peer and not yet sent: four chunks (400 KiB at
 * the default size) keep the owner's link to a lone peer busy while it
 * requests, where BEP 16's one at a time leaves the link idle for a round
 * trip per chunk.
 */
export const DEFAULT_OFFERS_PER_PEER = 4;
/**
 * Offers in force over all peers, shared out (at least one each, at most
 * offersPerPeer): 4, 4, 2 and 1 per peer at 1, 4, 8 and 16+ peers. The
 * owner's upload is split among the peers it sends to, so each offer in
 * force makes every piece arrive later: with four each, at N=20 the owner
 * had 80 chunks (8 MB, 1.6 s at 40 Mbit/s) under way at once, all finishing
 * together at the end, each on one peer, for the swarm to spread afterwards.
 * Sixteen (1.6 MB) still keep the owner's link busy while some peers are
 * between a piece and their next request.
 */
export const DEFAULT_OFFERS_IN_FORCE = 16;
/**
 * How long a first copy may wait, offered and unsent, before second copies
 * go out beside it. While any first copy is under way the owner offers no
 * second ones: its upload is what D_min is made of, and each second copy
 * sent before the last first one delays the end by a chunk's time (bench:net
 * at N=20 measured 118 of them, half the file again). The grace keeps a
 * peer that is slow to ask or to take its piece from idling the owner.
 */
export const DEFAULT_FIRST_COPY_GRACE_MS = 2_000;
/**
 * The grace grows to this many times how long first copies have been
 * taking from offer to sent (a moving average): on a slow link the offers
 * in force take longer than DEFAULT_FIRST_COPY_GRACE_MS to leave even when
 * nobody is slow (16 chunks of 100 KiB are 2.6 s at 5 Mbit/s), and a fixed
 * grace then let second copies out beside first ones all the time.
 */
export const FIRST_COPY_GRACE_FACTOR = 2;
/** Weight of the newest first copy's offer-to-sent time in that average. */
const FIRST_COPY_EWMA_WEIGHT = 0.1;
/** Candidates compared for "fewest known copies" when choosing within one level: bounds the work per offer. */
const COPIES_SCAN_LIMIT = 64;

export interface InitialSeederOptions {
  readonly pieceCount: number;
  readonly rng: Rng;
  /** Most offers in force per peer (default DEFAULT_OFFERS_PER_PEER). */
  readonly offersPerPeer?: number;
  /** Offers in force over all peers, shared out (default DEFAULT_OFFERS_IN_FORCE). */
  readonly offersInForce?: number;
  /** See DEFAULT_FIRST_COPY_GRACE_MS; 0 lets second copies go out beside first ones. */
  readonly firstCopyGraceMs?: number;
  readonly clock?: Clock;
}

interface PeerRecord {
  /** What the peer is known to hold, from its bitfield and haves. */
  readonly holds: Set<number>;
  /**
   * Offered to it and not yet sent by us, nor obtained by it elsewhere; the
   * value is when, for a first copy (no one had been offered it), else undefined.
   */
  readonly offered: Map<number, number | undefined>;
}

/**
 * Initial seeding ("super-seeding", BEP 16), pure: instead of its whole
 * bitfield, the owner tells each peer about a few pieces at a time (`have`),
 * chosen so that **every piece goes out once before any goes out twice**.
 * The peers then trade among themselves what only one of them got, so the
 * owner's upload carries each byte of the file about once, which is what
 * D_min assumes.
 *
 * State, per piece: how many times it has gone out (offered and not
 * withdrawn); per peer: what it holds (from haves) and what is offered to it.
 * An offer is withdrawn when the peer leaves before it was sent, or gets the
 * piece from someone else first: then the owner's copy did not go out.
 */
export class InitialSeeder {
  readonly pieceCount: number;
  readonly offersPerPeer: number;
  readonly offersInForce: number;
  readonly firstCopyGraceMs: number;
  private readonly rng: Rng;
  private readonly clock: Clock;
  /** Times each piece has gone out from the owner (offers in force plus sends). */
  private readonly out: Uint32Array;
  /** Peers known to hold each piece: the tie-break within a level, rarer first. */
  private readonly copies: Uint32Array;
  /** levels[k]: the pieces that have gone out k times, in no order (swap-remove). */
  private readonly levels: number[][] = [];
  private readonly posInLevel: Int32Array;
  private readonly peers = new Map<string, PeerRecord>();
  /** Moving average of first copies' offer-to-sent time, ms (0 until one was sent). */
  private firstCopyMs = 0;

  constructor(options: InitialSeederOptions) {
    this.pieceCount = options.pieceCount;
    this.rng = options.rng;
    this.offersPerPeer = options.offersPerPeer ?? DEFAULT_OFFERS_PER_PEER;
    this.offersInForce = options.offersInForce ?? DEFAULT_OFFERS_IN_FORCE;
    this.firstCopyGraceMs = options.firstCopyGraceMs ?? DEFAULT_FIRST_COPY_GRACE_MS;
    this.clock = options.clock ?? MONOTONIC_CLOCK;
    for (const [name, value] of [
      ['offersPerPeer', this.offersPerPeer],
      ['offersInForce', this.offersInForce],
    ] as const) {
      if (!Number.isInteger(value) || value < 1) {
        throw new OptionError(name, `must be a positive integer, got ${value}`);
      }
    }
    if (!(this.firstCopyGraceMs >= 0)) {
      throw new OptionError(
        'firstCopyGraceMs',
        `must be a number of ms >= 0, got ${this.firstCopyGraceMs}`,
      );
    }
    this.out = new Uint32Array(this.pieceCount);
    this.copies = new Uint32Array(this.pieceCount);
    this.posInLevel = new Int32Array(this.pieceCount);
    this.levels.push(Array.from({ length: this.pieceCount }, (_, i) => i));
    for (let i = 0; i < this.pieceCount; i++) this.posInLevel[i] = i;
  }

  addPeer(id: string): void {
    if (!this.peers.has(id)) this.peers.set(id, { holds: new Set(), offered: new Map() });
  }

  /** The peer's bitfield arrived. */
  peerBitfield(id: string, remote: Bitfield): void {
    for (const index of remote.heldIds()) this.peerHas(id, index);
  }

  /** The peer holds `index` now (its `have`, or a bit in its bitfield). */
  peerHas(id: string, index: number): void {
    const peer = this.peers.get(id);
    if (!peer || index < 0 || index >= this.pieceCount || peer.holds.has(index)) return;
    peer.holds.add(index);
    this.copies[index]!++;
    // Offered but obtained elsewhere before we sent it: our copy did not go out after all.
    if (peer.offered.delete(index)) this.moveLevel(index, -1);
  }

  /**
   * The owner finished sending `index` to the peer: the offer is fulfilled
   * and counts for good, and the peer holds it from now on (its `have` may
   * come later; until then it must not be offered the piece again).
   * True when it was a first copy: second copies held back for it may go now.
   */
  pieceSent(id: string, index: number): boolean {
    const peer = this.peers.get(id);
    if (!peer?.offered.has(index)) return false;
    const offeredAt = peer.offered.get(index);
    peer.offered.delete(index);
    if (offeredAt !== undefined) {
      const took = this.clock.now() - offeredAt;
      this.firstCopyMs =
        this.firstCopyMs === 0
          ? took
          : this.firstCopyMs + FIRST_COPY_EWMA_WEIGHT * (took - this.firstCopyMs);
    }
    peer.holds.add(index);
    this.copies[index]!++;
    return offeredAt !== undefined;
  }

  /** The peer left: offers it never took did not go out; the copies it held are gone with it. */
  removePeer(id: string): void {
    const peer = this.peers.get(id);
    if (!peer) return;
    for (const index of peer.offered.keys()) this.moveLevel(index, -1);
    for (const index of peer.holds) this.copies[index]!--;
    this.peers.delete(id);
  }

  /**
   * New pieces to announce (`have`) to the peer now, topping it up to
   * `offersPerPeer` offers in force. Each comes from the lowest level (gone
   * out least) that has a piece the peer neither holds nor was offered;
   * within a level, the fewest known copies, then at random.
   */
  offers(id: string): number[] {
    const peer = this.peers.get(id);
    if (!peer) return [];
    const fresh: number[] = [];
    const limit = this.offersPerPeerNow();
    // Second copies wait while a first copy is under way (within its grace): asked once per call.
    let secondsAllowed: boolean | undefined;
    while (peer.offered.size < limit) {
      const index = this.choose(peer, () => {
        secondsAllowed ??= !this.firstCopyPending();
        return secondsAllowed;
      });
      if (index === undefined) break;
      const first = this.out[index] === 0;
      peer.offered.set(index, first ? this.clock.now() : undefined);
      this.moveLevel(index, +1);
      fresh.push(index);
    }
    return fresh;
  }

  /** Offers in force per peer now: DEFAULT_OFFERS_IN_FORCE shared out, within 1..offersPerPeer. */
  offersPerPeerNow(): number {
    const share = Math.ceil(this.offersInForce / Math.max(1, this.peers.size));
    return Math.max(1, Math.min(this.offersPerPeer, share));
  }

  /**
   * How long a first copy may stay offered and unsent before second copies
   * go out beside it: the configured grace, or FIRST_COPY_GRACE_FACTOR times
   * what first copies have been taking, whichever is longer.
   */
  currentGraceMs(): number {
    if (this.firstCopyGraceMs === 0) return 0;
    return Math.max(this.firstCopyGraceMs, FIRST_COPY_GRACE_FACTOR * this.firstCopyMs);
  }

  /** Some first copy is offered, unsent, and younger than the grace. */
  private firstCopyPending(): boolean {
    if (this.firstCopyGraceMs === 0) return false;
    const since = this.clock.now() - this.currentGraceMs();
    for (const peer of this.peers.values())
      for (const at of peer.offered.values()) if (at !== undefined && at > since) return true;
    return false;
  }

  /** Whether the peer may be served `index`: only what it was offered (a stock client asks for nothing else). */
  isOffered(id: string, index: number): boolean {
    return this.peers.get(id)?.offered.has(index) ?? false;
  }

  /** Times `index` has gone out from the owner. */
  timesOut(index: number): number {
    return this.out[index] ?? 0;
  }

  /** Pieces offered to the peer and in force. */
  offeredTo(id: string): number[] {
    return [...(this.peers.get(id)?.offered.keys() ?? [])];
  }

  private choose(peer: PeerRecord, secondsAllowed: () => boolean): number | undefined {
    for (const [times, level] of this.levels.entries()) {
      if (level.length === 0) continue;
      if (times > 0 && !secondsAllowed()) return undefined;
      let best: number | undefined;
      let seen = 0;
      const start = randomBelow(this.rng, level.length);
      for (let k = 0; k < level.length && seen < COPIES_SCAN_LIMIT; k++) {
        const index = level[(start + k) % level.length]!;
        if (peer.holds.has(index) || peer.offered.has(index)) continue;
        seen++;
        if (best === undefined || this.copies[index]! < this.copies[best]!) best = index;
      }
      if (best !== undefined) return best;
    }
    return undefined;
  }

  private moveLevel(index: number, delta: 1 | -1): void {
    const from = this.out[index]!;
    const to = from + delta;
    const level = this.levels[from]!;
    const pos = this.posInLevel[index]!;
    const last = level.pop()!;
    if (last !== index) {
      level[pos] = last;
      this.posInLevel[last] = pos;
    }
    while (this.levels.length <= to) this.levels.push([]);
    this.posInLevel[index] = this.levels[to]!.length;
    this.levels[to]!.push(index);
    this.out[index] = to;
  }
}
