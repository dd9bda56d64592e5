import { readFile, rm, writeFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { Cleanup, httpGet, MiB, runBin } from '@swarmdrop/testkit';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildBundle,
  bundleImports,
  isolatedCommand,
  makeOutsideDir,
  prepareHostDir,
  REPO_ROOT,
  type Service,
  serviceDir,
  serviceVersion,
} from '../src/release.js';
import { runScenario } from '../src/scenario.js';
import { ringTopology } from '../src/topology.js';

const SERVICES: readonly Service[] = ['owner', 'peer'];
const DASHBOARD_DIR = join(REPO_ROOT, 'packages', 'service', 'dashboard');
const outside: string[] = [];

afterAll(async () => {
  await Promise.all(outside.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe('single-file bundles on a machine that has only node', () => {
  const bundles = new Map<Service, string>();
  let host: { dir: string; binDir: string; bundles: string[] };

  beforeAll(async () => {
    for (const service of SERVICES) bundles.set(service, await buildBundle(service));
    const dir = await makeOutsideDir('release');
    outside.push(dir);
    host = { dir, ...(await prepareHostDir(dir, [...bundles.values()])) };
  });

  it('each bundle imports nothing but Node built-ins', async () => {
    const builtins = new Set(builtinModules);
    for (const service of SERVICES) {
      const imports = await bundleImports(bundles.get(service)!);
      expect(imports.length, `${service} bundle imports node:net at least`).toBeGreaterThan(0);
      const foreign = imports.filter((s) => !s.startsWith('node:') && !builtins.has(s));
      expect(foreign, `${service} bundle needs only Node`).toEqual([]);
    }
  });

  it('--version and --help answer under `env -i PATH=<node only>` from an empty folder', async () => {
    for (const [i, service] of SERVICES.entries()) {
      const cmd = isolatedCommand(host.bundles[i]!, host.binDir, host.dir);
      const version = await execa(cmd.file, [...cmd.args, '--version'], {
        cwd: cmd.cwd,
        reject: false,
      });
      expect(version.stderr).toBe('');
      expect(version.exitCode).toBe(0);
      expect(version.stdout.trim()).toBe(await serviceVersion(service));
      const help = await execa(cmd.file, [...cmd.args, '--help'], { cwd: cmd.cwd, reject: false });
      expect(help.exitCode).toBe(0);
      expect(help.stdout).toContain(`Usage: swarmdrop-${service}`);
    }
  });

  it('the owner bundle logs JSON through pino and serves /metrics (prom-client), and its last line is `stopping`', async () => {
    const cleanup = new Cleanup();
    try {
      const file = join(host.dir, 'metrics-payload.bin');
      await writeFile(file, Buffer.alloc(300_000, 7));
      const owner = runBin(cleanup, bundles.get('owner')!, [
        '127.0.0.1:0',
        file,
        '--dir',
        join(host.dir, 'metrics-owner'),
        '--log-format',
        'json',
      ]);
      // JSON lines are not text lines: wait on the raw line.
      const ready = await owner.stdout.waitUntil(
        (l) => l.line.includes('"event":"ready"'),
        'a JSON ready line',
      );
      const { port } = JSON.parse(ready.line) as { port: number };
      const metrics = await httpGet(port, '/metrics');
      expect(metrics.status).toBe(200);
      expect(metrics.body.toString()).toMatch(/^swarmdrop_chunks_held 3$/m);
      owner.process.kill('SIGTERM');
      expect(await owner.exited).toBe(0);
      const last = owner.stdout.lines.at(-1)!.line;
      expect(JSON.parse(last)).toMatchObject({ role: 'owner', port, event: 'stopping' });
    } finally {
      await cleanup.run();
    }
  });

  it('an owner and two peers run from the copied bundles and every merged file is byte-identical', async () => {
    const byService = (service: Service) => host.bundles[SERVICES.indexOf(service)]!;
    const commandLines = new Map<string, string>();
    const result = await runScenario(
      {
        name: 'release-bundles',
        topology: ringTopology(2),
        size: 3 * MiB + 12_345,
        // Long enough that p1 waits for p2 even on a loaded machine: both must trade
        // with each other (checkRequiredLogs), not fetch everything from the owner.
        fallbackAfterMs: 20_000,
        launcher: {
          command: (_name, service) => isolatedCommand(byService(service), host.binDir, host.dir),
        },
      },
      async ({ workDir, swarm }) => {
        // Each log starts with the command that ran: proof the lines came from the copies.
        for (const name of ['owner', 'p1', 'p2']) {
          const log = await readFile(join(workDir, 'logs', `${name}.log`), 'utf8');
          commandLines.set(name, log.slice(0, log.indexOf('\n')));
        }
        // The dashboard's files are compiled into the bundles: no package folder beside them.
        const asset = (name: string) => readFile(join(DASHBOARD_DIR, name), 'utf8');
        for (const port of [swarm.ownerPort, swarm.peer('p1').port]) {
          const page = await httpGet(port, '/', { headers: { accept: 'text/html' } });
          expect(page.status).toBe(200);
          expect(page.body.toString()).toContain('<script src="dashboard.js"');
          const js = await httpGet(port, '/dashboard.js');
          expect(js.body.toString()).toBe(await asset('dashboard.js'));
          expect((await httpGet(port, '/dashboard.css')).body.toString()).toBe(
            await asset('dashboard.css'),
          );
        }
      },
    );
    expect(result.problems).toEqual([]);
    expect(result.summary.map((p) => p.sha256Match)).toEqual([true, true]);
    expect(commandLines.get('owner')).toMatch(
      `# /usr/bin/env -i PATH=${host.binDir} ${byService('owner')} `,
    );
    for (const id of ['p1', 'p2'])
      expect(commandLines.get(id)).toMatch(
        `# /usr/bin/env -i PATH=${host.binDir} ${byService('peer')} `,
      );
  });
});

describe('npm packages', () => {
  let packDir: string;
  beforeAll(async () => {
    packDir = await makeOutsideDir('pack');
    outside.push(packDir);
  });

  for (const service of SERVICES) {
    it(`@swarmdrop/${service} packs bin, dist, README and a publishable package.json, and no sources or tests`, async () => {
      const packed = await execa('pnpm', ['pack', '--pack-destination', packDir], {
        cwd: serviceDir(service),
      });
      const tarball = packed.stdout.trim().split('\n').pop()!;
      const list = (await execa('tar', ['tzf', tarball])).stdout.split('\n').filter(Boolean);
      expect(list).toContain(`package/bin/swarmdrop-${service}.js`);
      expect(list).toContain('package/dist/cli.js');
      expect(list).toContain('package/dist/index.d.ts');
      expect(list).toContain('package/README.md');
      expect(list).toContain('package/package.json');
      const stray = list.filter((f) =>
        /^package\/(src|test|bundle|node_modules)\/|\.tsbuildinfo$|vitest\.config|tsconfig/.test(f),
      );
      expect(stray).toEqual([]);
      const manifest = JSON.parse(
        (await execa('tar', ['xzOf', tarball, 'package/package.json'])).stdout,
      );
      expect(manifest.bin).toEqual({ [`swarmdrop-${service}`]: `./bin/swarmdrop-${service}.js` });
      expect(manifest.engines?.node).toMatch(/^>=20/);
      expect(manifest.private).toBeUndefined();
      // pnpm pack must turn the workspace protocol into a version a registry can resolve.
      expect(JSON.stringify(manifest.dependencies)).not.toContain('workspace:');
      expect(manifest.dependencies['@swarmdrop/protocol']).toMatch(/^\d+\.\d+\.\d+/);
      expect(manifest.dependencies['@swarmdrop/service']).toMatch(/^\d+\.\d+\.\d+/);
    });
  }

  it('@swarmdrop/service packs the dashboard page, script and style the services serve', async () => {
    const packed = await execa('pnpm', ['pack', '--pack-destination', packDir], {
      cwd: join(REPO_ROOT, 'packages', 'service'),
    });
    const tarball = packed.stdout.trim().split('\n').pop()!;
    const list = (await execa('tar', ['tzf', tarball])).stdout.split('\n');
    for (const name of ['index.html', 'dashboard.js', 'dashboard.css'])
      expect(list).toContain(`package/dashboard/${name}`);
  });

  it('pnpm release:artifacts puts both bundles, the tarballs and SHA256SUMS in release/', async () => {
    // The collecting step of `pnpm release:artifacts`, after its `turbo run build bundle`.
    for (const service of SERVICES) await buildBundle(service);
    await execa('node', [join(REPO_ROOT, 'scripts', 'release-artifacts.mjs')], { cwd: REPO_ROOT });
    const sums = await readFile(join(REPO_ROOT, 'release', 'SHA256SUMS'), 'utf8');
    const names = sums
      .trim()
      .split('\n')
      .map((l) => l.split(/\s+/)[1]);
    expect(names).toEqual(
      expect.arrayContaining([
        'swarmdrop-owner.mjs',
        'swarmdrop-peer.mjs',
        `swarmdrop-owner-${await serviceVersion('owner')}.tgz`,
        `swarmdrop-peer-${await serviceVersion('peer')}.tgz`,
      ]),
    );
    const check = await execa('sha256sum', ['-c', 'SHA256SUMS'], {
      cwd: join(REPO_ROOT, 'release'),
      reject: false,
    });
    expect(check.exitCode, check.stdout + check.stderr).toBe(0);
  });
});
