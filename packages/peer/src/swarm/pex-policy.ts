import {
  type Clock,
  formatEndpoint,
  OptionError,
  PEX_INTERVAL_MS,
  PEX_MAX_ADDED,
  type PexMessage,
  type PexPeer,
} from '@swarmdrop/protocol';

/**
 * Peer exchange (BEP 11) as swarm mode runs it: what we tell one remote and
 * when (PexSender), how often a remote may tell us (PexFloodGuard), and
 * which of the addresses we were told we dial, when (PexDialBudget). Pure:
 * the session calls them on its own timer, with the injected clock. Why the
 * numbers are what they are: docs/security.md, "Peer exchange".
 */

/** Of one PEX message, at most this many addresses are ever dialled; the rest is dropped. */
export const PEX_DIALS_PER_MESSAGE = 10;
/** Dials of addresses learnt from one source (a remote host, however many connections), per PEX_SOURCE_WINDOW_MS. */
export const PEX_DIALS_PER_SOURCE = 20;
export const PEX_SOURCE_WINDOW_MS = 60_000;
/** Dials of PEX-learnt addresses over all sources: a bucket of this many, refilled at PEX_DIALS_PER_MINUTE. */
export const PEX_DIAL_BURST = 10;
export const PEX_DIALS_PER_MINUTE = 30;
/** Addresses learnt and not dialled yet that are kept for a free slot; the oldest goes first. */
export const PEX_MAX_CANDIDATES = 100;
/** A learnt address not dialled this long after it was learnt is forgotten (it may be gone). */
export const PEX_CANDIDATE_TTL_MS = 5 * 60_000;
/**
 * PEX messages one remote may send within PEX_INTERVAL_MS before its
 * connection is closed as a flood. BEP 11 asks for one a minute; a few more
 * leave room for a client whose first message follows a reconnect, as
 * libtorrent allows a few before it disconnects for `too frequent pex`.
 */
export const PEX_MAX_RECEIVED_PER_INTERVAL = 3;

/**
 * What we tell one remote: the first message lists the peers we hold now, the
 * next ones what changed since (added, dropped), never more than PEX_MAX_ADDED
 * of either (the rest goes in the next message) and never more often than
 * once per `intervalMs`. Keeps what the remote was told, by label.
 */
export class PexSender {
  private readonly clock: Clock;
  private readonly intervalMs: number;
  private readonly maxAdded: number;
  private readonly told = new Map<string, PexPeer>();
  private lastSentAt: number | undefined;

  constructor(clock: Clock, options: { intervalMs?: number; maxAdded?: number } = {}) {
    this.clock = clock;
    this.intervalMs = options.intervalMs ?? PEX_INTERVAL_MS;
    this.maxAdded = options.maxAdded ?? PEX_MAX_ADDED;
  }

  /** True when a message may go now (none sent yet, or the interval has passed). */
  isDue(): boolean {
    return this.lastSentAt === undefined || this.clock.now() - this.lastSentAt >= this.intervalMs;
  }

  /**
   * The message to send now, given the peers we would list to this remote
   * (by label, the remote itself left out by the caller), and notes it as
   * sent; undefined when it is not due or there is nothing new to say.
   */
  next(current: ReadonlyMap<string, PexPeer>): PexMessage | undefined {
    if (!this.isDue()) return undefined;
    const added: PexPeer[] = [];
    for (const [label, peer] of current) {
      if (added.length >= this.maxAdded) break;
      if (!this.told.has(label)) added.push(peer);
    }
    const dropped: { host: string; port: number }[] = [];
    for (const [label, peer] of this.told) {
      if (dropped.length >= this.maxAdded) break;
      if (!current.has(label)) dropped.push({ host: peer.host, port: peer.port });
    }
    if (added.length === 0 && dropped.length === 0) return undefined;
    for (const peer of added) this.told.set(formatEndpoint(peer.host, peer.port), peer);
    for (const peer of dropped) this.told.delete(formatEndpoint(peer.host, peer.port));
    this.lastSentAt = this.clock.now();
    return { added, dropped };
  }
}

/**
 * How often one remote may send us a PEX message: at most `maxMessages`
 * within any `intervalMs`. One over means a flood: the caller closes that
 * connection (ERR_PEX_FLOOD). Keeps the times of the last `maxMessages`.
 */
export class PexFloodGuard {
  private readonly clock: Clock;
  private readonly intervalMs: number;
  private readonly maxMessages: number;
  private readonly times: number[] = [];

  constructor(clock: Clock, options: { intervalMs?: number; maxMessages?: number } = {}) {
    this.clock = clock;
    this.intervalMs = options.intervalMs ?? PEX_INTERVAL_MS;
    this.maxMessages = options.maxMessages ?? PEX_MAX_RECEIVED_PER_INTERVAL;
  }

  /** Notes a message that arrived now; false when it is one too many. */
  accept(): boolean {
    const now = this.clock.now();
    while (this.times.length > 0 && now - this.times[0]! >= this.intervalMs) this.times.shift();
    if (this.times.length >= this.maxMessages) return false;
    this.times.push(now);
    return true;
  }
}

export interface PexDialBudgetOptions {
  readonly perMessage?: number;
  readonly perSource?: number;
  readonly sourceWindowMs?: number;
  readonly burst?: number;
  readonly perMinute?: number;
  readonly maxCandidates?: number;
  readonly candidateTtlMs?: number;
}

interface Candidate {
  readonly host: string;
  readonly port: number;
  /** Who told us: the remote's source key (its host), which its dials count against. */
  readonly source: string;
  readonly learntAt: number;
}

/**
 * Which addresses learnt from PEX we dial, and when: so that a PEX message
 * cannot turn us into a dialling flood against a third party, whatever it
 * lists and however many remotes send it. Three bounds hold together:
 * per message (at most `perMessage` of its addresses are ever kept), per
 * source (at most `perSource` dials of what one remote told us per
 * `sourceWindowMs`) and in total (a bucket of `burst` dials refilled at
 * `perMinute`). What is learnt and not dialled at once waits, at most
 * `maxCandidates` addresses for at most `candidateTtlMs`, for a free slot.
 * Each address is handed out once; the caller does not retry a PEX dial
 * that fails, so a list of dead addresses costs one SYN each.
 */
export class PexDialBudget {
  readonly perMessage: number;
  readonly perSource: number;
  readonly sourceWindowMs: number;
  readonly burst: number;
  readonly perMinute: number;
  readonly maxCandidates: number;
  readonly candidateTtlMs: number;
  private readonly clock: Clock;
  /** Learnt and not dialled, by label, oldest first (a Map keeps insertion order). */
  private readonly candidates = new Map<string, Candidate>();
  /** Per source: when its recent dials were handed out (at most perSource each). */
  private readonly sourceDials = new Map<string, number[]>();
  private tokens: number;
  private refilledAt: number;

  constructor(clock: Clock, options: PexDialBudgetOptions = {}) {
    this.clock = clock;
    this.perMessage = options.perMessage ?? PEX_DIALS_PER_MESSAGE;
    this.perSource = options.perSource ?? PEX_DIALS_PER_SOURCE;
    this.sourceWindowMs = options.sourceWindowMs ?? PEX_SOURCE_WINDOW_MS;
    this.burst = options.burst ?? PEX_DIAL_BURST;
    this.perMinute = options.perMinute ?? PEX_DIALS_PER_MINUTE;
    this.maxCandidates = options.maxCandidates ?? PEX_MAX_CANDIDATES;
    this.candidateTtlMs = options.candidateTtlMs ?? PEX_CANDIDATE_TTL_MS;
    for (const [field, value] of [
      ['perMessage', this.perMessage],
      ['perSource', this.perSource],
      ['burst', this.burst],
      ['maxCandidates', this.maxCandidates],
    ] as const) {
      if (!Number.isInteger(value) || value < 0)
        throw new OptionError(field, `must be a non-negative integer, got ${value}`);
    }
    for (const [field, value] of [
      ['sourceWindowMs', this.sourceWindowMs],
      ['perMinute', this.perMinute],
      ['candidateTtlMs', this.candidateTtlMs],
    ] as const) {
      if (!(value > 0)) throw new OptionError(field, `must be above 0, got ${value}`);
    }
    this.tokens = this.burst;
    this.refilledAt = clock.now();
  }

  /** Addresses waiting for a slot (for tests and status). */
  get size(): number {
    return this.candidates.size;
  }

  /**
   * Notes what `source` told us: of `added`, the first `perMessage` that are
   * dialable and that `skip` does not rule out (connected, being dialled,
   * ourselves, already waiting) wait for a dial; `dropped` ones leave the
   * wait if it was this source that told us of them. Returns how many were kept.
   */
  learn(
    source: string,
    message: PexMessage,
    skip: (label: string) => boolean = () => false,
  ): number {
    const now = this.clock.now();
    this.expire(now);
    for (const peer of message.dropped) {
      const label = formatEndpoint(peer.host, peer.port);
      if (this.candidates.get(label)?.source === source) this.candidates.delete(label);
    }
    let kept = 0;
    for (const peer of message.added) {
      if (kept >= this.perMessage) break;
      const label = formatEndpoint(peer.host, peer.port);
      if (!isDialable(peer.host, peer.port) || this.candidates.has(label) || skip(label)) continue;
      if (this.candidates.size >= this.maxCandidates) {
        const oldest = this.candidates.keys().next().value as string;
        this.candidates.delete(oldest);
      }
      this.candidates.set(label, { host: peer.host, port: peer.port, source, learntAt: now });
      kept++;
    }
    return kept;
  }

  /**
   * Up to `slots` addresses to dial now, oldest first, each within its
   * source's window and the total rate; they leave the wait (handed out
   * once). `skip` rules out ones connected or being dialled meanwhile (they
   * leave the wait too, costing nothing). Ones over their source's budget wait on.
   */
  take(
    slots: number,
    skip: (label: string) => boolean = () => false,
  ): { host: string; port: number; source: string }[] {
    const now = this.clock.now();
    this.expire(now);
    this.refill(now);
    const out: { host: string; port: number; source: string }[] = [];
    for (const [label, candidate] of this.candidates) {
      if (out.length >= slots || this.tokens < 1) break;
      if (skip(label)) {
        this.candidates.delete(label);
        continue;
      }
      const dials = this.recentDials(candidate.source, now);
      if (dials.length >= this.perSource) continue;
      dials.push(now);
      this.tokens--;
      this.candidates.delete(label);
      out.push({ host: candidate.host, port: candidate.port, source: candidate.source });
    }
    return out;
  }

  /** The source's dials within the window, pruned; empty entries are not kept. */
  private recentDials(source: string, now: number): number[] {
    let dials = this.sourceDials.get(source);
    if (!dials) {
      dials = [];
      this.sourceDials.set(source, dials);
    }
    while (dials.length > 0 && now - dials[0]! >= this.sourceWindowMs) dials.shift();
    return dials;
  }

  private refill(now: number): void {
    this.tokens = Math.min(
      this.burst,
      this.tokens + ((now - this.refilledAt) * this.perMinute) / 60_000,
    );
    this.refilledAt = now;
  }

  private expire(now: number): void {
    for (const [label, candidate] of this.candidates)
      if (now - candidate.learntAt > this.candidateTtlMs) this.candidates.delete(label);
    for (const [source, dials] of this.sourceDials) {
      while (dials.length > 0 && now - dials[0]! >= this.sourceWindowMs) dials.shift();
      if (dials.length === 0) this.sourceDials.delete(source);
    }
  }
}

/**
 * Whether an address someone told us of is worth a dial: not port 0, and
 * not an unspecified, broadcast or multicast address, where no peer listens
 * and a dial only makes noise on the network.
 */
export function isDialable(host: string, port: number): boolean {
  if (!Number.isInteger(port) || port < 1 || port > 65_535) return false;
  if (host.includes(':')) {
    const h = host.toLowerCase();
    return h !== '::' && !h.startsWith('ff');
  }
  const octets = host.split('.').map(Number);
  if (octets.length !== 4 || octets.some((o) => !Number.isInteger(o) || o < 0 || o > 255))
    return false;
  const first = octets[0]!;
  if (first === 0) return false;
  if (first >= 224) return false;
  return true;
}
