import { get } from 'node:http';
import { MiB } from '@swarmdrop/testkit';
import { describe, expect, it } from 'vitest';
import { CHUNK_SIZE, runScenario } from '../src/scenario.js';
import { topology } from './helpers.js';

// The seed's procedure through the real bins: an owner, then five peers one at a time.
describe('topology matrix', () => {
  it('ring of five started in order, a file of at least 20 MiB that is not a multiple of the chunk size', async () => {
    const result = await runScenario({
      name: 'ring',
      topology: await topology('ring'),
      size: 20 * MiB + 12_345,
    });
    expect(result.problems).toEqual([]);
    for (const peer of result.summary) {
      expect(peer.fromOwner, `${peer.id} got its batch from the owner`).toBeGreaterThan(0);
      expect(peer.fromNeighbours, `${peer.id} got the rest from its neighbour`).toBeGreaterThan(0);
      expect(peer.fromOwner + peer.fromNeighbours + peer.fromFallback).toBe(result.chunkCount);
    }
  });

  it('the same ring started in reverse order, a file of exactly 5 chunks', async () => {
    const result = await runScenario({
      name: 'ring-reversed',
      topology: await topology('ring-reversed'),
      size: 5 * CHUNK_SIZE,
    });
    expect(result.problems).toEqual([]);
    expect(result.chunkCount).toBe(5);
    // Five peers, five chunks: each batch is one chunk and the rest come from neighbours.
    for (const peer of result.summary) expect(peer.fromOwner).toBe(1);
  });

  it('a ring with a chord (p1 downloads from p2 and p3)', async () => {
    // p3 starts before p1 and p2 after it: while p2 is not up, p1 can have
    // p3's batch only over the chord, whatever the machine's speed.
    const chord = { ...(await topology('ring-chord')), start: ['p3', 'p1', 'p2', 'p4', 'p5'] };
    const result = await runScenario({
      name: 'ring-chord',
      topology: chord,
      size: 3 * MiB + 777,
    });
    expect(result.problems).toEqual([]);
    const p1 = result.swarm
      .events('p1')
      .filter((e) => e.event === 'chunk-received' && e.fields.via === 'neighbour');
    const p3port = result.swarm.peer('p3').port;
    expect(
      p1.some((e) => e.fields.from?.endsWith(`:${p3port}`)),
      'p1 received over the chord',
    ).toBe(true);
  });

  it('two cycles that cannot reach each other complete through the owner fallback', async () => {
    const result = await runScenario({
      name: 'split',
      topology: await topology('split'),
      size: 2 * MiB,
      fallbackAfterMs: 1_500,
    });
    expect(result.problems).toEqual([]);
    // Each cycle lacks the other's batches, so someone in each must have gone to the owner
    // (the rest may then get those chunks from that peer).
    for (const cycle of [
      ['p1', 'p2'],
      ['p3', 'p4', 'p5'],
    ]) {
      const fallbacks = cycle.flatMap((id) =>
        result.swarm.events(id).filter((e) => e.event === 'fallback'),
      );
      expect(fallbacks.length, `a fallback in cycle ${cycle.join(',')}`).toBeGreaterThan(0);
    }
  });

  it('a private swarm: five peers with a token (SWARMDROP_TOKEN) in a ring; strangers get nothing', async () => {
    const token = 'e2e-private-swarm-token-0123456789';
    let strangerStatus = 0;
    const result = await runScenario({
      name: 'private-ring',
      topology: await topology('ring'),
      size: 3 * MiB + 4_321,
      env: { SWARMDROP_TOKEN: token },
      during: async (swarm) => {
        strangerStatus = await new Promise<number>((resolve, reject) => {
          get(`http://127.0.0.1:${swarm.ownerPort}/metainfo.torrent`, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          }).on('error', reject);
        });
      },
    });
    expect(result.problems).toEqual([]);
    expect(strangerStatus).toBe(401);
    const ready = result.swarm.events('owner').find((e) => e.event === 'ready')!;
    expect(ready.fields.private).toBe('true');
    const pinned = ready.fields.link!.split('/').pop();
    for (const peer of result.summary) {
      const meta = result.swarm.events(peer.id).find((e) => e.event === 'metainfo')!;
      expect(meta.fields.infohash, `${peer.id} has the private torrent`).toBe(pinned);
      expect(peer.fromOwner + peer.fromNeighbours + peer.fromFallback).toBe(result.chunkCount);
    }
    expect(
      result.swarm.events('owner').filter((e) => e.event === 'connection-refused'),
      'no swarm member was refused',
    ).toEqual([]);
  });
});
