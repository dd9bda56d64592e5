/**
 * SwarmSession on a ManualClock: what it does on time (re-announcing, and
 * dialling whom the tracker lists by then) runs when the test advances the
 * clock, never on a wall-clock wait.
 */
import { once } from 'node:events';
import { Duplex } from 'node:stream';
import {
  buildMetainfo,
  encodeMessage,
  FrameDecoder,
  ManualClock,
  type Message,
  makePeerId,
} from '@swarmdrop/protocol';
import { ChunkStore } from '@swarmdrop/protocol/node';
import { Cleanup, HANG_MS, startOwner, within } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import type { WireConnection } from '../src/dialers.js';
import type { AnnounceResult } from '../src/owner-client.js';
import { REANNOUNCE_MS } from '../src/reannouncer.js';
import { DUPLICATE_REASON, SWARM_TICK_MS, SwarmSession } from '../src/swarm/swarm-session.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

describe('SwarmSession', () => {
  it('re-announces on its clock asking for maxPeers, and dials whom the tracker lists then', async () => {
    const { owner, metainfo } = await startOwner(cleanup, { size: 9 * 102_400 - 5 });
    const dir = await cleanup.tempDir();
    const { store } = await ChunkStore.open({ dir, metainfo });
    cleanup.add(() => store.close());
    const clock = new ManualClock();
    const abort = new AbortController();
    cleanup.add(() => abort.abort());
    // The tracker lists nobody at first; the owner is "announced" only later.
    let listed: AnnounceResult['peerList'] = [];
    const asked: number[] = [];
    let answered!: () => void;
    let announces = new Promise<void>((resolve) => {
      answered = resolve;
    });
    const session = new SwarmSession(
      {
        store,
        peerId: makePeerId(1),
        clock,
        signal: abort.signal,
        announce: async (numwant) => {
          asked.push(numwant);
          const result = { batch: undefined, peers: listed.length, hosts: [], peerList: listed };
          queueMicrotask(answered);
          return result;
        },
      },
      { owner: { host: '127.0.0.1', port: owner.port }, maxPeers: 7 },
    );
    cleanup.add(() => session.close());
    const stored = new Set<number>();
    const complete = new Promise<void>((resolve) =>
      session.on('pieceStored', (index) => {
        stored.add(index);
        if (stored.size === metainfo.geometry.pieceCount) resolve();
      }),
    );
    const connected: string[] = [];
    session.on('connected', (link) => connected.push(`${link.role}:${link.dir}`));

    session.start();
    await within(announces, HANG_MS, () => 'no first announce');
    expect(asked).toEqual([7]);
    expect(session.size).toBe(0);

    listed = [{ host: '127.0.0.1', port: owner.port }];
    announces = new Promise<void>((resolve) => {
      answered = resolve;
    });
    clock.advance(REANNOUNCE_MS - 1);
    expect(asked).toHaveLength(1);
    clock.advance(1);
    await within(announces, HANG_MS, () => 'no re-announce');
    expect(asked).toEqual([7, 7]);
    await within(complete, HANG_MS, () => `stored ${stored.size} pieces`);
    expect(connected).toEqual(['owner:out']);
    expect(session.allServed()).toBe(true);
  });
});

/**
 * One end of an in-memory connection whose incoming bytes wait until the
 * test opens it: the remote's handshake, and so this end's `ready`, comes
 * exactly when the test says.
 */
class GatedEnd extends Duplex {
  readonly remoteAddress = '127.0.0.1';
  other!: GatedEnd;
  private held: Buffer[] | undefined = [];

  constructor(
    /** Which connection this end belongs to (named by who dialled it). */
    readonly pair: string,
    readonly remotePort: number,
  ) {
    super();
  }

  static pair(name: string): [GatedEnd, GatedEnd] {
    const a = new GatedEnd(name, 40_001);
    const b = new GatedEnd(name, 40_002);
    a.other = b;
    b.other = a;
    return [a, b];
  }

  /** Lets through what the remote wrote (its handshake) and everything after; resolves once it was read. */
  async open(): Promise<void> {
    const held = this.held;
    this.held = undefined;
    if (this.destroyed || !held || held.length === 0) return;
    const read = once(this, 'data');
    for (const bytes of held) this.push(bytes);
    await read;
  }

  override _read(): void {}

  override _write(bytes: Buffer, _encoding: string, done: (err?: Error | null) => void): void {
    this.other.deliver(bytes);
    done();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.other.destroy();
    done(err);
  }

  private deliver(bytes: Buffer): void {
    if (this.destroyed) return;
    if (this.held) this.held.push(bytes);
    else this.push(bytes);
  }
}

/** Every order of the four handshakes: each end of each of the two connections. */
function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, i) =>
    permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]),
  );
}

describe('SwarmSession, two peers dialling each other at once', () => {
  // Regression: the session kept the right connection by the peer-id tie-break, but when the
  // winner's handshake came second it closed the first one and added the winner to the
  // scheduler in the same turn, before the loser's `closed` had taken it out; the scheduler
  // refused the label ("link … is already scheduled") and so closed the winner as well, as a
  // protocol error. 23 such lines in one N=20 run; both peers were then left with neither.
  it.each([
    ['A has the smaller id', 6_001, 6_002],
    ['B has the smaller id', 6_002, 6_001],
  ])(
    'both keep the connection the smaller id dialled, in every order of handshakes (%s)',
    async (_, portA, portB) => {
      const { metainfo } = buildMetainfo({
        name: 'f',
        length: 3 * 102_400,
        pieceLength: 102_400,
        pieceHashes: [0, 1, 2].map((i) => Buffer.alloc(20, i)),
      });
      const open = async () => {
        const { store } = await ChunkStore.open({ dir: await cleanup.tempDir(), metainfo });
        cleanup.add(() => store.close());
        return store;
      };
      const stores = { A: await open(), B: await open() };
      const ids = { A: makePeerId(portA, 'swarm'), B: makePeerId(portB, 'swarm') };
      const winner = Buffer.compare(ids.A, ids.B) < 0 ? 'dialled by A' : 'dialled by B';
      const failures: string[] = [];

      for (const order of permutations(['A out', 'A in', 'B out', 'B in'] as const)) {
        const abort = new AbortController();
        const clock = new ManualClock();
        const ends = new Map<string, GatedEnd>();
        const sessions = {} as Record<'A' | 'B', SwarmSession>;
        const problems: string[] = [];
        // Each session's connections from `connected` to `disconnected`, by the connection they ride on.
        const live = { A: new Set<string>(), B: new Set<string>() };
        const make = (self: 'A' | 'B', other: 'A' | 'B', otherPort: number) => {
          const session = new SwarmSession(
            {
              store: stores[self],
              peerId: ids[self],
              clock,
              signal: abort.signal,
              announce: async () => ({ batch: undefined, peers: 0, hosts: [], peerList: [] }),
              // Dialling the other puts its end in its accept() and ours in our own hands.
              connect: async (): Promise<WireConnection> => {
                const [ours, theirs] = GatedEnd.pair(`dialled by ${self}`);
                ends.set(`${self} out`, ours);
                ends.set(`${other} in`, theirs);
                sessions[other].accept({
                  socket: theirs,
                  encryption: 'plaintext',
                  transport: 'tcp',
                });
                return { socket: ours, encryption: 'plaintext', transport: 'tcp' };
              },
            },
            {
              owner: { host: '127.0.0.1', port: 1 },
              extraPeers: [{ host: '127.0.0.1', port: otherPort }],
            },
          );
          const pairOf = (link: { connection: { wire: { socket: unknown } } }) =>
            (link.connection.wire.socket as GatedEnd).pair;
          session.on('connected', (link) => live[self].add(pairOf(link)));
          session.on('disconnected', (link, reason, error) => {
            live[self].delete(pairOf(link));
            if (error) problems.push(`${self} closed ${link.dir} as an error: ${reason}`);
            // The one that loses closes it as a duplicate; the other end may see it closed first.
            else if (reason !== DUPLICATE_REASON && reason !== 'closed by remote')
              problems.push(`${self} closed ${link.dir}: ${reason}`);
          });
          session.on('error', (err) => problems.push(`${self}: ${err.message}`));
          return session;
        };
        sessions.A = make('A', 'B', portB);
        sessions.B = make('B', 'A', portA);
        sessions.A.start();
        sessions.B.start();
        // Both dials are under way (connect runs inside start) before any handshake goes through.
        expect([...ends.keys()].sort()).toEqual(['A in', 'A out', 'B in', 'B out']);
        for (const end of order) await ends.get(end)!.open();
        const loser = [...ends.values()].filter((e) => e.pair !== winner);
        await within(
          Promise.all(loser.map((e) => (e.closed ? undefined : once(e, 'close')))),
          HANG_MS,
          () => `${order.join(', ')}: the duplicate was not closed`,
        );
        // A closed socket's `closed` reaches the session a turn later.
        await new Promise((resolve) => setImmediate(resolve));
        const kept = (self: 'A' | 'B') =>
          sessions[self].size === 1 && live[self].size === 1
            ? [...live[self]][0]
            : `${sessions[self].size} links (${[...live[self]].join(', ')})`;
        const outcome = `A kept ${kept('A')}, B kept ${kept('B')}`;
        if (outcome !== `A kept ${winner}, B kept ${winner}` || problems.length > 0)
          failures.push(`${order.join(', ')}: ${outcome}${problems.map((p) => `; ${p}`).join('')}`);
        sessions.A.close();
        sessions.B.close();
        abort.abort();
      }
      expect(failures).toEqual([]);
    },
  );
});

describe('SwarmSession, dials that fail', () => {
  /** A session whose every dial goes to `connect`, and whose tracker always lists 127.0.0.1:7001. */
  async function failingDials(connect: (n: number) => Promise<WireConnection>) {
    const { metainfo } = buildMetainfo({
      name: 'f',
      length: 102_400,
      pieceLength: 102_400,
      pieceHashes: [Buffer.alloc(20)],
    });
    const { store } = await ChunkStore.open({ dir: await cleanup.tempDir(), metainfo });
    cleanup.add(() => store.close());
    const clock = new ManualClock();
    const abort = new AbortController();
    cleanup.add(() => abort.abort());
    const dials: number[] = [];
    const session = new SwarmSession(
      {
        store,
        peerId: makePeerId(7000, 'swarm'),
        clock,
        // No jitter: the waits are the backoff's own.
        rng: () => 0.5,
        signal: abort.signal,
        announce: async () => ({
          batch: undefined,
          peers: 1,
          hosts: [],
          peerList: [{ host: '127.0.0.1', port: 7001 }],
        }),
        connect: () => {
          dials.push(clock.now());
          return connect(dials.length);
        },
      },
      { owner: { host: '127.0.0.1', port: 1 } },
    );
    cleanup.add(() => session.close());
    // A failed dial schedules its retry once its rejection has been handled.
    const turn = () => new Promise((resolve) => setImmediate(resolve));
    const advance = async (ms: number) => {
      clock.advance(ms);
      await turn();
    };
    session.start();
    await turn();
    return { dials, advance };
  }

  const refused = () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:7001'));

  it('retries with backoff before the next re-announce, then waits for the tracker to list it again', async () => {
    const { dials, advance } = await failingDials(refused);
    expect(dials).toEqual([0]);
    for (const wait of [250, 500, 1_000, 2_000, 4_000, 8_000]) await advance(wait);
    expect(dials).toEqual([0, 250, 750, 1_750, 3_750, 7_750, 15_750]);
    // Forgotten after DEFAULT_REDIAL_ATTEMPTS retries: nothing until the re-announce lists it.
    await advance(REANNOUNCE_MS - 15_750 - 1);
    expect(dials).toHaveLength(7);
    await advance(1);
    expect(dials.at(-1)).toBe(REANNOUNCE_MS);
    await advance(250);
    expect(dials.at(-1)).toBe(REANNOUNCE_MS + 250);
  });

  it('stops retrying once a dial connects', async () => {
    const { dials, advance } = await failingDials(async (n) => {
      if (n < 3) return refused();
      // Connected; the remote never handshakes, so the address stays "being dialled".
      const [ours] = GatedEnd.pair('dialled by us');
      cleanup.add(() => ours.destroy());
      return { socket: ours, encryption: 'plaintext', transport: 'tcp' };
    });
    await advance(250);
    await advance(500);
    expect(dials).toEqual([0, 250, 750]);
    // No more retries: only the next re-announce may list it again (its handshake never
    // came, so by then the connection has closed on its own deadline).
    for (let t = 0; t < 20; t++) await advance((REANNOUNCE_MS - 750 - 1) / 20);
    expect(dials).toEqual([0, 250, 750]);
  });
});

describe('SwarmSession, idle', () => {
  it('stops its clock while nothing moves and nobody wants anything, and starts it for an interested remote', async () => {
    // A finished peer in a quiet swarm woke every second for a review and a choking round with nothing to do.
    const { metainfo } = buildMetainfo({
      name: 'f',
      length: 102_400,
      pieceLength: 102_400,
      pieceHashes: [Buffer.alloc(20)],
    });
    const { store } = await ChunkStore.open({ dir: await cleanup.tempDir(), metainfo });
    cleanup.add(() => store.close());
    const clock = new ManualClock();
    const abort = new AbortController();
    cleanup.add(() => abort.abort());
    const session = new SwarmSession(
      {
        store,
        peerId: makePeerId(7100, 'swarm'),
        clock,
        signal: abort.signal,
        announce: async () => ({ batch: undefined, peers: 0, hosts: [], peerList: [] }),
      },
      { owner: { host: '127.0.0.1', port: 1 } },
    );
    cleanup.add(() => session.close());
    session.start();
    expect(session.ticking).toBe(true);
    const running = clock.timers;
    clock.advance(SWARM_TICK_MS);
    // Only the re-announce is left.
    const asleep = clock.timers;
    expect(asleep).toBe(running - 1);
    expect(session.ticking).toBe(false);
    clock.advance(10 * SWARM_TICK_MS);
    expect(clock.timers).toBe(asleep);

    // A remote connects and says it is interested: the clock runs again, and keeps running.
    const [ours, remote] = GatedEnd.pair('dialled by the remote');
    await Promise.all([ours.open(), remote.open()]);
    const decoder = new FrameDecoder({ geometry: metainfo.geometry });
    const waiters: Array<{ type: Message['type']; resolve: () => void }> = [];
    remote.on('data', (bytes: Buffer) => {
      for (const m of decoder.push(bytes))
        for (const w of waiters.splice(0))
          if (w.type === m.type) w.resolve();
          else waiters.push(w);
    });
    const sent = (type: Message['type']) =>
      within(
        new Promise<void>((resolve) => waiters.push({ type, resolve })),
        HANG_MS,
        () => `no ${type} from the session`,
      );
    session.accept({ socket: ours, encryption: 'plaintext', transport: 'tcp' });
    remote.write(
      encodeMessage({
        type: 'handshake',
        reserved: new Uint8Array(8),
        infoHash: metainfo.infoHash,
        peerId: makePeerId(7101, 'swarm'),
      }),
    );
    const unchoked = sent('unchoke');
    remote.write(encodeMessage({ type: 'interested' }));
    await unchoked;
    // (The connection's own timers, keep-alive and the like, run on this clock too.)
    expect(session.ticking).toBe(true);
    clock.advance(30 * SWARM_TICK_MS);
    expect(session.ticking).toBe(true);

    // It loses interest: the next tick finds nothing to do.
    const choked = sent('choke');
    remote.write(encodeMessage({ type: 'notInterested' }));
    await choked;
    clock.advance(SWARM_TICK_MS);
    expect(session.ticking).toBe(false);
  });
});
