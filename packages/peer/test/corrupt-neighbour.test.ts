import { readFile } from 'node:fs/promises';
import { parseRanges } from '@swarmdrop/service';
import {
  CHUNK,
  Cleanup,
  merged,
  readSummary,
  scanChunks,
  startOwner,
  startPeer,
  type TestPeerScript,
  TestPeerServer,
} from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_HASH_FAILURES } from '../src/index.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** A download neighbour that claims every chunk and answers as `answer` says. */
async function neighbourServer(
  metainfo: TestPeerScript['metainfo'],
  answer: NonNullable<TestPeerScript['answer']>,
): Promise<TestPeerServer> {
  const server = await TestPeerServer.listen({ metainfo, holds: () => true, answer });
  cleanup.add(() => server.close());
  return server;
}

describe('a download neighbour that sends bad chunks', () => {
  // Bug pinned here: a neighbour cut off for bad chunks was reconnected every
  // ~250 ms, spoiled one more chunk each time, and every reconnect restarted the
  // fallback clock, so the fallback waited until it had spoiled every missing chunk.
  it('has its chunks rejected, is cut off, and the peer still completes from the owner', async () => {
    const chunks = 60;
    const { owner, data } = await startOwner(cleanup, {
      size: chunks * CHUNK,
      options: { expectedPeers: 2 },
    });
    // Claims every chunk and answers every request with the wrong bytes.
    const fake = await neighbourServer(owner.metainfo, (r) => Buffer.alloc(r.length, 0xa5));
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
    const [pathA, pathC] = await Promise.all([merged(a.log), merged(c.log)]);
    expect((await readFile(pathA)).equals(data)).toBe(true);
    expect((await readFile(pathC)).equals(data)).toBe(true);

    const rejected = a.log.filter('chunk-rejected');
    expect(rejected.length).toBeGreaterThanOrEqual(MAX_HASH_FAILURES);
    for (const line of rejected) {
      expect(line.fields.from).toBe(label);
      expect(line.fields.reason).toBe('sha1-mismatch');
    }
    // Cut off after MAX_HASH_FAILURES bad chunks; never asked twice for a chunk it spoiled.
    const cut = a.log.filter('disconnected', { role: 'neighbour', peer: label });
    expect(cut[0]?.fields.reason).toBe(`sent ${MAX_HASH_FAILURES} chunks that failed SHA-1`);
    const rejectedIds = rejected.map((l) => Number(l.fields.chunk));
    expect(new Set(rejectedIds).size).toBe(rejectedIds.length);
    // ...and the fallback did not wait until it had spoiled every missing chunk
    // (reconnects back off and do not restart the fallback clock; the exact
    // timing is pinned in fallback-policy.test.ts).
    const batchA = parseRanges(a.log.filter('batch-received')[0]!.fields.chunks!);
    const missing = chunks - batchA.length;
    expect(rejected.length).toBeLessThan(missing);
    expect(a.log.filter('fallback')[0]?.fields.reason).not.toBe(
      'neighbour has none of the missing chunks',
    );

    // Nothing came from the fake: the batch came from the owner, the rest by fallback.
    expect(a.log.filter('chunk-received', { from: label })).toHaveLength(0);
    expect(a.log.chunks('chunk-received', { via: 'owner' }).sort((x, y) => x - y)).toEqual(batchA);
    const fallback = a.log.chunks('chunk-received', { via: 'fallback' });
    expect([...batchA, ...fallback].sort((x, y) => x - y)).toEqual([...Array(chunks).keys()]);
    for (const id of rejectedIds) expect(fallback).toContain(id);
    // Each fallback chunk was named by a `fallback` line. (Usually one line; a
    // second comes when a chunk was in flight at the fake as the first began.)
    const named = a.log.filter('fallback').flatMap((l) => parseRanges(l.fields.chunks!));
    for (const id of fallback) expect(named).toContain(id);

    // A announced a chunk to C only after storing it verified, and C got only good data from A.
    const labelC = `127.0.0.1:${c.peer.port}`;
    const stored = new Set<number>();
    let announced = 0;
    for (const line of a.log.lines) {
      const id = Number(line.fields.chunk);
      if (line.event === 'chunk-received') stored.add(id);
      if (line.event === 'have-sent' && line.fields.to === labelC) {
        announced++;
        expect(stored.has(id)).toBe(true);
      }
    }
    expect(announced).toBeGreaterThan(0);
    expect(c.log.filter('chunk-rejected')).toHaveLength(0);
    expect(c.log.filter('chunk-received', { via: 'neighbour' }).length).toBeGreaterThan(0);

    // On disk: only verified chunks, and the summary lists exactly them.
    const scan = await scanChunks(a.dir, owner.metainfo);
    expect(scan.bad).toEqual([]);
    expect(scan.good).toEqual([...Array(chunks).keys()]);
    expect((await readSummary(a.dir)).sort((x, y) => x - y)).toEqual(scan.good);
    expect(a.peer.status()).toMatchObject({ complete: true, received: { fromNeighbour: 0 } });
  });

  // Bug pinned here: a chunk that failed SHA-1 was blamed on the connection's
  // label (127.0.0.1:PORT) but looked up under the neighbour as written on the
  // command line (localhost:PORT), so a neighbour given by host name was asked
  // again and again for the very chunks it had spoiled.
  it('given by host name, is never asked again for a chunk it spoiled', async () => {
    const { owner } = await startOwner(cleanup, {
      size: 40 * CHUNK,
      options: { expectedPeers: 2 },
    });
    const fake = await neighbourServer(owner.metainfo, (r) => Buffer.alloc(r.length, 0x11));
    const { log } = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: 0,
      neighbourPort: fake.port,
      options: {
        neighbour: { host: 'localhost', port: fake.port },
        // Out of reach: only the fake is ever asked for the missing half.
        fallbackAfterMs: 600_000,
        // One chunk in flight at a time, so the first connection cannot spoil them all.
        pipelineBlocks: 7,
      },
    });
    // Cut off for bad chunks, reconnected, and cut off again.
    await log.waitFor('disconnected', { role: 'neighbour' }, { count: 2 });
    const rejected = log.chunks('chunk-rejected');
    expect(rejected.length).toBeGreaterThan(MAX_HASH_FAILURES);
    expect(new Set(rejected).size).toBe(rejected.length);
    // What it was asked for after its first cut: none of what it had spoiled before.
    const [firstCut] = log.filter('disconnected', { role: 'neighbour' });
    const firstSpoiled = log.lines
      .slice(0, log.lines.indexOf(firstCut!))
      .filter((l) => l.event === 'chunk-rejected')
      .map((l) => Number(l.fields.chunk));
    const askedLater = log.lines
      .slice(log.lines.indexOf(firstCut!))
      .filter((l) => l.event === 'request-sent')
      .map((l) => Number(l.fields.chunk));
    expect(askedLater.length).toBeGreaterThan(0);
    expect(askedLater.filter((i) => firstSpoiled.includes(i))).toEqual([]);
  });

  // Bug pinned here: a block of the wrong length for a requested offset was
  // ignored and left pending, so that chunk never completed.
  it('that answers a request with a block of the wrong length is cut off', async () => {
    const { owner } = await startOwner(cleanup, {
      size: 6 * CHUNK,
      options: { expectedPeers: 50 },
    });
    const fake = await neighbourServer(owner.metainfo, (r) => Buffer.alloc(r.length - 1));
    const { log } = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: 0,
      neighbourPort: fake.port,
    });
    const line = await log.waitFor('protocol-error');
    expect(line.fields.reason).toMatch(/bytes for a block of/);
    expect(line.fields.peer).toBe(`127.0.0.1:${fake.port}`);
  });
});
