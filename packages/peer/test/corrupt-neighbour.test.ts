import { readFile } from 'node:fs/promises';
import { parseRanges } from '@swarmdrop/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_HASH_FAILURES } from '../src/index.js';
import {
  CHUNK,
  Cleanup,
  merged,
  readSummary,
  scanChunks,
  startFakeNeighbour,
  startOwner,
  startPeer,
} from './helpers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

// Bug pinned here: a neighbour cut off for bad chunks was reconnected every
// ~250 ms, spoiled one more chunk each time, and every reconnect restarted the
// fallback clock, so the fallback waited until it had spoiled every missing chunk.
describe('a corrupting download neighbour', () => {
  it('has its chunks rejected, is cut off, and the peer still completes from the owner', async () => {
    const chunks = 60;
    const { owner, data } = await startOwner(cleanup, { size: chunks * CHUNK, expectedPeers: 2 });
    // Claims every chunk and answers every request with the wrong bytes.
    const fake = await startFakeNeighbour(cleanup, {
      metainfo: owner.metainfo,
      answer: (r) => Buffer.alloc(r.length, 0xa5),
    });
    const label = `127.0.0.1:${fake.port}`;
    const a = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: 0,
      neighbourPort: fake.port,
      // One chunk's blocks in flight: what the fake can spoil is set by the
      // reconnects, not by how much one connection had pipelined before its cut.
      options: { fallbackAfterMs: 1_500, pipelineBlocks: 7 },
    });
    // C downloads from A only: whatever A would announce or serve, C sees.
    const c = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: 0,
      neighbourPort: a.peer.port,
      options: { fallbackAfterMs: 600_000 },
    });
    const [pathA, pathC] = await Promise.all([merged(a.capture), merged(c.capture)]);
    expect((await readFile(pathA)).equals(data)).toBe(true);
    expect((await readFile(pathC)).equals(data)).toBe(true);

    const rejected = a.capture.filter('chunk-rejected');
    expect(rejected.length).toBeGreaterThanOrEqual(MAX_HASH_FAILURES);
    for (const line of rejected) {
      expect(line.fields.from).toBe(label);
      expect(line.fields.reason).toBe('sha1-mismatch');
    }
    // Cut off after MAX_HASH_FAILURES bad chunks; never asked twice for a chunk it spoiled.
    const cut = a.capture.filter('disconnected', { role: 'neighbour', peer: label });
    expect(cut[0]?.fields.reason).toBe(`sent ${MAX_HASH_FAILURES} chunks that failed SHA-1`);
    const rejectedIds = rejected.map((l) => Number(l.fields.chunk));
    expect(new Set(rejectedIds).size).toBe(rejectedIds.length);
    // ...and the fallback did not wait until it had spoiled every missing chunk
    // (reconnects back off and do not restart the fallback clock).
    const batchA = parseRanges(a.capture.filter('batch-received')[0]!.fields.chunks!);
    const missing = chunks - batchA.length;
    expect(rejected.length).toBeLessThan(missing);
    expect(a.capture.filter('fallback')[0]?.fields.reason).not.toBe(
      'neighbour has none of the missing chunks',
    );

    // Nothing came from the fake: the batch came from the owner, the rest by fallback.
    expect(a.capture.filter('chunk-received', { from: label })).toHaveLength(0);
    expect(a.capture.chunks('chunk-received', { via: 'owner' }).sort((x, y) => x - y)).toEqual(
      batchA,
    );
    const fallback = a.capture.chunks('chunk-received', { via: 'fallback' });
    expect([...batchA, ...fallback].sort((x, y) => x - y)).toEqual([...Array(chunks).keys()]);
    for (const id of rejectedIds) expect(fallback).toContain(id);
    expect(a.capture.filter('fallback')).toHaveLength(1);

    // A announced a chunk to C only after storing it verified, and C got only good data from A.
    const labelC = `127.0.0.1:${c.peer.port}`;
    const stored = new Set<number>();
    let announced = 0;
    for (const line of a.capture.lines) {
      const id = Number(line.fields.chunk);
      if (line.event === 'chunk-received') stored.add(id);
      if (line.event === 'have-sent' && line.fields.to === labelC) {
        announced++;
        expect(stored.has(id)).toBe(true);
      }
    }
    expect(announced).toBeGreaterThan(0);
    expect(c.capture.filter('chunk-rejected')).toHaveLength(0);
    expect(c.capture.filter('chunk-received', { via: 'neighbour' }).length).toBeGreaterThan(0);

    // On disk: only verified chunks, and the summary lists exactly them.
    const scan = await scanChunks(a.dir, owner.metainfo);
    expect(scan.bad).toEqual([]);
    expect(scan.good).toEqual([...Array(chunks).keys()]);
    expect((await readSummary(a.dir)).sort((x, y) => x - y)).toEqual(scan.good);
    expect(a.peer.status()).toMatchObject({ complete: true, received: { fromNeighbour: 0 } });
  });
});
