/**
 * Block size per remote: a swarmdrop remote is asked for whole chunks (a
 * sixth of the per-block work on both ends); anyone else for 16 KiB blocks,
 * the size every stock client accepts (aria2c drops a peer asking for more).
 */
import {
  CHUNK,
  Cleanup,
  merged,
  startOwner,
  startPeer,
  stockPeerId,
  TestPeerServer,
} from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

async function requestLengths(peerId?: Uint8Array): Promise<Set<number>> {
  const { owner, data } = await startOwner(cleanup, {
    size: 4 * CHUNK,
    options: { expectedPeers: 1_000 },
  });
  const neighbour = await TestPeerServer.listen({
    metainfo: owner.metainfo,
    ...(peerId ? { peerId } : {}),
    holds: () => true,
    answer: (r) => data.subarray(r.index * CHUNK + r.begin, r.index * CHUNK + r.begin + r.length),
  });
  cleanup.add(() => neighbour.close());
  const { log } = await startPeer(cleanup, {
    ownerPort: owner.port,
    port: 0,
    neighbourPort: neighbour.port,
  });
  await merged(log);
  expect(neighbour.requests.length).toBeGreaterThan(0);
  return new Set(neighbour.requests.map((r) => r.length));
}

describe('block size per remote', () => {
  it('asks a swarmdrop neighbour for whole chunks', async () => {
    expect(await requestLengths()).toEqual(new Set([CHUNK]));
  });

  it('asks any other client for 16 KiB blocks', async () => {
    // 102400 = 6 x 16384 + 4096: six full blocks and a short last one per chunk.
    expect(await requestLengths(stockPeerId())).toEqual(new Set([16_384, 4_096]));
  });
});
