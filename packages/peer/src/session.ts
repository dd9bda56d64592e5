import type { WireConnection } from './dialers.js';

/** What a session tells the torrent above it. */
export type SessionEvents = {
  /** A remote we wait for came, went, or gained a chunk: exit-when-done re-checks. */
  remoteProgress: () => void;
  /** Storing failed for another reason than the hash (disk): the peer must stop. */
  error: (error: Error) => void;
};

/**
 * How a torrent trades, whichever the mode: the ring's fixed links
 * (ring/RingSession) or the swarm's tracker peers (swarm/SwarmSession).
 * Both keep their connections in the torrent's ConnectionRegistry.
 */
export interface Session {
  readonly mode: 'ring' | 'swarm';
  /** Remotes seen so far that exit-when-done counts: none means it lingers. */
  readonly peersSeen: number;
  /** Starts dialling, fetching and the session's timers. */
  start(): void;
  /** An admitted incoming connection (handshake policy already settled). */
  accept(connection: WireConnection): void;
  /** The store dropped chunks it found bad: they are wanted again. */
  storeChanged(): void;
  /** Every remote exit-when-done waits for holds every chunk (or none is connected). */
  allServed(): boolean;
  /** The connections as `/status` shows them. */
  status(): Record<string, unknown>[];
  /** Stops asking and closes every connection (`reason` goes in their `disconnected` lines). */
  close(reason?: string): void;
  /** Resolves once every chunk handed to the store has been stored or rejected. */
  settled(): Promise<void>;
  on<E extends keyof SessionEvents>(event: E, listener: SessionEvents[E]): () => void;
}
