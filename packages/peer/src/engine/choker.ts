import { type Clock, OptionError, type Rng } from '@swarmdrop/protocol';

/** How often the regular slots are re-decided (BEP 3's reference client: every 10 s). */
export const DEFAULT_RECHOKE_INTERVAL_MS = 10_000;
/** How long one optimistic unchoke lasts before it rotates (three rechoke rounds, as in the reference client). */
export const DEFAULT_OPTIMISTIC_INTERVAL_MS = 30_000;
/** Regular unchoke slots, besides the optimistic one. */
export const DEFAULT_UNCHOKE_SLOTS = 4;
/** A connection younger than this counts as new for the optimistic draw. */
export const DEFAULT_NEW_CONNECTION_MS = 60_000;
/** How much likelier a new connection is to win the optimistic slot: it has nothing to reciprocate with yet. */
export const NEW_CONNECTION_WEIGHT = 3;
/** A remote we are interested in that sent no block for this long is snubbing us: no regular slot for it. */
export const DEFAULT_SNUB_TIMEOUT_MS = 60_000;

/** One connection as the choker sees it; the caller reads these off its Connection. */
export interface ChokeCandidate {
  readonly id: string;
  /** They want something we have (peer_interested): only they are worth a slot. */
  readonly interested: boolean;
  /** Payload bytes per second from them to us: what they give back. */
  readonly downloadBytesPerSec: number;
  /** Payload bytes per second from us to them: what a seed ranks by. */
  readonly uploadBytesPerSec: number;
  /** When the connection opened (Clock ms). */
  readonly connectedAtMs: number;
  /** We want something they have (am_interested): only then can they snub us. */
  readonly amInterested: boolean;
  /** When their last block arrived (Clock ms); undefined if none yet. */
  readonly lastPieceAtMs: number | undefined;
}

export interface ChokeDecision {
  /** Everyone to unchoke; every other candidate is choked. */
  readonly unchoked: ReadonlySet<string>;
  /** The regular slots, best first. */
  readonly regular: readonly string[];
  readonly optimistic: string | undefined;
}

export interface ChokerOptions {
  readonly clock: Clock;
  readonly rng: Rng;
  readonly unchokeSlots?: number;
  readonly rechokeIntervalMs?: number;
  readonly optimisticIntervalMs?: number;
  readonly newConnectionMs?: number;
  readonly snubTimeoutMs?: number;
}

/**
 * BitTorrent's choking algorithm, as the reference clients do it. Pure: the
 * caller reads rates off its connections, calls `rechoke()` when `isDue()`
 * (and when a connection comes or goes), and applies the decision.
 *
 * - A leecher gives its regular slots to the interested peers that upload to
 *   it fastest (reciprocation); one that has snubbed us for a minute gets no
 *   regular slot.
 * - A seed has nothing to receive, so it ranks by how fast each peer takes
 *   from it: its upload is spent where it moves fastest.
 * - One more slot is optimistic and rotates every 30 s, drawn at random among
 *   the other interested peers, new connections three times as likely: that
 *   is how a newcomer gets its first pieces and how a better partner is found.
 */
export class Choker {
  readonly unchokeSlots: number;
  readonly rechokeIntervalMs: number;
  readonly optimisticIntervalMs: number;
  readonly newConnectionMs: number;
  readonly snubTimeoutMs: number;
  private readonly clock: Clock;
  private readonly rng: Rng;
  private lastRoundAtMs: number | undefined;
  private optimisticId: string | undefined;
  private optimisticSinceMs = 0;

  constructor(options: ChokerOptions) {
    this.clock = options.clock;
    this.rng = options.rng;
    this.unchokeSlots = options.unchokeSlots ?? DEFAULT_UNCHOKE_SLOTS;
    this.rechokeIntervalMs = options.rechokeIntervalMs ?? DEFAULT_RECHOKE_INTERVAL_MS;
    this.optimisticIntervalMs = options.optimisticIntervalMs ?? DEFAULT_OPTIMISTIC_INTERVAL_MS;
    this.newConnectionMs = options.newConnectionMs ?? DEFAULT_NEW_CONNECTION_MS;
    this.snubTimeoutMs = options.snubTimeoutMs ?? DEFAULT_SNUB_TIMEOUT_MS;
    if (!Number.isInteger(this.unchokeSlots) || this.unchokeSlots < 0) {
      throw new OptionError('unchokeSlots', `must be a whole number, got ${this.unchokeSlots}`);
    }
    for (const [field, value] of [
      ['rechokeIntervalMs', this.rechokeIntervalMs],
      ['optimisticIntervalMs', this.optimisticIntervalMs],
      ['snubTimeoutMs', this.snubTimeoutMs],
    ] as const) {
      if (!(value > 0))
        throw new OptionError(field, `must be a positive number of ms, got ${value}`);
    }
  }

  /** True when a regular rechoke round is due. */
  isDue(): boolean {
    return (
      this.lastRoundAtMs === undefined ||
      this.clock.now() - this.lastRoundAtMs >= this.rechokeIntervalMs
    );
  }

  /** The optimistic unchoke in force, if any. */
  get optimistic(): string | undefined {
    return this.optimisticId;
  }

  /** Decides who is unchoked; `seeding` when we hold every piece. */
  rechoke(candidates: readonly ChokeCandidate[], seeding: boolean): ChokeDecision {
    const now = this.clock.now();
    this.lastRoundAtMs = now;
    const interested = candidates.filter((c) => c.interested);
    // A random key per candidate breaks ties in rate (everyone is at 0 at first) without favouring list order.
    const tie = new Map(interested.map((c) => [c.id, this.rng()]));
    const rateOf = (c: ChokeCandidate) => (seeding ? c.uploadBytesPerSec : c.downloadBytesPerSec);
    const eligible = seeding ? interested : interested.filter((c) => !this.isSnubbing(c, now));
    const regular = eligible
      .slice()
      .sort((a, b) => rateOf(b) - rateOf(a) || tie.get(a.id)! - tie.get(b.id)!)
      .slice(0, this.unchokeSlots)
      .map((c) => c.id);
    const inRegular = new Set(regular);

    const others = interested.filter((c) => !inRegular.has(c.id));
    const current = others.find((c) => c.id === this.optimisticId);
    const expired = now - this.optimisticSinceMs >= this.optimisticIntervalMs;
    if (!current || expired) {
      this.optimisticId = this.draw(others, now, expired ? this.optimisticId : undefined);
      this.optimisticSinceMs = now;
    }
    const unchoked = new Set(inRegular);
    if (this.optimisticId !== undefined) unchoked.add(this.optimisticId);
    return { unchoked, regular, optimistic: this.optimisticId };
  }

  private isSnubbing(c: ChokeCandidate, now: number): boolean {
    if (!c.amInterested) return false;
    return now - (c.lastPieceAtMs ?? c.connectedAtMs) >= this.snubTimeoutMs;
  }

  /** A weighted draw; the outgoing optimistic peer is passed over when anyone else can have a turn. */
  private draw(others: readonly ChokeCandidate[], now: number, outgoing: string | undefined) {
    const pool = others.length > 1 ? others.filter((c) => c.id !== outgoing) : others;
    if (pool.length === 0) return undefined;
    const weight = (c: ChokeCandidate) =>
      now - c.connectedAtMs < this.newConnectionMs ? NEW_CONNECTION_WEIGHT : 1;
    const total = pool.reduce((sum, c) => sum + weight(c), 0);
    let ticket = this.rng() * total;
    for (const c of pool) {
      ticket -= weight(c);
      if (ticket < 0) return c.id;
    }
    return pool[pool.length - 1]!.id;
  }
}
