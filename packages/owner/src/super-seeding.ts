import { Bitfield, type Clock, type Rng } from '@swarmdrop/protocol';
import type { BlockServer, Connection, MessageWire } from '@swarmdrop/protocol/node';
import { idListAs, type Publish } from '@swarmdrop/service';
import { InitialSeeder } from './initial-seeder.js';

/**
 * How the owner serves swarm-mode peers (their peer id says so): initial
 * seeding. Each gets an empty bitfield, then `have`s for a few pieces at a
 * time chosen by the InitialSeeder, so that every piece goes out once before
 * any goes out twice; the peers trade the rest among themselves. Ring peers
 * and stock clients get the whole bitfield instead: a ring peer's batch and
 * fallback ask the owner for chunks of its choosing.
 *
 * The owner runs every connection alike (Connection, BlockServer, unchoke on
 * interest, the events every connection publishes); this part adds only
 * what differs: the empty bitfield and the offers (`idlist-sent`, `have-sent`).
 */
export class SuperSeeding {
  private readonly seeder: InitialSeeder;
  private readonly store: { readonly pieceCount: number };
  private readonly publish: Publish;
  /** Each live peer's top-up, so that what one leaves behind is offered to the others at once. */
  private readonly offerTo = new Map<string, () => number>();

  constructor(
    /** The owner's store (`ChunkStore`); only its piece count is read. */
    store: { readonly pieceCount: number },
    publish: Publish,
    options: { readonly clock?: Clock; readonly rng?: Rng } = {},
  ) {
    this.store = store;
    this.publish = publish;
    // The owner's clock times the first copies' grace, so a ManualClock in a test moves it.
    this.seeder = new InitialSeeder({
      pieceCount: store.pieceCount,
      rng: options.rng ?? Math.random,
      ...(options.clock ? { clock: options.clock } : {}),
    });
  }

  /** Takes over the offers to a handshaken connection of a swarm-mode peer. */
  serve(connection: Connection<MessageWire>, server: BlockServer): void {
    const id = connection.label;
    this.seeder.addPeer(id);
    /** Tops the peer up to its offers in force; returns how many it was offered now. */
    const offer = (): number => {
      if (connection.state !== 'live') return 0;
      const fresh = this.seeder.offers(id);
      connection.batch(() => {
        for (const index of fresh) {
          connection.sendHave(index);
          this.publish('have-sent', { chunk: index, to: id });
        }
      });
      return fresh.length;
    };
    connection.on('bitfield', (remote) => {
      this.seeder.peerBitfield(id, remote);
      offer();
    });
    connection.on('have', (index) => {
      this.seeder.peerHas(id, index);
      offer();
    });
    connection.on('closed', () => {
      this.offerTo.delete(id);
      this.seeder.removePeer(id);
      // Its unsent offers are back in the pool, and perhaps the last first copies others waited for.
      for (const top of this.offerTo.values()) top();
    });
    this.offerTo.set(id, offer);
    server.on('chunkSent', (index) => {
      const first = this.seeder.pieceSent(id, index);
      offer();
      // A peer left with no offer while first copies were under way hears of nothing until
      // someone offers it more: only the owner has what it lacks when it reaches no other peer.
      // The first that gets nothing stops the round: what holds it back (a first copy under
      // way elsewhere) holds back the others too, and a round must stay O(peers).
      if (first) for (const top of this.starved()) if (top() === 0) break;
    });
    const form = connection.sendBitfield(new Bitfield(this.store.pieceCount));
    this.publish('idlist-sent', {
      to: id,
      chunks: 0,
      of: this.store.pieceCount,
      ...idListAs(form),
    });
    offer();
  }

  /** The top-ups of live peers with no offer in force. */
  private starved(): Array<() => number> {
    const out: Array<() => number> = [];
    for (const [id, top] of this.offerTo) if (this.seeder.offeredTo(id).length === 0) out.push(top);
    return out;
  }

  /** Times `index` has gone out from the owner to swarm-mode peers. */
  timesOut(index: number): number {
    return this.seeder.timesOut(index);
  }
}
