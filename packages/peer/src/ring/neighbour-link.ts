import { type Endpoint, formatEndpoint } from '@swarmdrop/protocol';
import { pause } from '../clock.js';
import { backoffMs, type WireConnection } from '../dialers.js';
import type { NeighbourProgress } from './fallback-policy.js';
import type { LinkHost } from './link.js';

/**
 * A download neighbour: dialled, and re-dialled with backoff, for as long as
 * the peer runs. Its policy: any chunk but those an owner link is fetching
 * (`reserved`) and those this neighbour once sent bad (`blamed`).
 */
export class NeighbourLink {
  readonly role = 'neighbour' as const;
  readonly label: string;

  constructor(
    private readonly host: LinkHost,
    private readonly neighbour: Endpoint,
    private readonly progress: NeighbourProgress,
    private readonly reserved: ReadonlySet<number>,
    private readonly blamed: (label: string, index: number) => boolean,
  ) {
    this.label = formatEndpoint(neighbour.host ?? '127.0.0.1', neighbour.port);
  }

  /** The link's policy. Blame is looked up under the connection's label (the key it is recorded under). */
  allowed(index: number, label: string): boolean {
    return !this.reserved.has(index) && !this.blamed(label, index);
  }

  /** Connects, trades until the connection ends, and connects again; returns when stopped. */
  async run(): Promise<void> {
    const { store, clock, signal, publish } = this.host;
    const { host = '127.0.0.1', port } = this.neighbour;
    for (let attempt = 0; !signal.aborted; ) {
      if (store.isComplete()) {
        // Nothing to fetch; stay idle in case a chunk is dropped as corrupt and must come back.
        await pause(1_000, signal, clock);
        continue;
      }
      let connection: WireConnection;
      try {
        connection = await this.host.connect(host, port, signal);
      } catch (err) {
        if (signal.aborted) return;
        const wait = backoffMs(attempt);
        if (attempt % 10 === 0) {
          publish('waiting', {
            for: 'neighbour',
            addr: this.label,
            reason: (err as Error).message,
            retryMs: wait,
          });
        }
        attempt++;
        await pause(wait, signal, clock);
        continue;
      }
      const link = this.host.open(connection, 'neighbour', (i, label) => this.allowed(i, label));
      const wire = link.connection.wire;
      void wire.ready().then(
        () => this.progress.connected(),
        () => {},
      );
      await wire.closed;
      // A session that delivered nothing (dropped at once, stalled, cut for bad
      // chunks) counts as a failed attempt, so the backoff keeps growing.
      const useful = link.received > 0;
      if (!useful) this.host.yieldToNeighbour(link);
      this.progress.ended(useful);
      attempt = useful ? 0 : attempt + 1;
      if (!(await pause(backoffMs(attempt), signal, clock))) return;
    }
  }
}
