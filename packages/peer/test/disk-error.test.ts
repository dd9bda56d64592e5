import { mkdirSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CHUNK,
  Cleanup,
  freePort,
  LogCapture,
  merged,
  readSummary,
  rejected,
  scanChunks,
  startOwner,
  startPeer,
  TestPeerServer,
} from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

// These work as root too: a path under a regular file (ENOTDIR) and a
// directory where a chunk file must go (EISDIR) fail whatever the permissions.
describe('disk errors', () => {
  it('a chunk that cannot be written stops the peer; the verified chunks stay for a restart', async () => {
    const chunks = 20;
    const {
      owner,
      data,
      dir: ownerDir,
    } = await startOwner(cleanup, {
      size: chunks * CHUNK,
      options: { expectedPeers: 2 },
    });
    const dir = await cleanup.tempDir();
    const target = chunks - 1; // not in the first peer's batch
    // A neighbour holding one chunk, which it serves correctly; when asked for
    // it, the test puts a directory where the peer's chunk file has to go.
    const fake = await TestPeerServer.listen({
      metainfo: owner.metainfo,
      holds: (i) => i === target,
      answer: async (r) => {
        mkdirSync(join(dir, 'chunks', `${target}.chunk`, 'in-the-way'), { recursive: true });
        const chunk = await readFile(join(ownerDir, 'chunks', `${r.index}.chunk`));
        return chunk.subarray(r.begin, r.begin + r.length);
      },
    });
    cleanup.add(() => fake.close());
    const { peer, log } = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: 0,
      neighbourPort: fake.port,
      dir,
    });
    expect(await peer.finished).toBe(1);
    const errors = log.filter('error');
    expect(errors).toHaveLength(1);
    expect(errors[0]!.fields.reason).toMatch(/^disk error: /);
    expect(errors[0]!.fields.reason).toContain(`${target}.chunk`);
    expect(errors[0]!.fields.reason).toContain(`the verified chunks in ${dir} are kept`);
    expect(peer.fatalMessage).toBe(errors[0]!.fields.reason);
    expect(log.filter('merged')).toHaveLength(0);
    await peer.close();

    // Every chunk it logged as received is on disk and verifies; the summary says exactly that.
    const scan = await scanChunks(dir, owner.metainfo);
    expect(scan.bad).toEqual([`${target}.chunk`]);
    const received = log.chunks('chunk-received').sort((a, b) => a - b);
    expect(scan.good).toEqual(received);
    expect((await readSummary(dir)).sort((a, b) => a - b)).toEqual(received);
    expect(received).not.toContain(target);

    // With the obstacle gone, a restart on the same dir resumes and completes.
    await rm(join(dir, 'chunks', `${target}.chunk`), { recursive: true });
    const again = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: 0,
      neighbourPort: await freePort(),
      dir,
      options: { fallbackAfterMs: 200 },
    });
    const path = await merged(again.log);
    expect((await readFile(path)).equals(data)).toBe(true);
    expect(Number(again.log.filter('resumed')[0]?.fields.verified)).toBe(received.length);
    const requested = again.log.chunks('request-sent');
    expect(requested.filter((i) => received.includes(i))).toEqual([]);
  });

  it('an --out that cannot be written is refused at start, before anything is fetched; a good --out then completes', async () => {
    const chunks = 8;
    const { owner, data } = await startOwner(cleanup, {
      size: chunks * CHUNK,
      options: { expectedPeers: 1 },
    });
    const base = await cleanup.tempDir();
    await writeFile(join(base, 'a-file'), 'not a directory\n');
    const dir = join(base, 'work');
    const log = new LogCapture('peer');
    const err = await rejected(
      startPeer(cleanup, {
        ownerPort: owner.port,
        port: 0,
        neighbourPort: await freePort(),
        dir,
        log,
        options: { out: join(base, 'a-file', 'merged.bin') },
      }),
    );
    // The merged file is written as chunks arrive, so its folder is made first:
    // EEXIST (a file is there) or ENOTDIR, by platform.
    expect(err).toMatchObject({ code: 'ERR_OPTION', field: '--out' });
    expect((err as Error).message).toMatch(/cannot write .*E(EXIST|NOTDIR)/);
    expect(log.filter('request-sent')).toHaveLength(0);
    expect((await scanChunks(dir, owner.metainfo)).good).toEqual([]);

    const out = join(base, 'merged.bin');
    const again = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: 0,
      neighbourPort: await freePort(),
      dir,
      options: { out },
    });
    expect(await merged(again.log)).toBe(out);
    expect((await readFile(out)).equals(data)).toBe(true);
  });
});
