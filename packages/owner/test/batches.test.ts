/**
 * The tracker's initial batches: five swarmdrop peers announcing one at a
 * time get disjoint batches of about ceil(chunks / 5) that cover the file; a
 * re-announce gets the same batch; stock clients get none.
 */
import { randomBytes } from 'node:crypto';
import { bencodeDecode, decodeCompactPeers, ManualClock, makePeerId } from '@swarmdrop/protocol';
import { parseRanges } from '@swarmdrop/service';
import {
  announcePath,
  Cleanup,
  httpGet,
  type LogCapture,
  startOwner,
  stockPeerId,
  type TestOwner,
} from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { ANNOUNCE_EXPIRY_MS, BATCH_KEY, BatchAssigner } from '../src/index.js';

interface Announced {
  readonly batch: number[] | undefined;
  readonly peers: string[];
  readonly body: Record<string, unknown>;
}

function asDict(value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new Error('announce response is not a dictionary');
  return value as Record<string, unknown>;
}

describe('initial batches for swarmdrop peers', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());
  let log: LogCapture;

  async function start(chunks: number, clock?: ManualClock): Promise<TestOwner> {
    const chunkSize = 16_384;
    const started = await startOwner(cleanup, {
      // A short last chunk, so the count is not a round multiple of anything.
      size: chunkSize * (chunks - 1) + 1_000,
      name: 'file.bin',
      options: { chunkSize },
      components: clock ? { clock } : {},
    });
    log = started.log;
    expect(started.metainfo.geometry.pieceCount).toBe(chunks);
    return started;
  }

  async function announce(
    o: TestOwner,
    port: number,
    peerId: Uint8Array = makePeerId(port),
    event: string | undefined = 'started',
  ): Promise<Announced> {
    const res = await httpGet(
      o.port,
      announcePath({ infoHash: o.metainfo.infoHash, peerId, port, left: o.metainfo.length, event }),
    );
    expect(res.status).toBe(200);
    const body = asDict(bencodeDecode(res.body));
    expect(body['failure reason']).toBeUndefined();
    const raw = body[BATCH_KEY];
    const batch = raw === undefined ? undefined : (raw as unknown[]).map((n) => Number(n));
    const peers = decodeCompactPeers(body.peers as Uint8Array).map((p) => `${p.host}:${p.port}`);
    return { batch, peers, body };
  }

  // 21 and 23 chunks do not divide by 5; 21 is where ceil-sized batches
  // (5,5,5,5 then a 5th of 1 new + 4 repeats) stopped being disjoint.
  it.each([21, 23, 25, 100])(
    '%i chunks: five joins get disjoint batches covering the file',
    async (chunks) => {
      const o = await start(chunks);
      const batches: number[][] = [];
      for (let port = 7001; port <= 7005; port++) {
        const { batch, peers } = await announce(o, port);
        expect(batch, `peer ${port} got no batch`).toBeDefined();
        batches.push(batch!);
        // The owner itself is always in the peer list, then the peers before this one.
        expect(peers[0]).toBe(`127.0.0.1:${o.port}`);
        expect(peers.slice(1).sort()).toEqual(
          Array.from({ length: port - 7001 }, (_, k) => `127.0.0.1:${7001 + k}`),
        );
      }
      const all = batches.flat();
      expect(new Set(all).size).toBe(all.length); // disjoint
      expect([...all].sort((a, b) => a - b)).toEqual(Array.from({ length: chunks }, (_, k) => k));
      for (const batch of batches) {
        expect(batch.length).toBeGreaterThanOrEqual(Math.floor(chunks / 5));
        expect(batch.length).toBeLessThanOrEqual(Math.ceil(chunks / 5));
        expect(batch.every((i) => Number.isInteger(i) && i >= 0 && i < chunks)).toBe(true);
      }

      // One batch-assigned line per peer, naming the same chunks the response carried.
      const lines = log.filter('batch-assigned');
      expect(lines.map((l) => l.fields.peer)).toEqual(
        [7001, 7002, 7003, 7004, 7005].map((p) => `127.0.0.1:${p}`),
      );
      lines.forEach((l, k) => {
        expect(parseRanges(l.fields.chunks!)).toEqual(batches[k]);
        expect(Number(l.fields.count)).toBe(batches[k]!.length);
      });
    },
  );

  it('gives a re-announcing peer the same batch, and no new batch-assigned line', async () => {
    const o = await start(23);
    const first = await announce(o, 7001);
    const again = await announce(o, 7001, makePeerId(7001), undefined);
    const restarted = await announce(o, 7001, makePeerId(7001), 'started');
    expect(again.batch).toEqual(first.batch);
    expect(restarted.batch).toEqual(first.batch);
    expect(log.filter('batch-assigned')).toHaveLength(1);
    expect(log.filter('announce', { peer: '127.0.0.1:7001' })).toHaveLength(3);
    // The next peer still gets chunks nobody was given.
    const next = await announce(o, 7002);
    expect(next.batch!.some((i) => first.batch!.includes(i))).toBe(false);
  });

  it('gives stock clients and spoofed swarmdrop ids no batch, but the owner in the peer list', async () => {
    const o = await start(23);
    const stock = await announce(o, 7006, stockPeerId());
    expect(stock.batch).toBeUndefined();
    expect(stock.body[BATCH_KEY]).toBeUndefined();
    expect(stock.peers).toEqual([`127.0.0.1:${o.port}`]);
    // A swarmdrop id must carry the port it announces.
    const spoofed = await announce(o, 7007, makePeerId(7008));
    expect(spoofed.batch).toBeUndefined();
    // A stopped swarmdrop peer gets none either.
    const stopped = await announce(o, 7009, makePeerId(7009), 'stopped');
    expect(stopped.batch).toBeUndefined();
    expect(log.filter('batch-assigned')).toHaveLength(0);
    // ...and the first real swarmdrop peer still gets the first chunks.
    const real = await announce(o, 7001);
    expect(real.batch![0]).toBe(0);
  });

  it('drops a stopped peer from peer lists at once, and a silent one after the expiry', async () => {
    const clock = new ManualClock();
    const o = await start(23, clock);
    await announce(o, 7001);
    await announce(o, 7002);
    expect((await announce(o, 7003)).peers).toContain('127.0.0.1:7001');
    await announce(o, 7001, makePeerId(7001), 'stopped');
    expect((await announce(o, 7003)).peers).not.toContain('127.0.0.1:7001');
    expect((await announce(o, 7003)).peers).toContain('127.0.0.1:7002');
    // 7002 never announces again; 7003 does.
    clock.advance(ANNOUNCE_EXPIRY_MS + 1);
    await announce(o, 7003);
    const later = await announce(o, 7004);
    expect(later.peers).toContain('127.0.0.1:7003');
    expect(later.peers).not.toContain('127.0.0.1:7002');
  });

  it("stamps each peer's lastSeen in /status from the injected clock", async () => {
    const clock = new ManualClock();
    const o = await start(5, clock);
    await announce(o, 7001);
    clock.advance(60_000);
    await announce(o, 7002);
    const { peers } = o.owner.status() as { peers: Array<{ address: string; lastSeen: string }> };
    const seen = (address: string) =>
      Date.parse(peers.find((p) => p.address === address)!.lastSeen);
    // Exactly the clock's step: announced a few ms apart in wall time.
    expect(seen('127.0.0.1:7002') - seen('127.0.0.1:7001')).toBe(60_000);
  });

  it('refuses bad announces: 400 with a failure reason, and a foreign info_hash', async () => {
    const o = await start(23);
    const base = { infoHash: o.metainfo.infoHash, peerId: makePeerId(7001), port: 7001 };
    const bad = [
      announcePath(base).replace(/info_hash=[^&]*/, 'info_hash=short'),
      announcePath(base).replace(/peer_id=[^&]*/, ''),
      announcePath(base).replace('port=7001', 'port=0'),
      announcePath(base).replace('port=7001', 'port=70000'),
      announcePath(base).replace('port=7001', 'port=x'),
      announcePath(base).replace(/info_hash=%../, 'info_hash=%G1'),
      '/announce',
    ];
    for (const path of bad) {
      const res = await httpGet(o.port, path);
      expect(res.status, path).toBe(400);
      const body = asDict(bencodeDecode(res.body));
      expect(Buffer.from(body['failure reason'] as Uint8Array).toString()).toMatch(
        /info_hash|peer_id|port|percent/,
      );
    }
    const foreign = await httpGet(o.port, announcePath({ ...base, infoHash: randomBytes(20) }));
    expect(foreign.status).toBe(200);
    expect(
      Buffer.from(asDict(bencodeDecode(foreign.body))['failure reason'] as Uint8Array).toString(),
    ).toMatch(/info_hash/);
    expect(log.filter('batch-assigned')).toHaveLength(0);
    expect(log.filter('announce')).toHaveLength(0);
  });
});

describe('BatchAssigner', () => {
  it('splits any chunk count over the expected peers disjointly, then favours rare chunks', () => {
    for (const [chunks, expected] of [
      [1, 5],
      [4, 5],
      [5, 5],
      [21, 5],
      [97, 7],
      [1000, 3],
    ] as const) {
      const a = new BatchAssigner(chunks, expected);
      const batches = Array.from({ length: expected }, (_, k) => a.assign(`p${k}`));
      const all = batches.flat();
      expect(new Set(all).size).toBe(Math.min(all.length, chunks));
      expect(new Set(all).size).toBe(chunks);
      for (const b of batches) expect(b.length).toBeLessThanOrEqual(Math.ceil(chunks / expected));
      if (chunks >= expected) expect(all).toHaveLength(chunks);
    }
    const a = new BatchAssigner(10, 2);
    a.assign('x'); // 0-4
    a.noteHolds('y', 5); // someone already holds 5 (from its haves)
    a.noteHolds('y', 99); // out of range: ignored
    expect(a.copiesOf(5)).toBe(1);
    const second = a.assign('z');
    // The one peer still expected gets the four chunks nobody has; 5 is held already.
    expect(second).toEqual([6, 7, 8, 9]);
    expect(a.batchOf('z')).toBe(second);
    expect(() => new BatchAssigner(10, 0)).toThrow(RangeError);
  });
});
