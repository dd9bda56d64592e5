/**
 * Pins a bug: a chunk file that rotted (or was tampered with) while the
 * owner ran was dropped from its store for good, so from then on no peer
 * could ever complete the file. The owner still has the source file and now
 * restores the chunk from it.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Owner } from '../src/index.js';
import { BtClient, type LogCapture, randomFile, startOwner, TempDirs } from './helpers.js';

describe('a chunk file corrupted while the owner runs', () => {
  const temp = new TempDirs();
  const clients: BtClient[] = [];
  let owner: Owner | undefined;

  afterEach(async () => {
    for (const c of clients.splice(0)) c.destroy();
    await owner?.close();
    owner = undefined;
    await temp.cleanup();
  });

  async function setup(): Promise<{ log: LogCapture; data: Buffer; source: string; work: string }> {
    const dir = await temp.make();
    const source = await randomFile(dir, 'data.bin', 500_000);
    const work = join(dir, 'owner');
    let log: LogCapture;
    ({ owner, log } = await startOwner(source.path, work));
    // Corrupt chunk 2 before anyone has read it (so it is not in the cache).
    const path = join(work, 'chunks', '2.chunk');
    const bytes = await readFile(path);
    bytes[0] = bytes[0]! ^ 0x01;
    await writeFile(path, bytes);
    return { log, data: source.data, source: source.path, work };
  }

  async function requestChunk2(o: Owner): Promise<BtClient> {
    const client = await BtClient.connect(o.port, o.metainfo);
    clients.push(client);
    await client.ready();
    await client.interested();
    client.requestChunks([2]);
    return client;
  }

  it('is restored from the source file, and served correctly afterwards', async () => {
    const { log, data, work } = await setup();
    const first = await requestChunk2(owner!);
    // The owner never sends the bad bytes: it closes that connection.
    await first.closedPromise;
    expect(first.hasChunk(2)).toBe(false);
    const line = await log.waitFor('chunk-corrupt', (f) => f.chunk === '2');
    expect(line.fields.restored).toBe('true');
    expect(
      (await readFile(join(work, 'chunks', '2.chunk'))).equals(data.subarray(204_800, 307_200)),
    ).toBe(true);

    const second = await BtClient.connect(owner!.port, owner!.metainfo);
    clients.push(second);
    await second.ready();
    expect(second.remoteBitfield?.isComplete()).toBe(true);
    await second.interested();
    await second.fetchChunks([0, 1, 2, 3, 4]);
    expect(second.file().equals(data)).toBe(true);
  });

  it('stays dropped, and says why, when the source file changed too', async () => {
    const { log, source } = await setup();
    const changed = await readFile(source);
    changed[204_800 + 7] = changed[204_800 + 7]! ^ 0x80;
    await writeFile(source, changed);
    const first = await requestChunk2(owner!);
    await first.closedPromise;
    const line = await log.waitFor('chunk-corrupt', (f) => f.chunk === '2');
    expect(line.fields.restored).toBe('false');
    expect(line.fields.why).toMatch(/source/);

    const second = await BtClient.connect(owner!.port, owner!.metainfo);
    clients.push(second);
    await second.ready();
    expect(second.remoteBitfield?.missing()).toEqual([2]);
  });
});
