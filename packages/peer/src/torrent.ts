import {
  type Endpoint,
  listenPortOf,
  type Metainfo,
  parseEndpoint,
  TypedEmitter,
} from '@swarmdrop/protocol';
import type { BufferPool, ChunkStore } from '@swarmdrop/protocol/node';
import { formatRanges } from '@swarmdrop/service';
import type { Completion } from './completion.js';
import type { WireConnection } from './dialers.js';
import type { ConnectionRegistry, RegistryEntry } from './engine/connection-registry.js';
import type { Member } from './member-tracker.js';
import type { AnnounceResult } from './owner-client.js';
import type { Reannouncer } from './reannouncer.js';
import type { Session } from './session.js';

/** Every part of a torrent, all present: bootstrap builds them and hands them over in one go. */
export interface TorrentParts {
  readonly metainfo: Metainfo;
  /** The .torrent as the owner served it (served again on `/metainfo.torrent`). */
  readonly torrentBytes: Buffer;
  /** Where that .torrent was written in --dir. */
  readonly torrentPath: string;
  readonly store: ChunkStore;
  /** Chunk-sized buffers shared by the session's connections. */
  readonly buffers: BufferPool;
  /** Where the merged file goes (already checked against the peer's own files). */
  readonly outPath: string;
  /** The chunks the owner assigned us in its `started` answer. */
  readonly batch: readonly number[];
  /** The session's live connections. */
  readonly registry: ConnectionRegistry<RegistryEntry>;
  readonly session: Session;
  readonly completion: Completion;
  /** Ring mode's re-announces; swarm mode's session re-announces itself (undefined there). */
  readonly reannouncer: Reannouncer | undefined;
  /** One announce to the owner's tracker with what the store holds now. */
  readonly announce: (event?: 'completed') => Promise<AnnounceResult>;
}

/** What the torrent tells the peer above it. */
export type TorrentEvents = {
  /** Finished: exit-when-done's conditions hold. */
  done: () => void;
  /** An error the torrent cannot work around (a disk error while storing or merging). */
  error: (error: Error) => void;
};

/**
 * One download, whole: the metainfo, the store, the session that trades
 * (ring or swarm) with its connection registry, completion and the
 * re-announcer. Created by bootstrap with every part present, it wires
 * them to each other and tells the peer (which it does not know) by events.
 */
export class Torrent extends TypedEmitter<TorrentEvents> {
  readonly metainfo: Metainfo;
  readonly torrentBytes: Buffer;
  readonly torrentPath: string;
  readonly store: ChunkStore;
  readonly buffers: BufferPool;
  readonly outPath: string;
  readonly batch: readonly number[];
  readonly registry: ConnectionRegistry<RegistryEntry>;
  readonly session: Session;
  readonly completion: Completion;
  readonly reannouncer: Reannouncer | undefined;
  /** One announce with what the store holds now (also for admitting a new host in a private swarm). */
  readonly announce: (event?: 'completed') => Promise<AnnounceResult>;
  private closing: Promise<void> | undefined;

  constructor(parts: TorrentParts) {
    super();
    this.metainfo = parts.metainfo;
    this.torrentBytes = parts.torrentBytes;
    this.torrentPath = parts.torrentPath;
    this.store = parts.store;
    this.buffers = parts.buffers;
    this.outPath = parts.outPath;
    this.batch = parts.batch;
    this.registry = parts.registry;
    this.session = parts.session;
    this.completion = parts.completion;
    this.reannouncer = parts.reannouncer;
    this.announce = parts.announce;
    this.session.on('remoteProgress', () => this.completion.recheck());
    this.session.on('error', (err) => this.emit('error', err));
    this.completion.on('merged', () => void this.announce('completed').catch(() => {}));
    this.completion.on('chunksLost', () => this.session.storeChanged());
    this.completion.on('done', () => this.emit('done'));
    this.completion.on('error', (err) => this.emit('error', err));
    // A throwing subscriber is a bug above us: it becomes an `error` (the peer stops), unless it was one.
    this.onListenerError = (error, event) =>
      queueMicrotask(() => {
        if (event === 'error') throw error;
        this.emit('error', error as Error);
      });
  }

  /** Starts trading, the re-announces, and checks whether the store is already complete. */
  start(): void {
    this.session.start();
    this.reannouncer?.start();
    this.completion.check();
  }

  /** An admitted incoming connection, for the session. */
  accept(connection: WireConnection): void {
    this.session.accept(connection);
  }

  /** Where the merged file went, once merged. */
  get mergedPath(): string | undefined {
    return this.completion.mergedPath;
  }

  /** Exact bytes still missing (the last chunk may be short). */
  bytesLeft(): number {
    return bytesLeft(this.store);
  }

  /**
   * The members we are connected to whose listening address we know (a
   * swarmdrop remote's label is its listening address): what our own
   * `/announce` lists (member-tracker.ts).
   */
  members(): Member[] {
    return this.registry.values().flatMap((entry) => {
      const { connection } = entry;
      const id = connection.wire.remoteHandshake?.peerId;
      if (!id || listenPortOf(id) === undefined) return [];
      let at: Endpoint;
      try {
        at = parseEndpoint(connection.label, 'label');
      } catch {
        return [];
      }
      if (at.host === undefined) return [];
      return [{ host: at.host, port: at.port, seed: connection.remoteHas.isComplete() }];
    });
  }

  /** The torrent's part of the peer's `/status`. */
  status(): Record<string, unknown> {
    const held = this.store.held;
    return {
      name: this.metainfo.name,
      chunks: held.size,
      held: held.count(),
      complete: held.isComplete(),
      merged: this.mergedPath ?? null,
      batch: formatRanges(this.batch),
    };
  }

  /** Received counts and the session's connections, as `/status` shows them after the dashboard's part. */
  sessionStatus(): Record<string, unknown> {
    return {
      received: this.completion.counts,
      ...(this.session.mode === 'swarm' ? { swarm: this.session.status() } : {}),
      connections: this.session.mode === 'ring' ? this.session.status() : [],
    };
  }

  /** Stops announcing and trading at once: every connection closes with `reason`. */
  stop(reason?: string): void {
    this.reannouncer?.stop();
    this.session.close(reason);
  }

  /**
   * Stops, lets a chunk being written and a merge in progress finish (file
   * and summary line), then releases the store.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stop();
      await this.session.settled();
      await this.completion.settled();
      await this.store.close();
    })();
    return this.closing;
  }
}

/** Exact bytes `store` still misses (the last chunk may be short, so not missing × pieceLength). */
export function bytesLeft(store: ChunkStore): number {
  return store.held.missing().reduce((sum, i) => sum + store.metainfo.geometry.pieceSize(i), 0);
}
