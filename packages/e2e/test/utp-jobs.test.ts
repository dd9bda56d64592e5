import { join } from 'node:path';
import { Cleanup, IN_CI, MiB } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_UPLOAD_BITS_PER_SECOND, Resources } from '../src/net-jobs.js';
import { namespacesNamed, shapedLabUnavailableReason } from '../src/netns.js';
import { makeRandomFile } from '../src/scenario.js';
import { sha256File } from '../src/swarm.js';
import { utpVsTcpJob, utpYieldJob } from '../src/utp-jobs.js';

// In CI (root) this must run: a lab that cannot be built there fails the test.
const unavailable = shapedLabUnavailableReason();
const skip = unavailable !== undefined && !IN_CI;

// bench:net's µTP jobs, run small: they complete over the transport they
// name, every copy is identical, and nothing is left behind. Their rates and
// shares are the benchmark's business, never a test's.
describe(`bench:net's µTP jobs on one shaped link${skip ? ` — skipped: ${unavailable}` : ''}`, () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it.skipIf(skip)(
    'utp-vs-tcp and utp-yield: owner to one peer over TCP and over µTP, then µTP beside a bulk TCP flow; identical files, the labs removed',
    async () => {
      const work = await cleanup.tempDir('swarmdrop-utp-jobs-');
      const resources = new Resources();
      const labIds: string[] = [];
      cleanup.add(async () => {
        expect(await resources.closeAll()).toEqual([]);
        for (const id of labIds)
          expect(await namespacesNamed(id), 'namespaces left behind').toEqual([]);
      });
      const file = join(work, 'sample.bin');
      await makeRandomFile(file, 2 * MiB + 555);
      const options = {
        workDir: work,
        file,
        sha256: await sha256File(file),
        rateBitsPerSecond: DEFAULT_UPLOAD_BITS_PER_SECOND,
        latencyMs: 300,
        place: 'download' as const,
        tcpCongestionControl: 'cubic',
        resources,
        timeoutMs: 120_000,
        soloSeconds: 0.2,
        tcpSeconds: 1,
      };
      // Each job throws if a transfer ran over another transport than it names.
      const vs = await utpVsTcpJob(options);
      labIds.push(vs.labId);
      expect([vs.tcp.identical, vs.utp.identical]).toEqual([true, true]);
      expect(vs.tcp.mbitPerSecond).toBeGreaterThan(0);
      expect(vs.utp.mbitPerSecond).toBeGreaterThan(0);
      const shared = await utpYieldJob(options);
      labIds.push(shared.labId);
      expect(shared.identical).toBe(true);
      // The bulk TCP flow crossed the link to h1 and was counted there.
      expect(shared.tcpBytesTotal).toBeGreaterThan(0);
    },
    300_000,
  );
});
