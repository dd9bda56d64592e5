import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Cleanup, IN_CI, MiB } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createShapedLab,
  DEFAULT_UPLOAD_BITS_PER_SECOND,
  type JobOptions,
  type JobResult,
  Resources,
  ringJob,
  swarmJob,
} from '../src/net-jobs.js';
import { namespacesNamed, shapedLabUnavailableReason } from '../src/netns.js';
import { buildBundle } from '../src/release.js';
import { makeRandomFile } from '../src/scenario.js';
import { sha256File } from '../src/swarm.js';

// In CI (root) this must run: a lab that cannot be built there fails the test.
const unavailable = shapedLabUnavailableReason();
const skip = unavailable !== undefined && !IN_CI;

// The jobs of `pnpm bench:net`, run small: completion and identical files
// only. How long they take is the benchmark's business, never a test's.
describe(`bench:net's jobs on shaped hosts (namespaces, tc tbf uploads)${skip ? ` — skipped: ${unavailable}` : ''}`, () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  /**
   * One job of five peers in a fresh lab, on a 2 MiB file; the lab's
   * processes (by PID) and namespaces are checked gone before the temp dir
   * goes (cleanup runs in reverse order).
   */
  async function runJob(
    name: 'ring' | 'swarm',
    job: (options: JobOptions) => Promise<JobResult>,
    more: Partial<JobOptions> = {},
  ): Promise<JobResult> {
    const work = await cleanup.tempDir('swarmdrop-shaped-');
    const resources = new Resources();
    const labIds: string[] = [];
    cleanup.add(async () => {
      expect(await resources.closeAll()).toEqual([]);
      for (const id of labIds)
        expect(await namespacesNamed(id), 'namespaces left behind').toEqual([]);
    });
    const file = join(work, 'sample.bin');
    await makeRandomFile(file, 2 * MiB + 777);
    const sha256 = await sha256File(file);
    const lab = await createShapedLab(5, DEFAULT_UPLOAD_BITS_PER_SECOND, resources);
    labIds.push(lab.id);
    const workDir = join(work, name);
    await mkdir(workDir);
    return job({
      lab,
      peers: 5,
      file,
      sha256,
      workDir,
      uploadBitsPerSecond: DEFAULT_UPLOAD_BITS_PER_SECOND,
      timeoutMs: 120_000,
      resources,
      ...more,
    });
  }

  it.skipIf(skip)(
    "the seed's ring of five, owner and each peer on its own host with a 40 Mbit/s upload: every peer's merged file is byte-identical to the source",
    async () => {
      const result = await runJob('ring', ringJob);
      expect(result.identical).toEqual([true, true, true, true, true]);
      // Every peer took chunks from its ring neighbour over the shaped LAN, not only from the owner.
      const fromNeighbour = new Set(
        (result.links ?? []).filter((l) => l.from !== 'owner' && l.chunks > 0).map((l) => l.to),
      );
      expect([...fromNeighbour].sort()).toEqual(['p1', 'p2', 'p3', 'p4', 'p5']);
    },
    300_000,
  );

  it.skipIf(skip)(
    'swarm mode, five peers from the release bundles, as bench:net runs them: every merged file is byte-identical and the peers traded among themselves',
    async () => {
      const bins = { owner: await buildBundle('owner'), peer: await buildBundle('peer') };
      const result = await runJob('swarm', swarmJob, { bins });
      expect(result.identical).toEqual([true, true, true, true, true]);
      const fromPeers = (result.links ?? []).filter((l) => l.from !== 'owner' && l.chunks > 0);
      expect(fromPeers.length, 'links between swarm peers that carried chunks').toBeGreaterThan(0);
    },
    300_000,
  );
});
