import type { Clock } from '@swarmdrop/protocol';
import { ANNOUNCE_EXPIRY_MS, canonicalHost } from '@swarmdrop/protocol';

export interface AdmissionOptions {
  /** Only differences count; the service's one clock. */
  readonly clock: Clock;
  /** How long an admitted host stays admitted: the tracker's announce expiry by default. */
  readonly expiryMs?: number;
}

/**
 * A private swarm's wire admission, the same on the owner and the peer:
 * hosts that announced with the token (the owner sees the announce; a peer
 * learns them from the tracker's answer) may open BitTorrent connections
 * for `expiryMs` after. By host, not port: a client connects from an
 * ephemeral port. Every host is kept under canonicalHost, so an address
 * that the tracker spells one way and a socket another is still the same.
 * Bounded: stale hosts are dropped on every admit, and hosts come only from
 * announces, which the tracker bounds.
 */
export class Admission {
  private readonly clock: Clock;
  private readonly expiryMs: number;
  /** Canonical host → when it was last admitted, on the clock. */
  private readonly admitted = new Map<string, number>();

  constructor(options: AdmissionOptions) {
    this.clock = options.clock;
    this.expiryMs = options.expiryMs ?? ANNOUNCE_EXPIRY_MS;
  }

  /** Admits `hosts` from now on, and forgets the ones whose admission ran out. */
  admit(hosts: Iterable<string>): void {
    const now = this.clock.now();
    for (const [h, at] of this.admitted) if (now - at > this.expiryMs) this.admitted.delete(h);
    for (const h of hosts) this.admitted.set(canonicalHost(h), now);
  }

  /** True when `host` (any spelling) was admitted within the expiry. */
  isAdmitted(host: string): boolean {
    const at = this.admitted.get(canonicalHost(host));
    return at !== undefined && this.clock.now() - at <= this.expiryMs;
  }
}
