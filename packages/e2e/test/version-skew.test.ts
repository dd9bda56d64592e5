import { readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MiB } from '@swarmdrop/testkit';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildBundle,
  isolatedCommand,
  makeOutsideDir,
  prepareHostDir,
  type Service,
  serviceVersion,
} from '../src/release.js';
import { runScenario } from '../src/scenario.js';
import type { Launcher } from '../src/swarm.js';
import { ringTopology } from '../src/topology.js';

/** The previous release, kept byte for byte (see its README.md). */
const PREVIOUS = '0.1.0';
const FIXTURE = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  'fixtures',
  'releases',
  PREVIOUS,
);

type Release = 'previous' | 'current';

describe(`version skew: the ${PREVIOUS} release against the current services`, () => {
  let outside: string;
  /** bundles[release][service]: a copy outside the workspace, and its node-only bin dir. */
  const bundles = new Map<string, string>();
  let binDir: string;

  beforeAll(async () => {
    outside = await makeOutsideDir('skew');
    const current = [await buildBundle('owner'), await buildBundle('peer')];
    const previous = [join(FIXTURE, 'swarmdrop-owner.mjs'), join(FIXTURE, 'swarmdrop-peer.mjs')];
    const cur = await prepareHostDir(join(outside, 'current'), current);
    const prev = await prepareHostDir(join(outside, 'previous'), previous);
    binDir = cur.binDir;
    bundles.set('current/owner', cur.bundles[0]!);
    bundles.set('current/peer', cur.bundles[1]!);
    bundles.set('previous/owner', prev.bundles[0]!);
    bundles.set('previous/peer', prev.bundles[1]!);
  });

  afterAll(async () => {
    if (outside) await rm(outside, { recursive: true, force: true });
  });

  const version = async (release: Release, service: Service) => {
    const cmd = isolatedCommand(bundles.get(`${release}/${service}`)!, binDir, outside);
    return (await execa(cmd.file, [...cmd.args, '--version'], { cwd: cmd.cwd })).stdout.trim();
  };

  it('the fixtures are intact and the two releases really differ in version', async () => {
    const sums = await execa('sha256sum', ['-c', 'SHA256SUMS'], { cwd: FIXTURE, reject: false });
    expect(sums.exitCode, sums.stdout + sums.stderr).toBe(0);
    for (const service of ['owner', 'peer'] as const) {
      expect(await version('previous', service)).toBe(PREVIOUS);
      const current = await version('current', service);
      expect(current).toBe(await serviceVersion(service));
      expect(current, `${service}: bump its version (changeset) so the skew is real`).not.toBe(
        PREVIOUS,
      );
    }
  });

  const cases: Array<{ title: string; owner: Release; peer: (id: string) => Release }> = [
    { title: 'previous owner, current peers', owner: 'previous', peer: () => 'current' },
    { title: 'current owner, previous peers', owner: 'current', peer: () => 'previous' },
    {
      title: 'current owner, a ring alternating previous and current peers',
      owner: 'current',
      peer: (id) => (Number(id.slice(1)) % 2 === 0 ? 'previous' : 'current'),
    },
  ];
  for (const { title, owner, peer } of cases) {
    it(`${title}: every merged file is byte-identical and the logs agree`, async () => {
      const releaseOf = (name: string): Release => (name === 'owner' ? owner : peer(name));
      const launcher: Launcher = {
        command: (name, service) =>
          isolatedCommand(bundles.get(`${releaseOf(name)}/${service}`)!, binDir, outside),
      };
      const started = new Map<string, string>();
      const result = await runScenario(
        {
          name: `skew-${owner}-owner`,
          topology: ringTopology(5),
          launcher,
          size: 3 * MiB + 4321,
          fallbackAfterMs: 20_000,
        },
        async ({ workDir }) => {
          for (const name of ['owner', 'p1', 'p2', 'p3', 'p4', 'p5']) {
            const log = await readFile(join(workDir, 'logs', `${name}.log`), 'utf8');
            started.set(name, log.slice(0, log.indexOf('\n')));
          }
        },
      );
      expect(result.problems).toEqual([]);
      expect(result.summary.map((p) => p.sha256Match)).toEqual([true, true, true, true, true]);
      // Each process ran the bundle of the release this case names.
      for (const [name, line] of started) {
        const service = name === 'owner' ? 'owner' : 'peer';
        expect(line, name).toContain(` ${bundles.get(`${releaseOf(name)}/${service}`)!} `);
      }
    });
  }
});
