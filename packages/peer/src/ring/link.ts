import type { BlockServer, ChunkStore, Connection } from '@swarmdrop/protocol/node';
import type { Publish } from '@swarmdrop/service';
import type { TimerClock } from '../clock.js';
import type { WireConnection } from '../dialers.js';

/** What a ring connection is to us: an upload neighbour (`in`), or one of the download links. */
export type RingRole = 'in' | LinkRole;
/** The download links: the neighbour, the owner for the batch, and the fallback (a second owner link). */
export type LinkRole = 'neighbour' | 'owner' | 'fallback';

/** One ring connection: the Connection owns the remote's state, the BlockServer serves it. */
export interface RingConnection {
  /** Its name in the scheduler (a label can have two links: an upload neighbour that is also our download neighbour). */
  readonly id: string;
  readonly role: RingRole;
  /** When the connection was opened (on the peer's clock). */
  readonly openedAt: number;
  readonly connection: Connection;
  readonly server: BlockServer;
  /** Our bitfield went out: from here on it gets a `have` for each chunk we store. */
  bitfieldSent: boolean;
  /** Chunks this link delivered. */
  received: number;
}

/**
 * What a link needs from the session that runs it: a link dials and opens
 * connections through it and reads the shared state; it never sees the peer.
 */
export interface LinkHost {
  readonly store: ChunkStore;
  readonly clock: TimerClock;
  readonly signal: AbortSignal;
  readonly publish: Publish;
  /** Dials under the peer's transport and encryption policy. */
  connect(host: string, port: number, signal: AbortSignal): Promise<WireConnection>;
  /**
   * Our link to a neighbour ended without a chunk: if the neighbour is a
   * stock client that also dialled us, drop its connection and refuse the
   * next ones, so that our redial is the one it keeps (aria2c keeps one
   * connection per peer id).
   */
  yieldToNeighbour(link: RingConnection): void;
  /** Opens a download link on a dialled connection, asked only for what `allowed` lets through. */
  open(
    connection: WireConnection,
    role: LinkRole,
    allowed: (index: number, label: string) => boolean,
  ): RingConnection;
}
