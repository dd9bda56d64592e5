import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Cleanup, IN_CI, MiB } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createShapedLab,
  DEFAULT_UPLOAD_BITS_PER_SECOND,
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

  it.skipIf(skip)(
    "the seed's ring of five, owner and each peer on its own host with a 40 Mbit/s upload: every peer's merged file is byte-identical to the source",
    async () => {
      const work = await cleanup.tempDir('swarmdrop-shaped-');
      const resources = new Resources();
      const labIds: string[] = [];
      // Runs before the temp dir goes (reverse order): processes by PID, then the namespaces.
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
      const workDir = join(work, 'ring');
      await mkdir(workDir);
      const result = await ringJob({
        lab,
        peers: 5,
        file,
        sha256,
        workDir,
        uploadBitsPerSecond: DEFAULT_UPLOAD_BITS_PER_SECOND,
        timeoutMs: 120_000,
        resources,
      });
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
      const bins = { owner: await buildBundle('owner'), peer: await buildBundle('peer') };
      const lab = await createShapedLab(5, DEFAULT_UPLOAD_BITS_PER_SECOND, resources);
      labIds.push(lab.id);
      const workDir = join(work, 'swarm');
      await mkdir(workDir);
      const result = await swarmJob({
        lab,
        peers: 5,
        file,
        sha256,
        workDir,
        uploadBitsPerSecond: DEFAULT_UPLOAD_BITS_PER_SECOND,
        timeoutMs: 120_000,
        resources,
        bins,
      });
      expect(result.identical).toEqual([true, true, true, true, true]);
      const fromPeers = (result.links ?? []).filter((l) => l.from !== 'owner' && l.chunks > 0);
      expect(fromPeers.length, 'links between swarm peers that carried chunks').toBeGreaterThan(0);
    },
    300_000,
  );
});
