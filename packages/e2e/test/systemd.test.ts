import { mkdir, readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseTextLine } from '@swarmdrop/service';
import { freePorts } from '@swarmdrop/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManagedProcess } from '../src/processes.js';
import { buildBundle, makeOutsideDir, type Service } from '../src/release.js';
import { makeRandomFile } from '../src/scenario.js';
import { sha256File } from '../src/swarm.js';
import { expandExecStart, readEnvFile, readUnitService } from '../src/systemd.js';

const UNITS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'deploy', 'systemd');
const SERVICES: readonly Service[] = ['owner', 'peer'];

const event = (name: string) => (line: string) => parseTextLine(line)?.event === name;

describe('example systemd units (deploy/systemd)', () => {
  for (const service of SERVICES) {
    it(`swarmdrop-${service}.service has what a real host needs and its example env file defines exactly what ExecStart uses`, async () => {
      const unit = await readUnitService(join(UNITS, `swarmdrop-${service}.service`));
      expect(unit.get('Restart')).toBe('on-failure');
      expect(unit.get('KillSignal')).toBe('SIGTERM');
      // An unprivileged user: a dynamic one, or a named one that is not root.
      const user = unit.get('User');
      expect(unit.get('DynamicUser') === 'yes' || (user !== undefined && user !== 'root')).toBe(
        true,
      );
      expect(unit.get('WorkingDirectory')).toBe(`/var/lib/${unit.get('StateDirectory')}`);
      expect(unit.get('EnvironmentFile')).toBe(`/etc/swarmdrop/${service}.env`);
      const vars = await readEnvFile(join(UNITS, `swarmdrop-${service}.env`));
      const words = expandExecStart(unit.get('ExecStart')!, vars);
      expect(words.slice(0, 2)).toEqual([
        '/usr/bin/node',
        `/opt/swarmdrop/swarmdrop-${service}.mjs`,
      ]);
      expect(words.slice(words.indexOf('--dir'), words.indexOf('--dir') + 2)).toEqual([
        '--dir',
        unit.get('WorkingDirectory'),
      ]);
      const used = [...unit.get('ExecStart')!.matchAll(/\$\{(\w+)\}/g)].map((m) => m[1]);
      expect([...vars.keys()].sort()).toEqual([...new Set(used)].sort());
    });
  }

  describe('their ExecStart lines run the bundles', () => {
    let root: string;
    const procs: ManagedProcess[] = [];
    const bundles = new Map<Service, string>();
    beforeAll(async () => {
      root = await makeOutsideDir('systemd');
      for (const service of SERVICES) bundles.set(service, await buildBundle(service));
    });
    afterAll(async () => {
      await Promise.all(procs.map((p) => p.stop()));
      if (root) await rm(root, { recursive: true, force: true });
    });

    /** The unit's command line with this machine's paths and the test's addresses. */
    async function commandFor(service: Service, overrides: Record<string, string>) {
      const unit = await readUnitService(join(UNITS, `swarmdrop-${service}.service`));
      const vars = new Map([
        ...(await readEnvFile(join(UNITS, `swarmdrop-${service}.env`))),
        ...Object.entries(overrides),
      ]);
      const stateDir = join(root, service);
      await mkdir(stateDir, { recursive: true });
      const words = expandExecStart(unit.get('ExecStart')!, vars).map((w) =>
        w === '/usr/bin/node'
          ? process.execPath
          : w === `/opt/swarmdrop/swarmdrop-${service}.mjs`
            ? bundles.get(service)!
            : w === unit.get('WorkingDirectory')
              ? stateDir
              : w,
      );
      return { words, stateDir };
    }

    it('owner and peer as the units start them transfer the file, and SIGTERM (KillSignal) stops each with `stopping` and exit 0', async () => {
      const [ownerPort, peerPort, nobody] = await freePorts(3);
      const file = join(root, 'share', 'movie.mkv');
      await makeRandomFile(file, 2 * 102_400 + 5);
      const owner = await commandFor('owner', {
        SWARMDROP_LISTEN: `127.0.0.1:${ownerPort}`,
        SWARMDROP_FILE: file,
        SWARMDROP_PUBLIC_HOST: '127.0.0.1',
      });
      const ownerProc = new ManagedProcess('owner', owner.words[0]!, owner.words.slice(1), {
        cwd: owner.stateDir,
        logPath: join(root, 'owner.log'),
      });
      procs.push(ownerProc);
      const ready = parseTextLine(await ownerProc.waitFor(event('ready'), 'ready', 60_000))!;
      const peer = await commandFor('peer', {
        SWARMDROP_OWNER: ready.fields.url!,
        SWARMDROP_LISTEN: `127.0.0.1:${peerPort}`,
        SWARMDROP_NEIGHBOURS: `127.0.0.1:${nobody}`,
      });
      const peerProc = new ManagedProcess('peer', peer.words[0]!, peer.words.slice(1), {
        cwd: peer.stateDir,
        logPath: join(root, 'peer.log'),
      });
      procs.push(peerProc);
      await peerProc.waitFor(event('merged'), 'merged', 60_000);
      expect(await sha256File(join(peer.stateDir, 'movie.mkv'))).toBe(await sha256File(file));
      for (const proc of [peerProc, ownerProc]) {
        proc.kill('SIGTERM');
        expect(await proc.exited, proc.name).toEqual({ code: 0, signal: undefined });
        expect(proc.lines.some(event('stopping')), `${proc.name} logged stopping`).toBe(true);
      }
      expect(await readFile(join(owner.stateDir, 'summary.txt'), 'utf8')).toBe('0\n1\n2\n');
    });
  });
});
