import { TypedEmitter } from '@swarmdrop/protocol';

/**
 * What the registry reads of a connection: its label (the remote's address),
 * the remote's handshake (its peer id), whether the remote holds everything,
 * and how to close it. A protocol/node `Connection` is one; a test passes a
 * plain object.
 */
export interface RegisteredConnection {
  readonly label: string;
  readonly remoteHas: { isComplete(): boolean };
  readonly wire: { readonly remoteHandshake: { readonly peerId: Uint8Array } | undefined };
  close(reason: string): void;
}

/** Who opened a connection: we dialled it (`out`) or the remote did (`in`). */
export type ConnectionDirection = 'in' | 'out';

/**
 * Two peers that dial each other at once end up with two connections
 * between them, and each end sees the two handshakes in its own order. Both
 * keep the one dialled by the peer with the smaller id (bytewise): each end
 * computes that from the same two ids, so they keep the same connection
 * whichever handshake came first, and neither has to wait for the other's
 * choice. True when the connection we see as `dir` is the one to keep.
 */
export function keepsDialledBySmallerId(
  localPeerId: Uint8Array,
  remotePeerId: Uint8Array,
  dir: ConnectionDirection,
): boolean {
  const weAreSmaller = Buffer.compare(Buffer.from(localPeerId), Buffer.from(remotePeerId)) < 0;
  return (dir === 'out') === weAreSmaller;
}

/** One registered connection as a session keeps it (a ring connection, a swarm link). */
export interface RegistryEntry {
  readonly connection: RegisteredConnection;
}

export interface ConnectionRegistryOptions<E extends RegistryEntry> {
  /** Connections held at once, registered and pending together; unlimited when undefined. */
  readonly maxConnections?: number | undefined;
  /** Which entries count as peers seen (exit-when-done's linger). */
  countsAsPeer(entry: E): boolean;
  /** Which entries `allServed()` waits for (the owner, which seeds, is not waited for). */
  awaitsServed(entry: E): boolean;
}

export type ConnectionRegistryEvents<E extends RegistryEntry> = {
  added: (key: string, entry: E) => void;
  removed: (key: string, entry: E) => void;
};

/**
 * The live connections of one torrent, as both sessions (ring and swarm)
 * keep them: pure bookkeeping, it opens nothing. Entries are kept under a
 * key the session chooses (the ring's link id, the swarm's remote address);
 * slots are held for connections still being dialled or handshaking, so
 * `isFull()` counts them toward the cap; peers seen and "has every remote
 * we wait for got everything" are answered here for exit-when-done.
 */
export class ConnectionRegistry<E extends RegistryEntry> extends TypedEmitter<
  ConnectionRegistryEvents<E>
> {
  readonly maxConnections: number;
  private readonly options: ConnectionRegistryOptions<E>;
  private readonly entries = new Map<string, E>();
  private readonly seen = new WeakSet<E>();
  private readonly dialling = new Set<string>();
  private held = 0;
  private seenCount = 0;

  constructor(options: ConnectionRegistryOptions<E>) {
    super();
    this.options = options;
    this.maxConnections = options.maxConnections ?? Number.POSITIVE_INFINITY;
  }

  /** Registers `entry` under `key`; a key already taken is a bug in the session. */
  add(key: string, entry: E): void {
    if (this.entries.has(key)) throw new Error(`connection ${key} is already registered`);
    this.entries.set(key, entry);
    this.emit('added', key, entry);
  }

  /** Forgets `key` if it still names `entry` (a replaced entry's late close leaves its successor alone). */
  remove(key: string, entry: E): boolean {
    if (this.entries.get(key) !== entry) return false;
    this.entries.delete(key);
    this.emit('removed', key, entry);
    return true;
  }

  get(key: string): E | undefined {
    return this.entries.get(key);
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  get size(): number {
    return this.entries.size;
  }

  values(): E[] {
    return [...this.entries.values()];
  }

  keyed(): [string, E][] {
    return [...this.entries.entries()];
  }

  /** Entries whose remote handshook with `peerId`. */
  withPeerId(peerId: Uint8Array): E[] {
    const id = Buffer.from(peerId);
    return this.values().filter((e) => {
      const remote = e.connection.wire.remoteHandshake;
      return remote !== undefined && id.equals(remote.peerId);
    });
  }

  /** Entries whose connection's label (the remote's address) is `address`. */
  withAddress(address: string): E[] {
    return this.values().filter((e) => e.connection.label === address);
  }

  /**
   * Holds a slot for a connection not registered yet (being dialled, or
   * handshaking); the returned release frees it and is safe to call twice.
   */
  hold(): () => void {
    this.held++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held--;
    };
  }

  /** Slots held by connections not registered yet. */
  get pending(): number {
    return this.held;
  }

  /** No room for another connection: registered and pending ones reach the cap. */
  isFull(): boolean {
    return this.entries.size + this.held >= this.maxConnections;
  }

  /** Marks `address` as being dialled; false if it already is. */
  startDialling(address: string): boolean {
    if (this.dialling.has(address)) return false;
    this.dialling.add(address);
    return true;
  }

  stopDialling(address: string): void {
    this.dialling.delete(address);
  }

  isDialling(address: string): boolean {
    return this.dialling.has(address);
  }

  /** The remote of `entry` completed a real handshake: counted once, if it counts as a peer. */
  markSeen(entry: E): void {
    if (this.seen.has(entry) || !this.options.countsAsPeer(entry)) return;
    this.seen.add(entry);
    this.seenCount++;
  }

  /** Remotes that counted as peers and handshook, ever (not only those still connected). */
  get peersSeen(): number {
    return this.seenCount;
  }

  /** Every registered remote we wait for holds every chunk (true when there is none). */
  allServed(): boolean {
    return this.values().every(
      (e) => !this.options.awaitsServed(e) || e.connection.remoteHas.isComplete(),
    );
  }

  /** Closes every registered connection with `reason`; each leaves through its own `closed` handler. */
  closeAll(reason: string): void {
    for (const entry of this.values()) entry.connection.close(reason);
  }
}
