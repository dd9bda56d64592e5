/**
 * Pins a bug: a chunk file that rotted (or was tampered with) while the
 * owner ran was dropped from its store for good, so from then on no peer
 * could ever complete the file. The owner still has the source file and now
 * restores the chunk from it.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Cleanup, startOwner, type TestOwner, TestPeer } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';

describe('a chunk file corrupted while the owner runs', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function setup(): Promise<TestOwner> {
    const started = await startOwner(cleanup, { size: 500_000, name: 'data.bin' });
    // Corrupt chunk 2 before anyone has read it (so it is not in the cache).
    const path = join(started.dir, 'chunks', '2.chunk');
    const bytes = await readFile(path);
    bytes[0] = bytes[0]! ^ 0x01;
    await writeFile(path, bytes);
    return started;
  }

  async function connectPeer(o: TestOwner): Promise<TestPeer> {
    const client = await TestPeer.connect(o.port, { metainfo: o.metainfo });
    cleanup.add(() => client.destroy());
    return client;
  }

  async function requestChunk2(o: TestOwner): Promise<TestPeer> {
    const client = await connectPeer(o);
    await client.ready();
    await client.interested();
    client.requestChunks([2]);
    return client;
  }

  it('is restored from the source file, and served correctly afterwards', async () => {
    const o = await setup();
    const { log, data } = o;
    const first = await requestChunk2(o);
    // The owner never sends the bad bytes: it closes that connection.
    await first.closedPromise;
    expect(first.hasChunk(2)).toBe(false);
    const line = await log.waitFor('chunk-corrupt', { chunk: '2' });
    expect(line.fields.restored).toBe('true');
    expect(
      (await readFile(join(o.dir, 'chunks', '2.chunk'))).equals(data.subarray(204_800, 307_200)),
    ).toBe(true);

    const second = await connectPeer(o);
    await second.ready();
    expect(second.remoteBitfield?.isComplete()).toBe(true);
    await second.interested();
    await second.fetchChunks([0, 1, 2, 3, 4]);
    expect(second.file().equals(data)).toBe(true);
  });

  it('stays dropped, and says why, when the source file changed too', async () => {
    const o = await setup();
    const { log } = o;
    const changed = await readFile(o.file);
    changed[204_800 + 7] = changed[204_800 + 7]! ^ 0x80;
    await writeFile(o.file, changed);
    const first = await requestChunk2(o);
    await first.closedPromise;
    const line = await log.waitFor('chunk-corrupt', { chunk: '2' });
    expect(line.fields.restored).toBe('false');
    expect(line.fields.why).toMatch(/source/);

    const second = await connectPeer(o);
    await second.ready();
    expect(second.remoteBitfield?.missing()).toEqual([2]);
  });
});
