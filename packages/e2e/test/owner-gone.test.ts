import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { formatMagnet } from '@swarmdrop/protocol';
import { parseTextLine } from '@swarmdrop/service';
import { Cleanup, freePort, MiB } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { binPath, ManagedProcess } from '../src/processes.js';
import { makeRandomFile } from '../src/scenario.js';
import { sha256File } from '../src/swarm.js';

const event = (name: string) => (line: string) => parseTextLine(line)?.event === name;

describe('a swarm that outlives its owner', () => {
  const cleanup = new Cleanup();
  const processes: ManagedProcess[] = [];
  afterEach(async () => {
    await Promise.all(processes.splice(0).map((p) => p.stop(2_000)));
    await cleanup.run();
  });

  async function launch(name: string, service: 'owner' | 'peer', args: string[], work: string) {
    const cwd = join(work, name);
    await mkdir(cwd, { recursive: true });
    const process = new ManagedProcess(name, binPath(service), args, {
      cwd,
      logPath: join(work, `${name}.log`),
    });
    processes.push(process);
    return process;
  }

  it('owner killed (SIGKILL) once a peer holds the file; 10 new peers given only a magnet link with that peer complete, finding each other by peer exchange', async () => {
    const work = await cleanup.tempDir('swarmdrop-owner-gone-');
    const file = join(work, 'payload.bin');
    await makeRandomFile(file, 4 * MiB + 777);
    const expected = await sha256File(file);
    const ownerPort = await freePort();
    const owner = await launch('owner', 'owner', [String(ownerPort), file], work);
    const readyLine = await owner.waitFor(event('ready'), 'ready', 60_000);
    const infoHash = parseTextLine(readyLine)!.fields.link!.split('/').pop()!;

    const first: ManagedProcess[] = [];
    const firstPorts: number[] = [];
    for (let i = 1; i <= 3; i++) {
      const port = await freePort();
      firstPorts.push(port);
      first.push(await launch(`s${i}`, 'peer', [String(ownerPort), String(port), '--swarm'], work));
    }
    // Every first-wave peer holds the metainfo (it has no other source than the owner) before
    // the owner goes; killed earlier, a slow starter could never begin.
    await Promise.all(first.map((p) => p.waitFor(event('metainfo'), 'metainfo', 120_000)));
    const holder = await Promise.any(
      first.map((p, i) => p.waitFor(event('merged'), 'merged', 120_000).then(() => i)),
    );
    owner.kill('SIGKILL');
    await owner.exited;

    // Only one surviving peer's address: no tracker, no owner.
    const magnet = formatMagnet({
      infoHash: Buffer.from(infoHash, 'hex'),
      peers: [{ host: '127.0.0.1', port: firstPorts[holder]! }],
    });
    const late: ManagedProcess[] = [];
    for (let i = 1; i <= 10; i++) {
      late.push(await launch(`n${i}`, 'peer', [magnet, String(await freePort())], work));
    }
    await Promise.all(
      [...first, ...late].map((p) => p.waitFor(event('merged'), 'merged', 180_000)),
    );
    // Peer exchange: the newcomers knew only the holder, and found each other through it.
    const holderLabel = `127.0.0.1:${firstPorts[holder]}`;
    const fromOthers = late.flatMap((p) =>
      p.lines
        .map((l) => parseTextLine(l))
        .filter((e) => e?.event === 'chunk-received' && e.fields.from !== holderLabel),
    );
    expect(
      fromOthers.length,
      'chunks the newcomers had from members other than the holder',
    ).toBeGreaterThan(0);
    expect(late.some((p) => p.lines.some(event('pex-received')))).toBe(true);
    for (const p of [...first, ...late]) {
      const path = parseTextLine(p.lines.find(event('merged'))!)!.fields.path!;
      expect(await sha256File(path), `${p.name}'s merged file`).toBe(expected);
    }
  });
});
