import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CHUNK,
  Cleanup,
  freePorts,
  MiB,
  PEER_BIN,
  runBin,
  scanChunks,
  startGatedProxy,
  startOwner,
} from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

describe('restart after kill -9', () => {
  it('resumes from the chunk files that verify and never fetches one of them again', async () => {
    const chunks = 205; // 20 MiB
    const { owner, data } = await startOwner(cleanup, {
      size: chunks * CHUNK,
      options: { expectedPeers: 4 },
    });
    const [port, nobody] = await freePorts(2);
    const dir = await cleanup.tempDir();
    const common = [
      '--dir',
      dir,
      '--fallback-after-ms',
      '500',
      '--exit-when-done',
      '--linger-ms',
      '0',
    ];

    // First run: the owner is reached through a proxy that lets only 3 MiB
    // back, so the run cannot finish; kill -9 it once it has stored chunks.
    const proxy = await startGatedProxy(cleanup, owner.port, 3 * MiB);
    const first = runBin(cleanup, PEER_BIN, [
      String(proxy),
      String(port),
      String(nobody),
      ...common,
    ]);
    await first.stdout.waitFor('chunk-received', undefined, { count: 10 });
    first.process.kill('SIGKILL');
    expect(await first.exited).toBe('SIGKILL');
    expect(first.stdout.filter('merged')).toHaveLength(0);

    // What survived: the chunk files that verify (a chunk being written may be a temp file).
    const before = await scanChunks(dir, owner.metainfo);
    expect(before.good.length).toBeGreaterThanOrEqual(10);
    expect(before.good.length).toBeLessThan(chunks);

    // Second run, straight to the owner, same --dir.
    const second = runBin(cleanup, PEER_BIN, [
      String(owner.port),
      String(port),
      String(nobody),
      ...common,
    ]);
    expect(await second.exited).toBe(0);
    expect(second.stderr).toBe('');
    const resumed = second.stdout.filter('resumed');
    expect(resumed).toHaveLength(1);
    expect(Number(resumed[0]!.fields.verified)).toBe(before.good.length);
    expect(resumed[0]!.fields.dir).toBe(dir);

    // No verified chunk was requested or received again; everything else was, once.
    const requested = second.stdout.chunks('request-sent');
    const held = new Set(before.good);
    expect(requested.filter((id) => held.has(id))).toEqual([]);
    const received = second.stdout.chunks('chunk-received');
    expect(new Set(received).size).toBe(received.length);
    expect([...before.good, ...received].sort((a, b) => a - b)).toEqual([...Array(chunks).keys()]);

    const path = second.stdout.filter('merged')[0]!.fields.path!;
    expect(path).toBe(join(dir, 'payload.bin'));
    expect((await readFile(path)).equals(data)).toBe(true);
    expect(second.stdout.filter('done')).toHaveLength(1);
    const after = await scanChunks(dir, owner.metainfo);
    expect(after.bad).toEqual([]);
    expect(after.good).toEqual([...Array(chunks).keys()]);
  });
});
