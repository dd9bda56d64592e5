import { sourceKey } from '@swarmdrop/protocol';

/**
 * Incoming handshakes in progress at once (TCP and µTP together): from
 * arrival until the connection is ready for PeerWire (its first bytes read,
 * admitted, MSE done). An honest handshake takes one or two round trips, so
 * 64 covers a swarm's peers all arriving in the same second many times over.
 */
export const DEFAULT_MAX_HANDSHAKES = 64;
/**
 * Of those, from one source address (an IPv6 /64). A swarmdrop process
 * opens one or two connections to a remote; a test swarm on loopback, where
 * every peer is 127.0.0.1, some dozen handshakes at a start.
 */
export const DEFAULT_MAX_HANDSHAKES_PER_ADDRESS = 16;

export interface HandshakeBudgetOptions {
  /** Default DEFAULT_MAX_HANDSHAKES. */
  readonly maxHandshakes?: number | undefined;
  /** Default DEFAULT_MAX_HANDSHAKES_PER_ADDRESS. */
  readonly maxHandshakesPerAddress?: number | undefined;
}

/** What the budget did, for /status and tests. */
export interface HandshakeBudgetStats {
  /** Handshakes in progress now. */
  held: number;
  /** Most held at once since the start. */
  peak: number;
  /** Refused because their source held maxHandshakesPerAddress. */
  refusedAddressCap: number;
  /** Cut to make room: the oldest in progress when all maxHandshakes were taken. */
  evicted: number;
}

/** A slot taken by one handshake; `release()` once it is done, whichever way (a second call does nothing). */
export interface HandshakeSlot {
  release(): void;
}

interface Entry {
  readonly source: string;
  readonly evict: () => void;
}

/**
 * Bounds the handshakes in progress, in total and per source, so that
 * half-open handshakes cannot hold the port: 256 of them, each holding a
 * connection, once locked the metainfo out.
 *
 * Past the per-source cap a new handshake is refused. Past the total, the
 * oldest one in progress is cut instead (its `evict` runs): an honest
 * handshake is done within a round trip or two, so an attacker must open
 * faster than DEFAULT_MAX_HANDSHAKES per round trip to starve it, while
 * refusing the newest would let one slow trickle of never-finished openings
 * (64 per 10 s handshake timeout) lock every newcomer out.
 */
export class HandshakeBudget {
  readonly stats: HandshakeBudgetStats = { held: 0, peak: 0, refusedAddressCap: 0, evicted: 0 };
  readonly maxHandshakes: number;
  readonly maxHandshakesPerAddress: number;
  /** In arrival order: the first is the oldest. */
  private readonly entries = new Set<Entry>();
  private readonly perSource = new Map<string, number>();

  constructor(options: HandshakeBudgetOptions = {}) {
    this.maxHandshakes = positive(options.maxHandshakes ?? DEFAULT_MAX_HANDSHAKES, 'maxHandshakes');
    this.maxHandshakesPerAddress = positive(
      options.maxHandshakesPerAddress ?? DEFAULT_MAX_HANDSHAKES_PER_ADDRESS,
      'maxHandshakesPerAddress',
    );
  }

  /**
   * Takes a slot for a handshake from `host`, or returns the one-line reason
   * to refuse it. `evict` is called (once) if the slot is taken back for a
   * newer handshake; it must end the handshake, and the caller still
   * releases.
   */
  open(host: string | undefined, evict: () => void): HandshakeSlot | string {
    const source = sourceKey(host);
    const fromSource = this.perSource.get(source) ?? 0;
    if (fromSource >= this.maxHandshakesPerAddress) {
      this.stats.refusedAddressCap++;
      return `too many handshakes in progress from ${source} (limit ${this.maxHandshakesPerAddress} per address)`;
    }
    while (this.entries.size >= this.maxHandshakes) {
      const oldest = this.entries.values().next().value as Entry;
      this.remove(oldest);
      this.stats.evicted++;
      oldest.evict();
    }
    const entry: Entry = { source, evict };
    this.entries.add(entry);
    // Read again: the eviction above may have taken one of this source's own.
    this.perSource.set(source, (this.perSource.get(source) ?? 0) + 1);
    this.stats.held = this.entries.size;
    this.stats.peak = Math.max(this.stats.peak, this.stats.held);
    return { release: () => this.remove(entry) };
  }

  private remove(entry: Entry): void {
    if (!this.entries.delete(entry)) return;
    const left = (this.perSource.get(entry.source) ?? 1) - 1;
    if (left > 0) this.perSource.set(entry.source, left);
    else this.perSource.delete(entry.source);
    this.stats.held = this.entries.size;
  }
}

function positive(value: number, field: string): number {
  if (!Number.isInteger(value) || value < 1)
    throw new RangeError(`${field} must be a whole number of at least 1, not ${value}`);
  return value;
}
