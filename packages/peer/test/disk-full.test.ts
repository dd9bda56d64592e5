/**
 * A real "no space left on device" on a tmpfs --dir. Too small from the
 * start, the peer refuses to begin and says what it needs. Filled by someone
 * else while it fetches, it must stop with one clear line, keep what it
 * verified, and, once there is room, resume from those files on the same
 * --dir without fetching them again. Needs root to mount the tmpfs: in CI (which runs as
 * root) it always runs, so a CI without root fails it; elsewhere it runs only
 * as root.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { open, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CHUNK,
  Cleanup,
  freePort,
  IN_CI,
  LogCapture,
  merged,
  readSummary,
  rejected,
  scanChunks,
  startOwner,
  startPeer,
} from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** Mounts a tmpfs of `bytes`, unmounted at cleanup. */
function smallDisk(bytes: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'swarmdrop-full-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir], { stdio: 'ignore' });
  cleanup.add(() => {
    execFileSync('umount', [dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

const root = process.getuid?.() === 0;

describe('disk full', () => {
  it.skipIf(!root && !IN_CI)(
    'a disk too small for the file is refused at start, saying what is needed (needs root to mount a tmpfs)',
    async () => {
      const { owner } = await startOwner(cleanup, {
        size: 20 * CHUNK,
        options: { expectedPeers: 1 },
      });
      const disk = smallDisk(6 * CHUNK);
      const log = new LogCapture('peer');
      const err = await rejected(
        startPeer(cleanup, {
          ownerPort: owner.port,
          port: 0,
          neighbourPort: await freePort(),
          dir: disk,
          log,
        }),
      );
      // Chunk files and the merged file share the tmpfs: 20 chunks of each.
      expect(err).toMatchObject({ code: 'ERR_NO_SPACE' });
      expect((err as Error).message).toMatch(
        /not enough disk space: 3\.9 MiB needed on the file system of .* \(2\.0 MiB of chunk files and 2\.0 MiB for .*\), \d+\.\d KiB free/,
      );
      expect(log.filter('request-sent')).toHaveLength(0);
      expect(await readdir(join(disk, 'chunks'))).toEqual([]);
    },
  );

  it.skipIf(!root && !IN_CI)(
    'ENOSPC while fetching stops the peer with a clear line; a restart with room resumes (needs root to mount a tmpfs)',
    async () => {
      const { owner } = await startOwner(cleanup, {
        size: 20 * CHUNK,
        options: { expectedPeers: 1 },
      });
      // Room for the download when it starts; then something else takes the rest of the disk.
      const disk = smallDisk(6 * 1024 * 1024);
      const log = new LogCapture('peer');
      const filler = join(disk, 'someone-elses-file');
      let filled: Promise<void> | undefined;
      log.onLine = (line) => {
        if (filled || line.event !== 'chunk-received') return;
        filled = fillDisk(filler);
      };
      const { peer } = await startPeer(cleanup, {
        ownerPort: owner.port,
        port: 0,
        neighbourPort: await freePort(),
        dir: disk,
        log,
        // Slow enough that the filler lands while most chunks are still to come.
        options: { downloadLimitBytesPerSecond: 4 * CHUNK },
      });
      expect(await peer.finished).toBe(1);
      await filled;
      const errors = log.filter('error');
      expect(errors).toHaveLength(1);
      expect(errors[0]!.fields.reason).toMatch(/^disk error: .*ENOSPC/);
      expect(errors[0]!.fields.reason).toContain('restart with the same --dir to resume');
      await peer.close();

      // What was logged or summarised is on disk and verifies. A chunk whose
      // file was written just before its summary line hit ENOSPC is on disk
      // too, not yet logged: chunk files are the truth, and a restart finds it.
      const scan = await scanChunks(disk, owner.metainfo);
      expect(scan.good.length, 'some chunks fitted before the disk filled').toBeGreaterThan(0);
      expect(scan.good.length, 'the disk filled before the end').toBeLessThan(20);
      for (const id of log.chunks('chunk-received')) expect(scan.good).toContain(id);
      for (const id of await readSummary(disk)) expect(scan.good).toContain(id);

      await rm(filler);
      const again = await startPeer(cleanup, {
        ownerPort: owner.port,
        port: 0,
        neighbourPort: await freePort(),
        dir: disk,
        options: { fallbackAfterMs: 200 },
      });
      await merged(again.log);
      expect(Number(again.log.filter('resumed')[0]!.fields.verified)).toBe(scan.good.length);
      const refetched = again.log.chunks('request-sent').filter((id) => scan.good.includes(id));
      expect(refetched, 'verified chunks requested again').toEqual([]);
    },
  );
});

/** Writes zeros to `path` until the disk is full (ENOSPC ends it). */
async function fillDisk(path: string): Promise<void> {
  const handle = await open(path, 'w');
  const block = Buffer.alloc(64 * 1024);
  try {
    for (;;) await handle.write(block);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    await handle.close();
  }
}
