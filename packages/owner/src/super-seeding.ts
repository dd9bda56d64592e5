import { Bitfield, type LogEventName, type LogFields, type Rng } from '@swarmdrop/protocol';
import { BlockServer, type ChunkStore, Connection, type PeerWire } from '@swarmdrop/protocol/node';
import { InitialSeeder } from './initial-seeder.js';

export type SeedLog = (event: LogEventName, fields: LogFields) => void;

/**
 * How the owner serves swarm-mode peers (their peer id says so): initial
 * seeding. Each gets an empty bitfield, then `have`s for a few pieces at a
 * time chosen by the InitialSeeder, so that every piece goes out once before
 * any goes out twice; the peers trade the rest among themselves. Ring peers
 * and stock clients are served as before (the whole bitfield, Uploader):
 * a ring peer's batch and fallback ask the owner for chunks of its choosing.
 *
 * The log lines are the same as the Uploader's, through the owner's `log`
 * (which also counts what was served and restores a corrupt chunk file).
 */
export class SuperSeeding {
  private readonly seeder: InitialSeeder;
  private readonly store: ChunkStore;

  constructor(store: ChunkStore, rng: Rng = Math.random) {
    this.store = store;
    this.seeder = new InitialSeeder({ pieceCount: store.pieceCount, rng });
  }

  /** Takes over a handshaken wire of a swarm-mode peer. */
  serve(wire: PeerWire, log: SeedLog): void {
    const id = wire.label;
    const connection = new Connection({
      wire,
      pieceCount: this.store.pieceCount,
      localHas: this.store.held,
    });
    const server = new BlockServer({ connection, store: this.store });
    this.seeder.addPeer(id);
    const offer = () => {
      if (connection.state !== 'live') return;
      const fresh = this.seeder.offers(id);
      connection.batch(() => {
        for (const index of fresh) {
          connection.sendHave(index);
          log('have-sent', { chunk: index, to: id });
        }
      });
    };
    connection.on('bitfield', (remote) => {
      log('idlist-received', { from: id, chunks: remote.count(), of: remote.size });
      this.seeder.peerBitfield(id, remote);
      offer();
    });
    connection.on('have', (index) => {
      log('have-received', { chunk: index, from: id });
      this.seeder.peerHas(id, index);
      offer();
    });
    // The owner serves everyone who asks (as the Uploader does): offers, not choking, ration it.
    connection.on('interested', () => connection.unchoke());
    connection.on('closed', () => this.seeder.removePeer(id));
    server.on('requestReceived', (index) => log('request-received', { chunk: index, from: id }));
    server.on('chunkSent', (index, bytes) => {
      log('chunk-sent', { chunk: index, to: id, bytes });
      this.seeder.pieceSent(id, index);
      offer();
    });
    server.on('chunkCorrupt', (index) =>
      log('chunk-corrupt', { chunk: index, reason: 'stored file failed SHA-1; dropped' }),
    );
    connection.sendBitfield(new Bitfield(this.store.pieceCount));
    log('idlist-sent', { to: id, chunks: 0, of: this.store.pieceCount });
    offer();
  }

  /** Times `index` has gone out from the owner to swarm-mode peers. */
  timesOut(index: number): number {
    return this.seeder.timesOut(index);
  }
}
