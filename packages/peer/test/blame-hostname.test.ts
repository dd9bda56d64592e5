import { readFile } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { CHUNK, Cleanup, merged, startFakeNeighbour, startOwner, startPeer } from './helpers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

// Bug pinned here: a chunk that failed SHA-1 was blamed on the connection's
// label (127.0.0.1:PORT) but looked up under the neighbour as written on the
// command line (localhost:PORT), so a neighbour given by host name was asked
// again and again for the very chunks it had spoiled.
describe('a corrupting neighbour given by host name', () => {
  it('is never asked again for a chunk it spoiled', async () => {
    const chunks = 40;
    const { owner, data } = await startOwner(cleanup, { size: chunks * CHUNK, expectedPeers: 2 });
    const fake = await startFakeNeighbour(cleanup, {
      metainfo: owner.metainfo,
      answer: (r) => Buffer.alloc(r.length, 0x11),
    });
    // Half the file comes from the owner; the fake is asked for the rest, spoils
    // three chunks, is cut, and is reconnected (after ~0.5 s) well before the fallback.
    const { capture } = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: 0,
      neighbourPort: fake.port,
      options: {
        neighbour: { host: 'localhost', port: fake.port },
        fallbackAfterMs: 3_000,
        // One chunk in flight at a time, so the first connection cannot spoil them all.
        pipelineBlocks: 7,
      },
    });
    // Wait until the fake has been cut off at least twice (so it was reconnected once).
    await capture.waitFor('disconnected', { role: 'neighbour' }, 2);
    const rejected = capture.chunks('chunk-rejected');
    expect(rejected.length).toBeGreaterThan(0);
    expect(new Set(rejected).size).toBe(rejected.length);
    expect((await readFile(await merged(capture))).equals(data)).toBe(true);
  });
});
