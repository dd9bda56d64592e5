import { open } from 'node:fs/promises';
import { clientOf, isSwarmModePeer, type TimerClock } from '@swarmdrop/protocol';
import {
  type ChunkStore,
  type Connection,
  type OpenedSocket,
  openConnection,
  type WireLimits,
} from '@swarmdrop/protocol/node';
import {
  idListAs,
  type Publish,
  publishClosed,
  publishConnected,
  publishTraffic,
} from '@swarmdrop/service';
import type { PeerRecord, PeerTable } from './peers.js';
import type { SuperSeeding } from './super-seeding.js';

export interface ServingOptions {
  readonly store: ChunkStore;
  /** The source file: a chunk file that rots is put back from it. */
  readonly file: string;
  readonly peerId: Uint8Array;
  readonly clock: TimerClock;
  readonly limits: WireLimits;
  readonly handshakeTimeoutMs: number;
  readonly publish: Publish;
  readonly table: PeerTable;
  /** Swarm-mode peers are seeded piece by piece (super-seeding.ts). */
  readonly seeding: SuperSeeding;
}

/**
 * The owner's side of every BitTorrent connection: it serves whoever asks
 * (no choking; offers ration swarm-mode peers), keeps each remote's record in
 * the peer table, and puts back from the source file a chunk file that
 * failed its SHA-1 while serving.
 */
export class Serving {
  /** Each connection; true once it was sent the whole bitfield (it gets a `have` for a restored chunk). */
  readonly connections = new Map<Connection, boolean>();
  private readonly options: ServingOptions;
  /** Chunks being restored from the source file after their chunk file failed its SHA-1. */
  private readonly restoring = new Set<number>();

  constructor(options: ServingOptions) {
    this.options = options;
  }

  /** Closes every connection (the owner is stopping). */
  closeAll(reason: string): void {
    for (const connection of this.connections.keys()) connection.close(reason);
  }

  /** An accepted connection, through its handshake: serve it. */
  accept(opened: OpenedSocket): void {
    const { store, publish, table } = this.options;
    const { connection, server, metadata } = openConnection({
      opened,
      store,
      peerId: this.options.peerId,
      clock: this.options.clock,
      limits: this.options.limits,
      handshakeTimeoutMs: this.options.handshakeTimeoutMs,
    });
    let record: PeerRecord | undefined;
    const holds = (indexes: Iterable<number>) => {
      if (record) table.noteHolds(record, connection.remoteHas.count(), indexes);
    };
    publishTraffic(connection, server, publish, metadata);
    connection.on('bitfield', (remote) => holds(remote.heldIds()));
    // A `have` names one chunk; only a bitfield needs the whole scan.
    connection.on('have', (index) => holds([index]));
    connection.on('interested', () => connection.unchoke());
    server.on('chunkCorrupt', (index) => void this.restoreChunk(index));
    connection.on('ready', (handshake) => {
      record = table.record(connection.label);
      record.connections++;
      record.client = clientOf(handshake.peerId);
      publishConnected(connection, publish, { dir: 'in', client: record.client });
      if (isSwarmModePeer(handshake.peerId)) {
        this.options.seeding.serve(connection, server);
        return;
      }
      // Ring peers and stock clients: the whole bitfield.
      const held = store.held;
      const form = connection.sendBitfield(held);
      this.connections.set(connection, true);
      publish('idlist-sent', {
        to: connection.label,
        chunks: held.count(),
        of: held.size,
        ...idListAs(form),
      });
    });
    this.connections.set(connection, false);
    connection.on('closed', (close) => {
      this.connections.delete(connection);
      if (record) {
        record.connections--;
        table.forgetIfUnused(record);
      }
      publishClosed(connection, publish, close, { sent: server.chunksSent });
    });
  }

  /**
   * The owner still has the original file: when a chunk file fails its SHA-1
   * (rot, or tampering while running) the store drops it; put it back from
   * the source so the swarm can still complete. Publishes one `chunk-corrupt`
   * event saying whether it was restored.
   */
  private async restoreChunk(index: number): Promise<void> {
    if (this.restoring.has(index)) return;
    this.restoring.add(index);
    const { store, publish } = this.options;
    const { metainfo } = store;
    let restored = false;
    let why: string | undefined;
    try {
      const size = metainfo.geometry.pieceSize(index);
      const data = Buffer.alloc(size);
      const handle = await open(this.options.file, 'r');
      try {
        let done = 0;
        while (done < size) {
          const { bytesRead } = await handle.read(
            data,
            done,
            size - done,
            index * metainfo.pieceLength + done,
          );
          if (bytesRead === 0) break;
          done += bytesRead;
        }
      } finally {
        await handle.close();
      }
      if (await store.matches(index, data)) {
        await store.put(index, data);
        restored = true;
        // Connections that arrived while it was missing got a bitfield without it.
        for (const [connection, whole] of this.connections) {
          if (!whole || connection.state !== 'live') continue;
          connection.sendHave(index);
          publish('have-sent', { chunk: index, to: connection.label });
        }
      } else {
        why = 'the source file changed too';
      }
    } catch (err) {
      why = (err as Error).message;
    } finally {
      this.restoring.delete(index);
    }
    publish('chunk-corrupt', {
      chunk: index,
      reason: 'stored file failed SHA-1; dropped',
      restored,
      ...(why ? { why } : {}),
    });
  }
}
