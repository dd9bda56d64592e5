/**
 * Block size per remote: a swarmdrop remote is asked for whole chunks (a
 * sixth of the per-block work on both ends); anyone else for 16 KiB blocks,
 * the size every stock client accepts (aria2c drops a peer asking for more).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { CHUNK, Cleanup, merged, startFakeNeighbour, startOwner, startPeer } from './helpers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

async function requestLengths(peerId?: Uint8Array): Promise<Set<number>> {
  const { owner, data } = await startOwner(cleanup, { size: 4 * CHUNK, expectedPeers: 1_000 });
  const fake = await startFakeNeighbour(cleanup, {
    metainfo: owner.metainfo,
    ...(peerId ? { peerId } : {}),
    answer: (r) => data.subarray(r.index * CHUNK + r.begin, r.index * CHUNK + r.begin + r.length),
  });
  const { capture } = await startPeer(cleanup, {
    ownerPort: owner.port,
    port: 0,
    neighbourPort: fake.port,
  });
  await merged(capture);
  expect(fake.requests.length).toBeGreaterThan(0);
  return new Set(fake.requests.map((r) => r.length));
}

describe('block size per remote', () => {
  it('asks a swarmdrop neighbour for whole chunks', async () => {
    expect(await requestLengths()).toEqual(new Set([CHUNK]));
  });

  it('asks any other client for 16 KiB blocks', async () => {
    const stock = Buffer.from('-TR3000-abcdefghijkl', 'latin1');
    // 102400 = 6 x 16384 + 4096: six full blocks and a short last one per chunk.
    expect(await requestLengths(stock)).toEqual(new Set([16_384, 4_096]));
  });
});
