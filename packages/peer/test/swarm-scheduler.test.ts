/**
 * The swarm scheduler over real loopback sockets: Connections at both ends,
 * the real picker, min-rate policy and ChunkStore. Seeds are scripted in the
 * test (serve, corrupt, or sit on requests). Verdicts come from events and
 * files; the policy's time is a ManualClock the test advances.
 */
import { readFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import {
  Bitfield,
  BLOCK_SIZE,
  buildMetainfo,
  ManualClock,
  type Metainfo,
  makePeerId,
  seededRng,
  withFastBit,
} from '@swarmdrop/protocol';
import {
  ChunkStore,
  Connection,
  DEFAULT_CHOKED_REQUEST_GRACE_MS,
  PeerWire,
  sha1,
} from '@swarmdrop/protocol/node';
import { Cleanup, HANG_MS, pseudoRandomBytes, socketPair, within } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DEFAULT_PIPELINE_BYTES,
  MAX_EMPTY_RETRIES,
  MIN_PIPELINE_BYTES,
  MinRatePolicy,
  pipelineBytesFor,
  SwarmPicker,
  SwarmScheduler,
  type SwarmSchedulerOptions,
} from '../src/engine/index.js';

/** A fixed pipeline of the whole cap, whatever the rate: a sitting link is asked for the whole (small) file. */
const FIXED_PIPELINE: SwarmSchedulerOptions = { minPipelineBytes: DEFAULT_PIPELINE_BYTES };

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const PIECE = 2 * BLOCK_SIZE;
const PIECES = 24;

/**
 * BEP 6 seeds: `reject` rejects every request while it unchokes us (a full
 * queue); `choke` chokes us at the first request, rejecting what it holds;
 * `choke-silent` chokes us without the rejects BEP 6 asks for.
 */
type SeedBehaviour = 'serve' | 'corrupt' | 'sit' | 'reject' | 'choke' | 'choke-silent';

interface Seed {
  /** The seed's end. */
  readonly connection: Connection;
  /** The leecher's end, once `addSeed` has scheduled it. */
  leecherSide?: Connection;
  requests: number;
  cancels: number;
}

/** A leecher with a real ChunkStore, and a way to connect it to scripted seeds. */
async function leecher(
  options: {
    endgameMaxRequesters?: number;
    scheduler?: SwarmSchedulerOptions;
    /** Both ends offer BEP 6. */
    fast?: boolean;
  } = {},
) {
  const fast = options.fast === true;
  const file = pseudoRandomBytes(PIECE * PIECES, 11);
  const pieceHashes = Array.from({ length: PIECES }, (_, i) =>
    sha1(file.subarray(i * PIECE, (i + 1) * PIECE)),
  );
  const { metainfo } = buildMetainfo({
    name: 'f.bin',
    length: file.length,
    pieceLength: PIECE,
    pieceHashes,
  });
  const dir = await cleanup.tempDir();
  const { store } = await ChunkStore.open({ dir, metainfo });
  cleanup.add(() => store.close());
  const clock = new ManualClock();
  const picker = new SwarmPicker({
    geometry: metainfo.geometry,
    held: store.held,
    rng: seededRng(3),
    ...(options.endgameMaxRequesters ? { endgameMaxRequesters: options.endgameMaxRequesters } : {}),
  });
  const policy = new MinRatePolicy({ clock, windowMs: 4_000 });
  const scheduler = new SwarmScheduler(
    { picker, policy, sink: store, clock },
    options.scheduler ?? {},
  );
  cleanup.add(() => scheduler.close());
  const stored: number[] = [];
  scheduler.on('pieceStored', (index) => stored.push(index));
  // Counted on the events, not on store.isComplete(): the store marks a piece held before its put resolves.
  const complete = new Promise<void>((resolve) =>
    scheduler.on('pieceStored', () => {
      if (stored.length === PIECES) resolve();
    }),
  );

  /** Connects a seed that holds the whole file and behaves as told; the leecher schedules the link. */
  async function addSeed(
    id: string,
    behaviour: SeedBehaviour,
    requestBytes = BLOCK_SIZE,
    allowed?: (index: number) => boolean,
  ): Promise<Seed> {
    const [ours, theirs] = await socketPair(cleanup);
    const mine = new Connection({
      wire: new PeerWire({ socket: ours, metainfo, peerId: makePeerId(1), ...fastWire(fast) }),
      pieceCount: PIECES,
      localHas: store.held,
      clock,
      fast,
    });
    const seed = serve(theirs, metainfo, file, behaviour, fast);
    await within(mine.wire.ready(), HANG_MS, () => `no handshake from ${id}`);
    scheduler.add(id, mine, { requestBytes, ...(allowed ? { allowed } : {}) });
    seed.leecherSide = mine;
    return seed;
  }

  const untilComplete = () =>
    within(complete, HANG_MS, () => `stored ${stored.length} of ${PIECES}: ${stored}`);
  return { file, dir, store, clock, scheduler, stored, addSeed, untilComplete };
}

/** The seed's end: bitfield, unchoke on interest, and answers (or not) every request. */
function serve(
  socket: Socket,
  metainfo: Metainfo,
  file: Buffer,
  behaviour: SeedBehaviour,
  fast = false,
): Seed {
  const all = new Bitfield(PIECES);
  for (let i = 0; i < PIECES; i++) all.set(i);
  const connection = new Connection({
    wire: new PeerWire({ socket, metainfo, peerId: makePeerId(2), ...fastWire(fast) }),
    pieceCount: PIECES,
    localHas: all,
    fast,
  });
  const seed: Seed = { connection, requests: 0, cancels: 0 };
  connection.on('ready', () => connection.sendBitfield(all));
  connection.on('interested', () => connection.unchoke());
  connection.on('cancel', () => seed.cancels++);
  connection.on('request', (r) => {
    seed.requests++;
    if (behaviour === 'sit') return;
    if (behaviour === 'reject') {
      connection.reject(r);
      return;
    }
    if (behaviour === 'choke') {
      connection.choke();
      return;
    }
    if (behaviour === 'choke-silent') {
      if (seed.requests === 1) connection.wire.send({ type: 'choke' });
      return;
    }
    const block = Buffer.from(
      file.subarray(r.index * PIECE + r.begin, r.index * PIECE + r.begin + r.length),
    );
    if (behaviour === 'corrupt') block[0] = block[0]! ^ 0xff;
    connection.sendPiece(r.index, r.begin, block);
  });
  cleanup.add(() => connection.close('test over'));
  return seed;
}

/** The handshake's reserved bytes for a wire that offers BEP 6. */
function fastWire(fast: boolean): { reserved?: Uint8Array } {
  return fast ? { reserved: withFastBit(new Uint8Array(8)) } : {};
}

/** Resolves once `test()` holds, checked on every event of `connection`'s kind; bounded against a hang. */
function until(test: () => boolean, connection: Connection, why: () => string): Promise<void> {
  return within(
    new Promise<void>((resolve) => {
      const check = () => {
        if (test()) resolve();
      };
      connection.on('request', check);
      connection.on('cancel', check);
      check();
    }),
    HANG_MS,
    why,
  );
}

describe('the pipeline follows the link', () => {
  const limits = { queueMs: 500, minBytes: 256 * 1024, maxBytes: 2 * 1024 * 1024 };

  it('asks a link for queueMs of its rate, between the minimum and the cap', () => {
    expect(pipelineBytesFor(0, limits)).toBe(256 * 1024);
    // A fifth of a 10 Mbit/s upload: 250 kB/s gives 125 kB, so the minimum holds.
    expect(pipelineBytesFor(250_000, limits)).toBe(256 * 1024);
    expect(pipelineBytesFor(1_000_000, limits)).toBe(500_000);
    expect(pipelineBytesFor(100e6, limits)).toBe(2 * 1024 * 1024);
  });

  it('never asks more than the cap, even as its minimum', () => {
    expect(pipelineBytesFor(0, { ...limits, maxBytes: 64 * 1024 })).toBe(64 * 1024);
  });

  it('asks a fresh link (no rate yet) for the minimum, not the whole cap', async () => {
    const l = await leecher();
    const sitter = await l.addSeed('sitter', 'sit');
    const blocks = MIN_PIPELINE_BYTES / BLOCK_SIZE;
    expect(blocks).toBeLessThan(PIECES * 2); // the file is larger than the minimum
    await until(
      () => sitter.requests === blocks,
      sitter.connection,
      () => `sitter saw ${sitter.requests} requests`,
    );
    // One fill asked for all of it at once; nothing more is asked until something arrives.
    expect(sitter.leecherSide!.bytesInFlight).toBe(MIN_PIPELINE_BYTES);
  });
});

describe('SwarmScheduler over loopback', () => {
  it('says when it asks a link for something, and is idle once nothing is asked of anyone', async () => {
    // The session runs its review clock only between the two.
    const l = await leecher();
    expect(l.scheduler.idle).toBe(true);
    const idleWhenAsked: boolean[] = [];
    l.scheduler.on('asked', (id) => {
      if (id === 'seed') idleWhenAsked.push(l.scheduler.idle);
    });
    await l.addSeed('seed', 'serve');
    await l.untilComplete();
    expect(idleWhenAsked.length).toBeGreaterThan(0);
    expect(idleWhenAsked.every((idle) => !idle)).toBe(true);
    expect(l.scheduler.idle).toBe(true);
  });

  it('downloads the whole file from several seeds, whole pieces from one and 16 KiB blocks from the others', async () => {
    const l = await leecher();
    const seeds = [
      await l.addSeed('a', 'serve', PIECE),
      await l.addSeed('b', 'serve'),
      await l.addSeed('c', 'serve'),
    ];
    await l.untilComplete();
    // Nothing left to want: every link was told so as the last piece was stored.
    for (const seed of seeds) expect(seed.leecherSide!.amInterested).toBe(false);
    expect(l.stored.slice().sort((x, y) => x - y)).toEqual(
      Array.from({ length: PIECES }, (_, i) => i),
    );
    // Kept for serving as stored (the file fits the cache): no piece needs a disk read to go out again.
    for (let i = 0; i < PIECES; i++)
      expect(l.store.cached(i)?.equals(l.file.subarray(i * PIECE, (i + 1) * PIECE))).toBe(true);
    const { path } = await l.store.merge(join(l.dir, 'f.bin'));
    expect((await readFile(path)).equals(l.file)).toBe(true);
  });

  it('fetches a piece again once its stored copy is reported lost (a re-check failed and dropped it)', async () => {
    const l = await leecher();
    const seed = await l.addSeed('a', 'serve', PIECE);
    await l.untilComplete();
    expect(seed.leecherSide!.amInterested).toBe(false);
    const again = new Promise<number>((resolve) =>
      l.scheduler.on('pieceStored', (index) => resolve(index)),
    );
    await l.store.drop(3);
    l.scheduler.pieceLost(3);
    expect(seed.leecherSide!.amInterested).toBe(true);
    expect(await within(again, HANG_MS, () => 'piece 3 was not fetched again')).toBe(3);
    const { path } = await l.store.merge(join(l.dir, 'f.bin'));
    expect((await readFile(path)).equals(l.file)).toBe(true);
  });

  it('reports a piece that fails its hash with the link that sent it, and completes from another link', async () => {
    const l = await leecher();
    const rejected = new Promise<readonly string[]>((resolve) =>
      l.scheduler.once('pieceRejected', (_index, from) => resolve(from)),
    );
    const bad = await l.addSeed('liar', 'corrupt');
    expect(await within(rejected, HANG_MS, () => 'no pieceRejected')).toEqual(['liar']);
    // Blame is the torrent's decision; here it closes the link, and its requests go back to the picker.
    bad.connection.close('blamed');
    await l.addSeed('honest', 'serve');
    await l.untilComplete();
    const { path } = await l.store.merge(join(l.dir, 'f.bin'));
    expect((await readFile(path)).equals(l.file)).toBe(true);
  });

  it('moves the requests of a link that sits on them to another link at the min-rate review', async () => {
    // No endgame duplicates: only the policy can rescue this download.
    const l = await leecher({ endgameMaxRequesters: 1, scheduler: FIXED_PIPELINE });
    const stalled: Array<[string, number]> = [];
    l.scheduler.on('stalled', (id, n) => stalled.push([id, n]));
    const sitter = await l.addSeed('sitter', 'sit');
    // The whole file fits its 2 MiB pipeline: every block is asked of it.
    await until(
      () => sitter.requests === PIECES * 2,
      sitter.connection,
      () => `sitter saw ${sitter.requests} requests`,
    );
    const fast = await l.addSeed('fast', 'serve');
    const fastLink = fast.leecherSide!;
    if (fastLink.peerChoking) {
      await within(
        new Promise((resolve) => fastLink.once('unchoke', () => resolve(undefined))),
        HANG_MS,
        () => 'the fast seed never unchoked us',
      );
    }
    expect(fastLink.outgoing.size, 'nothing is left to ask of the second link').toBe(0);
    expect(l.stored).toEqual([]);

    l.clock.advance(1);
    l.scheduler.tick(); // starts the sitter's window
    l.clock.advance(4_000);
    l.scheduler.tick();
    expect(stalled).toEqual([['sitter', PIECES * 2]]);
    await l.untilComplete();
    // The fast link asked first after the strip and took every block; the sitter got no probe back.
    expect(fast.requests).toBe(PIECES * 2);
    await until(
      () => sitter.cancels === PIECES * 2,
      sitter.connection,
      () => `sitter saw ${sitter.cancels} cancels`,
    );
  });

  it('asks each link only for what its policy allows, and again after refresh() widens it', async () => {
    const l = await leecher();
    const from = new Map<number, string>();
    l.scheduler.on('pieceStored', (index, id) => from.set(index, id));
    // A ring's shape: one link for a batch, another for all but the batch while the batch link runs.
    const batch = new Set([0, 1, 2, 3, 4, 5]);
    let batchReserved = true;
    const batchLink = await l.addSeed('owner', 'serve', PIECE, (i) => batch.has(i));
    await l.addSeed('neighbour', 'serve', PIECE, (i) => !batchReserved || !batch.has(i));
    await within(
      new Promise<void>((resolve) => {
        const check = () => {
          if ([...batch].every((i) => from.has(i))) resolve();
        };
        l.scheduler.on('pieceStored', check);
        check();
      }),
      HANG_MS,
      () => `batch pieces stored: ${[...from.keys()]}`,
    );
    for (const [index, id] of from)
      expect(id, `piece ${index}`).toBe(batch.has(index) ? 'owner' : 'neighbour');
    // The batch link goes; the neighbour may now take anything (nothing of the batch is left anyway).
    batchLink.connection.close('batch complete');
    batchReserved = false;
    l.scheduler.refresh();
    await l.untilComplete();
    for (const [index, id] of from)
      if (id === 'owner') expect(batch.has(index), `piece ${index} from the owner link`).toBe(true);
    expect(l.scheduler.inFlight().size).toBe(0);
  });

  it('in endgame asks a second link for what the first sits on, and cancels it there once it arrives', async () => {
    const l = await leecher({ scheduler: FIXED_PIPELINE });
    const sitter = await l.addSeed('sitter', 'sit');
    await until(
      () => sitter.requests === PIECES * 2,
      sitter.connection,
      () => `sitter saw ${sitter.requests} requests`,
    );
    await l.addSeed('fast', 'serve');
    await l.untilComplete();
    await until(
      () => sitter.cancels === PIECES * 2,
      sitter.connection,
      () => `sitter saw ${sitter.cancels} of ${PIECES * 2} cancels`,
    );
  });
});

describe('SwarmScheduler with BEP 6 (fast extension)', () => {
  it('asks another link at once for what a link rejects while it unchokes us, without a review', async () => {
    // No endgame duplicates: only the rejects can free the blocks it was asked for.
    const l = await leecher({ fast: true, endgameMaxRequesters: 1, scheduler: FIXED_PIPELINE });
    const rejecter = await l.addSeed('rejecter', 'reject');
    let rejected = 0;
    rejecter.leecherSide!.on('rejected', () => rejected++);
    await until(
      () => rejecter.requests > 0,
      rejecter.connection,
      () => 'the rejecter was never asked',
    );
    await l.addSeed('server', 'serve');
    // The clock never moves and tick() is never called: only the rejects move the blocks.
    await l.untilComplete();
    expect(rejected).toBeGreaterThan(0);
    expect(rejecter.leecherSide!.outgoing.size).toBe(0);
    expect(
      Buffer.compare(await readFile(join(l.dir, 'chunks', '0.chunk')), l.file.subarray(0, PIECE)),
    ).toBe(0);
  });

  it('asks a link that rejects everything again only a few times, then at the next review', async () => {
    const l = await leecher({ fast: true, scheduler: FIXED_PIPELINE });
    const rejecter = await l.addSeed('rejecter', 'reject');
    const link = rejecter.leecherSide!;
    // The whole file fits the pipeline: each round asks every block once, and all come back rejected.
    const rounds = 1 + MAX_EMPTY_RETRIES;
    await until(
      () => rejecter.requests === rounds * PIECES * 2,
      rejecter.connection,
      () => `the rejecter saw ${rejecter.requests} requests`,
    );
    await within(
      new Promise<void>((resolve) => {
        const check = () => {
          if (link.outgoing.size === 0) resolve();
        };
        link.on('rejected', check);
        check();
      }),
      HANG_MS,
      () => `${link.outgoing.size} still out`,
    );
    // Everything the leecher sent has arrived once this does: no further round went out.
    const heard = new Promise<void>((resolve) =>
      rejecter.connection.once('notInterested', () => resolve()),
    );
    link.wire.send({ type: 'notInterested' });
    await within(heard, HANG_MS, () => 'the rejecter never heard');
    expect(rejecter.requests).toBe(rounds * PIECES * 2);
    // The review forgives the refusals: it is asked again.
    l.scheduler.tick();
    await until(
      () => rejecter.requests > rounds * PIECES * 2,
      rejecter.connection,
      () => 'not asked again after the review',
    );
  });

  it('moves what a choking link rejects to the others at once', async () => {
    // No endgame duplicates: only the rejects can free the blocks it was asked for.
    const l = await leecher({ fast: true, endgameMaxRequesters: 1, scheduler: FIXED_PIPELINE });
    const choker = await l.addSeed('choker', 'choke');
    const link = choker.leecherSide!;
    let rejected = 0;
    link.on('rejected', () => rejected++);
    await within(
      new Promise((resolve) => link.once('choke', resolve)),
      HANG_MS,
      () => 'the choker never choked',
    );
    await l.addSeed('server', 'serve');
    await l.untilComplete();
    expect(rejected).toBeGreaterThan(0);
    expect(link.outgoing.size).toBe(0);
  });

  it('voids, at the review after the grace, what a link that chokes without rejecting sits on', async () => {
    // No endgame duplicates: only the expiry can rescue the blocks it holds.
    const l = await leecher({ fast: true, endgameMaxRequesters: 1, scheduler: FIXED_PIPELINE });
    const missing: Array<[string, number]> = [];
    const stalled: string[] = [];
    l.scheduler.on('rejectsMissing', (id, n) => missing.push([id, n]));
    l.scheduler.on('stalled', (id) => stalled.push(id));
    const silent = await l.addSeed('silent', 'choke-silent');
    const link = silent.leecherSide!;
    await until(
      () => silent.requests === PIECES * 2,
      silent.connection,
      () => `the silent seed saw ${silent.requests} requests`,
    );
    if (!link.peerChoking) {
      await within(
        new Promise((resolve) => link.once('choke', resolve)),
        HANG_MS,
        () => 'never choked',
      );
    }
    expect(link.outgoing.size, 'BEP 6: a choke alone voids nothing').toBe(PIECES * 2);
    await l.addSeed('server', 'serve');
    l.clock.advance(DEFAULT_CHOKED_REQUEST_GRACE_MS - 1);
    l.scheduler.tick();
    expect(missing).toEqual([]);
    expect(link.outgoing.size).toBe(PIECES * 2);
    l.clock.advance(1);
    l.scheduler.tick();
    expect(missing).toEqual([['silent', PIECES * 2]]);
    expect(stalled, 'the expiry did it, not the min-rate review').toEqual([]);
    expect(link.outgoing.size).toBe(0);
    await l.untilComplete();
  });

  it('asks a link that chokes us for its allowed-fast pieces, and for nothing else', async () => {
    const l = await leecher({ fast: true, scheduler: FIXED_PIPELINE });
    const [ours, theirs] = await socketPair(cleanup);
    const mine = new Connection({
      wire: new PeerWire({
        socket: ours,
        metainfo: l.store.metainfo,
        peerId: makePeerId(1),
        ...fastWire(true),
      }),
      pieceCount: PIECES,
      localHas: l.store.held,
      clock: l.clock,
      fast: true,
    });
    // A raw seed: have all, pieces 5 and 9 allowed fast, never unchokes, serves what is asked.
    const seed = new PeerWire({
      socket: theirs,
      metainfo: l.store.metainfo,
      peerId: makePeerId(2),
      ...fastWire(true),
    });
    cleanup.add(() => seed.close('test over'));
    const asked: number[] = [];
    seed.onHandshake = () => {
      seed.send({ type: 'haveAll' });
      seed.send({ type: 'allowedFast', index: 5 });
      seed.send({ type: 'allowedFast', index: 9 });
    };
    seed.onMessage = (message) => {
      if (message.type !== 'request') return;
      asked.push(message.index);
      const at = message.index * PIECE + message.begin;
      seed.sendPiece(message.index, message.begin, l.file.subarray(at, at + message.length));
    };
    await within(mine.wire.ready(), HANG_MS, () => 'no handshake');
    l.scheduler.add('choking', mine);
    await within(
      new Promise<void>((resolve) =>
        l.scheduler.on('pieceStored', () => {
          if (l.stored.length === 2) resolve();
        }),
      ),
      HANG_MS,
      () => `stored ${l.stored}`,
    );
    expect(mine.peerChoking).toBe(true);
    expect([...new Set(asked)].sort((a, b) => a - b)).toEqual([5, 9]);
    expect(l.stored.sort((a, b) => a - b)).toEqual([5, 9]);
  });
});
