import type { TimerClock } from '../clock.js';

/** What the stall check needs to know about one download link. */
export interface LinkProgress {
  /** Blocks requested and not yet received. */
  readonly inFlight: number;
  /** When the last block arrived (clock ms); 0 before any. */
  readonly lastBlockAt: number;
  /** When the link was opened (clock ms). */
  readonly openedAt: number;
}

/** One download neighbour's reconnects, as the fallback clock sees them. */
export interface NeighbourProgress {
  /** A link to the neighbour completed its handshake. */
  connected(): void;
  /** That link ended; `delivered` says whether it stored at least one chunk. */
  ended(delivered: boolean): void;
}

/**
 * When to give up on the download neighbours: the fallback to the owner is
 * due once they have supplied nothing for `fallbackAfterMs`, and a link with
 * requests out and no block back for as long is stalled (the peer cuts it, so
 * its chunks are free for the fallback). Pure decisions on an injected clock:
 * the peer's tick asks, the unit tests drive the clock by hand.
 */
export class FallbackPolicy {
  private lastProgressAt: number;

  constructor(
    readonly fallbackAfterMs: number,
    private readonly clock: TimerClock,
  ) {
    this.lastProgressAt = clock.now();
  }

  /** A chunk came from a neighbour, or a fresh chance begins: the fallback waits a full period from now. */
  restart(): void {
    this.lastProgressAt = this.clock.now();
  }

  /** How long the neighbours have supplied nothing, in whole ms (the clock may be sub-ms). */
  idleMs(): number {
    return Math.floor(this.clock.now() - this.lastProgressAt);
  }

  /** Whether to fetch from the owner what the neighbours have not supplied. */
  fallbackDue(): boolean {
    return this.idleMs() >= this.fallbackAfterMs;
  }

  /**
   * How long `link` has waited with requests out and no block back, once
   * that reaches fallbackAfterMs; undefined while it is fine (or idle: a
   * link with nothing requested is not stalled, just has nothing we want).
   */
  stalledMs(link: LinkProgress): number | undefined {
    if (link.inFlight === 0) return undefined;
    const waitedMs = Math.floor(this.clock.now() - Math.max(link.lastBlockAt, link.openedAt));
    return waitedMs >= this.fallbackAfterMs ? waitedMs : undefined;
  }

  /**
   * Tracks one neighbour's links. Its first handshake restarts the fallback
   * clock, and so does the first handshake after a link that delivered a
   * chunk; a neighbour that reconnects without delivering (it flaps, or is
   * cut for bad chunks) does not, so it cannot postpone the fallback forever.
   */
  neighbour(): NeighbourProgress {
    let grace = true;
    return {
      connected: () => {
        if (grace) this.restart();
        grace = false;
      },
      ended: (delivered) => {
        if (delivered) grace = true;
      },
    };
  }
}
