/**
 * Memory is budgeted in bytes: with the largest --chunk-size an owner and its
 * peers stay within a generous bound. Before, caches, the merge read-ahead and
 * the queues were counted in chunks (32, 8, 16, 64 of them), so memory grew
 * with the chunk size: 64 MiB chunks of a 1 GiB file left the owner at
 * 1.08 GiB of RSS and took a peer to 727 MB.
 */

import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { MiB } from '@swarmdrop/testkit';
import { describe, expect, it } from 'vitest';
import { readProcStats } from '../src/proc-stats.js';
import { ARTIFACTS_DIR, makeRandomFile } from '../src/scenario.js';
import { Swarm, sha256File } from '../src/swarm.js';

/** The largest --chunk-size (CHUNK_BYTES). */
const CHUNK_BYTES = 16 * 1024 * 1024;
/**
 * Node's own footprint (~60 MiB) plus the few largest chunks the budgets
 * allow, with room: measured 170/192/209 MiB (owner/p1/p2) with byte budgets,
 * 332/392/421 MiB with the old chunk-count budgets.
 */
const RSS_BOUND_BYTES = 300 * MiB;

describe('memory with the largest chunk size', () => {
  it(`owner and two peers stay under ${RSS_BOUND_BYTES / MiB} MiB of peak RSS moving 16 chunks of ${CHUNK_BYTES / MiB} MiB`, async () => {
    const workDir = join(ARTIFACTS_DIR, `memory-${Date.now()}`);
    const file = join(workDir, 'source', 'big.bin');
    await makeRandomFile(file, 16 * CHUNK_BYTES);
    const sha256 = await sha256File(file);
    const swarm = await Swarm.start({
      topology: {
        description: 'two peers in a ring',
        peers: [
          { id: 'p1', neighbours: ['p2'], client: 'swarmdrop' },
          { id: 'p2', neighbours: ['p1'], client: 'swarmdrop' },
        ],
        start: ['p1', 'p2'],
      },
      file,
      workDir,
      extraOwnerArgs: ['--chunk-size', String(CHUNK_BYTES)],
    });
    let ok = false;
    try {
      await swarm.waitAllComplete(sha256, 240_000);
      for (const id of ['p1', 'p2']) expect(await sha256File(swarm.mergedPath(id))).toBe(sha256);
      const peaks: Record<string, number> = {};
      for (const name of ['owner', 'p1', 'p2']) {
        const stats = await readProcStats(swarm.processes.get(name)!.pid!);
        peaks[name] = Math.round((stats?.peakRssBytes ?? Number.NaN) / MiB);
      }
      for (const [name, peak] of Object.entries(peaks)) {
        expect(peak, `${name} peak RSS MiB (all: ${JSON.stringify(peaks)})`).toBeLessThan(
          RSS_BOUND_BYTES / MiB,
        );
      }
      ok = true;
    } finally {
      await swarm.stopAll();
      if (ok) await rm(workDir, { recursive: true, force: true });
    }
  });
});
