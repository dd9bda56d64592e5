import { type Endpoint, formatEndpoint } from '@swarmdrop/protocol';
import { pause } from '../clock.js';
import { backoffMs, type WireConnection } from '../dialers.js';
import type { LinkHost } from './link.js';

/** How often an owner link checks whether what it was given is all held. */
const DONE_POLL_MS = 250;
/** Connection attempts an owner link makes before it gives up (the fallback tries again later). */
const MAX_ATTEMPTS = 20;

/**
 * A link to the owner that fetches a given set of chunks over one
 * connection (reconnecting if it drops), then closes it: `owner` for the
 * initial batch, `fallback` (a second owner link) for what the neighbours
 * did not supply. Its policy: exactly that set.
 */
export class OwnerLink {
  readonly label: string;

  constructor(
    private readonly host: LinkHost,
    private readonly owner: Endpoint,
    readonly role: 'owner' | 'fallback',
    readonly wanted: ReadonlySet<number>,
  ) {
    this.label = formatEndpoint(owner.host ?? '127.0.0.1', owner.port);
  }

  allowed(index: number): boolean {
    return this.wanted.has(index);
  }

  /** Resolves once every chunk of `wanted` is held, the peer stops, or it gave up. */
  async run(): Promise<void> {
    const { store, clock, signal, publish } = this.host;
    const { host = '127.0.0.1', port } = this.owner;
    const remaining = () => [...this.wanted].filter((i) => !store.has(i));
    for (let attempt = 0; !signal.aborted && remaining().length > 0 && attempt < MAX_ATTEMPTS; ) {
      let connection: WireConnection;
      try {
        connection = await this.host.connect(host, port, signal);
      } catch (err) {
        if (signal.aborted) return;
        if (attempt % 5 === 0) {
          publish('waiting', { for: 'owner', addr: this.label, reason: (err as Error).message });
        }
        await pause(backoffMs(attempt++), signal, clock);
        continue;
      }
      const link = this.host.open(connection, this.role, (i) => this.allowed(i));
      const done = () => {
        if (remaining().length === 0)
          link.connection.close(this.role === 'owner' ? 'batch complete' : 'fallback complete');
      };
      const poll = clock.setInterval(done, DONE_POLL_MS);
      await link.connection.wire.closed;
      poll.cancel();
      if (remaining().length > 0) await pause(backoffMs(attempt++), signal, clock);
    }
  }
}
