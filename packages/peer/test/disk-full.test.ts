/**
 * A real "no space left on device": the peer's --dir is a tmpfs too small for
 * the file. The peer must stop with one clear line, keep what it verified,
 * and, once there is room, resume from those files on the same --dir without
 * fetching them again. Needs root to mount the tmpfs: in CI (which runs as
 * root) it always runs, so a CI without root fails it; elsewhere it runs only
 * as root.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CHUNK,
  Cleanup,
  freePort,
  IN_CI,
  merged,
  readSummary,
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
    'ENOSPC stops the peer with a clear line; a restart with room resumes (needs root to mount a tmpfs)',
    async () => {
      const { owner } = await startOwner(cleanup, {
        size: 20 * CHUNK,
        options: { expectedPeers: 1 },
      });
      const disk = smallDisk(6 * CHUNK);
      const { peer, log } = await startPeer(cleanup, {
        ownerPort: owner.port,
        port: 0,
        neighbourPort: await freePort(),
        dir: disk,
      });
      expect(await peer.finished).toBe(1);
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
      for (const id of log.chunks('chunk-received')) expect(scan.good).toContain(id);
      for (const id of await readSummary(disk)) expect(scan.good).toContain(id);

      execFileSync('mount', ['-o', 'remount,size=8m', disk]);
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
