import { Bitfield, type Publish, type Rng } from '@swarmdrop/protocol';
import { BlockServer, type ChunkStore, Connection, type PeerWire } from '@swarmdrop/protocol/node';
import { InitialSeeder } from './initial-seeder.js';

/**
 * How the owner serves swarm-mode peers (their peer id says so): initial
 * seeding. Each gets an empty bitfield, then `have`s for a few pieces at a
 * time chosen by the InitialSeeder, so that every piece goes out once before
 * any goes out twice; the peers trade the rest among themselves. Ring peers
 * and stock clients are served as before (the whole bitfield, Uploader):
 * a ring peer's batch and fallback ask the owner for chunks of its choosing.
 *
 * It publishes the same domain events as the Uploader, through the owner's
 * `publish` (the owner counts what was served by subscribing to
 * `chunk-sent`); a chunk file found corrupt goes to `onChunkCorrupt`, since
 * the owner, which holds the source file, restores it.
 */
export class SuperSeeding {
  private readonly seeder: InitialSeeder;
  private readonly store: ChunkStore;
  /** Each live peer's top-up, so that what one leaves behind is offered to the others at once. */
  private readonly offerTo = new Map<string, () => void>();

  private readonly publish: Publish;
  private readonly onChunkCorrupt: (index: number) => void;

  constructor(
    store: ChunkStore,
    publish: Publish,
    onChunkCorrupt: (index: number) => void,
    rng: Rng = Math.random,
  ) {
    this.store = store;
    this.publish = publish;
    this.onChunkCorrupt = onChunkCorrupt;
    this.seeder = new InitialSeeder({ pieceCount: store.pieceCount, rng });
  }

  /** Takes over a handshaken wire of a swarm-mode peer. */
  serve(wire: PeerWire): void {
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
          this.publish('have-sent', { chunk: index, to: id });
        }
      });
    };
    connection.on('bitfield', (remote) => {
      this.publish('idlist-received', { from: id, chunks: remote.count(), of: remote.size });
      this.seeder.peerBitfield(id, remote);
      offer();
    });
    connection.on('have', (index) => {
      this.publish('have-received', { chunk: index, from: id });
      this.seeder.peerHas(id, index);
      offer();
    });
    // The owner serves everyone who asks (as the Uploader does): offers, not choking, ration it.
    connection.on('interested', () => connection.unchoke());
    connection.on('closed', () => {
      this.offerTo.delete(id);
      this.seeder.removePeer(id);
      // Its unsent offers are back in the pool, and perhaps the last first copies others waited for.
      for (const top of this.offerTo.values()) top();
    });
    this.offerTo.set(id, offer);
    server.on('requestReceived', (index) =>
      this.publish('request-received', { chunk: index, from: id }),
    );
    server.on('chunkSent', (index, bytes) => {
      this.publish('chunk-sent', { chunk: index, to: id, bytes });
      this.seeder.pieceSent(id, index);
      offer();
    });
    server.on('chunkCorrupt', (index) => this.onChunkCorrupt(index));
    connection.sendBitfield(new Bitfield(this.store.pieceCount));
    this.publish('idlist-sent', { to: id, chunks: 0, of: this.store.pieceCount });
    offer();
  }

  /** Times `index` has gone out from the owner to swarm-mode peers. */
  timesOut(index: number): number {
    return this.seeder.timesOut(index);
  }
}
