import { stat, statfs } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ChunkError } from '../errors.js';

/** What a download still has to write, and where. */
export interface SpaceNeeded {
  /** The working directory, for the chunk files still missing. */
  readonly dir: string;
  readonly chunkBytes: number;
  /** The merged file's path; its folder needs room for the whole file. */
  readonly outPath: string;
  readonly fileBytes: number;
}

/**
 * Refuses to start a download that cannot fit: a ChunkError ERR_NO_SPACE
 * saying how much each place needs and has. The merged file is written as
 * chunks arrive (MergedFile), so its folder needs the whole file from the
 * start; on one file system the two add up. Space is what an unprivileged
 * writer may use (statfs bavail), as a user's process sees it.
 */
export async function checkDiskSpace(needed: SpaceNeeded): Promise<void> {
  const outDir = dirname(needed.outPath);
  const [dirFree, outFree, dirDev, outDev] = await Promise.all([
    freeBytes(needed.dir),
    freeBytes(outDir),
    stat(needed.dir).then((s) => s.dev),
    stat(outDir).then((s) => s.dev),
  ]);
  if (dirDev === outDev) {
    const total = needed.chunkBytes + needed.fileBytes;
    if (total > dirFree) {
      throw new ChunkError(
        'ERR_NO_SPACE',
        `not enough disk space: ${formatBytes(total)} needed on the file system of ${needed.dir} (${formatBytes(needed.chunkBytes)} of chunk files and ${formatBytes(needed.fileBytes)} for ${needed.outPath}), ${formatBytes(dirFree)} free; free some space, or choose --dir or --out elsewhere`,
      );
    }
    return;
  }
  if (needed.chunkBytes > dirFree) {
    throw new ChunkError(
      'ERR_NO_SPACE',
      `not enough disk space in ${needed.dir}: ${formatBytes(needed.chunkBytes)} of chunk files needed, ${formatBytes(dirFree)} free; free some space or choose another --dir`,
    );
  }
  if (needed.fileBytes > outFree) {
    throw new ChunkError(
      'ERR_NO_SPACE',
      `not enough disk space for ${needed.outPath}: ${formatBytes(needed.fileBytes)} needed, ${formatBytes(outFree)} free; free some space or choose another --out`,
    );
  }
}

async function freeBytes(path: string): Promise<number> {
  const s = await statfs(path);
  return s.bavail * s.bsize;
}

/** `1.5 GiB`, `300.0 MiB`, `12 bytes`. */
export function formatBytes(n: number): string {
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  if (n < 1024) return `${n} bytes`;
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}
