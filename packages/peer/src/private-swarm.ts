import type { TimerClock } from '@swarmdrop/protocol';
import type { WireSocket } from '@swarmdrop/protocol/node';
import { Admission } from '@swarmdrop/service';

/** At most one extra announce this often to admit a host we have not seen (the tracker's min interval). */
export const ADMIT_REFRESH_MS = 5_000;

/**
 * A private swarm's wire admission on the peer's side: only hosts the
 * owner's tracker listed (they announced with the token) may trade with us,
 * for the tracker's expiry (the shared Admission). A host we have not seen
 * may have just joined, so the tracker is asked again first, at most once
 * per ADMIT_REFRESH_MS and shared by every connection waiting on it.
 *
 * The expiry runs on the tracker's time, not the wall's: it moves only when
 * the tracker answers. While the owner is unreachable nothing expires, so
 * the peers it admitted keep trading with each other (and reconnecting),
 * and nobody new gets in, as only a tracker answer admits a host. Once it
 * answers again, hosts it no longer lists expire as before.
 */
export class PeerAdmission {
  private readonly clock: TimerClock;
  private readonly admitted: Admission;
  /** One announce to the owner's tracker, which calls `admit` with what it lists; undefined before the torrent exists. */
  private readonly reannounce: () => Promise<unknown> | undefined;
  /** The tracker query under way to admit a new host, and when the last one ran. */
  private admitting: Promise<void> | undefined;
  private lastRefresh = 0;
  /** When the tracker last answered: the admission's clock (see above). */
  private answeredAt = 0;

  constructor(options: { clock: TimerClock; reannounce: () => Promise<unknown> | undefined }) {
    this.clock = options.clock;
    this.admitted = new Admission({ clock: { now: () => this.answeredAt } });
    this.reannounce = options.reannounce;
  }

  /** Notes the hosts a tracker answer listed (only an answer calls this: a failed announce does not). */
  admit(hosts: readonly string[]): void {
    this.answeredAt = this.clock.now();
    this.admitted.admit(hosts);
  }

  /** Why `socket`'s host may not trade with us, or undefined. */
  async check(socket: WireSocket): Promise<string | undefined> {
    const host = socket.remoteAddress ?? '';
    if (!this.admitted.isAdmitted(host)) await this.refresh();
    return this.admitted.isAdmitted(host) ? undefined : 'not announced with the token';
  }

  private refresh(): Promise<void> {
    if (this.admitting) return this.admitting;
    if (this.clock.now() - this.lastRefresh < ADMIT_REFRESH_MS) return Promise.resolve();
    const asked = this.reannounce();
    if (!asked) return Promise.resolve();
    this.lastRefresh = this.clock.now();
    this.admitting = asked
      .then(
        () => {},
        () => {},
      )
      .finally(() => {
        this.admitting = undefined;
      });
    return this.admitting;
  }
}
