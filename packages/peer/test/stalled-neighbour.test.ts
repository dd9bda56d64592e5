import { readFile } from 'node:fs/promises';
import { CHUNK, Cleanup, merged, startOwner, startPeer, TestPeerServer } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

// Bug pinned here: a neighbour that accepted requests and never answered them
// kept those chunks "in flight" forever; the fallback skipped in-flight chunks,
// so the peer never completed.
describe('a download neighbour that takes requests and never answers', () => {
  it('is cut after fallbackAfterMs without a block, and the owner supplies the rest', async () => {
    const chunks = 16;
    const { owner, data } = await startOwner(cleanup, {
      size: chunks * CHUNK,
      options: { expectedPeers: 2 },
    });
    const fake = await TestPeerServer.listen({
      metainfo: owner.metainfo,
      holds: () => true,
      answer: () => undefined,
    });
    cleanup.add(() => fake.close());
    const label = `127.0.0.1:${fake.port}`;
    const { log } = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: 0,
      neighbourPort: fake.port,
      options: { fallbackAfterMs: 1_500 },
    });
    const path = await merged(log);
    expect((await readFile(path)).equals(data)).toBe(true);
    // It was asked for chunks, gave none, and everything outside the batch came by fallback.
    expect(fake.requests.length).toBeGreaterThan(0);
    expect(log.filter('chunk-received', { from: label })).toHaveLength(0);
    const stalled = log.filter('disconnected', { role: 'neighbour', peer: label });
    expect(stalled[0]?.fields.reason).toMatch(/^no block in \d+ ms$/);
    const owned = log.chunks('chunk-received', { via: 'owner' });
    const fallback = log.chunks('chunk-received', { via: 'fallback' });
    expect([...owned, ...fallback].sort((a, b) => a - b)).toEqual([...Array(chunks).keys()]);
  });
});
