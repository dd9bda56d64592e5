/**
 * What the owner checks before it binds a port or splits anything: that the
 * file is one it can distribute, and that --dir can never overwrite it. A
 * failure is an OptionError naming the option (exit status 2).
 */
import type { Stats } from 'node:fs';
import { open, realpath, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import {
  escapeUnsafe,
  MAX_PIECE_COUNT,
  OptionError,
  torrentFileName,
  UNSAFE_CHARS,
} from '@swarmdrop/protocol';
import { CHUNK_DIR, SUMMARY_FILE } from '@swarmdrop/protocol/node';

/**
 * The owner writes `<dir>/summary.txt`, `<dir>/<name>.torrent` and
 * its own chunk and temp files under `<dir>/chunks/` (refusing to start when
 * anything else is there). Refuse a source file that is one of those, so the file being
 * distributed can never be overwritten or deleted.
 */
export async function checkDirKeepsSource(file: string, dir: string): Promise<void> {
  const source = await realpath(file);
  let work = resolve(dir);
  try {
    work = await realpath(work);
  } catch {
    return; // the directory does not exist yet, so the file cannot be in it
  }
  const torrent = torrentFileName(basename(file));
  const owned = [SUMMARY_FILE, `${SUMMARY_FILE}.tmp`, torrent, `${torrent}.tmp`];
  const inChunks = relative(join(work, CHUNK_DIR), source);
  if (
    (dirname(source) === work && owned.includes(basename(source))) ||
    (!inChunks.startsWith('..') && inChunks !== '' && !isAbsolute(inChunks))
  ) {
    throw new OptionError(
      '--dir',
      `${dir} would overwrite the file being distributed (${file}); choose another --dir`,
    );
  }
}

export async function checkSourceFile(file: string, chunkSize: number): Promise<void> {
  let info: Stats;
  try {
    info = await stat(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new OptionError('file', `${file} does not exist`);
    if (code === 'EACCES') throw new OptionError('file', `${file}: permission denied`);
    throw new OptionError('file', `${file}: ${(err as Error).message}`);
  }
  if (info.isDirectory()) throw new OptionError('file', `${file} is a directory, not a file`);
  if (!info.isFile()) throw new OptionError('file', `${file} is not a regular file`);
  if (info.size === 0)
    throw new OptionError('file', `${file} is empty; there is nothing to distribute`);
  // Peers refuse a metainfo past MAX_PIECE_COUNT; say so before a long split, with the fix.
  if (Math.ceil(info.size / chunkSize) > MAX_PIECE_COUNT) {
    throw new OptionError(
      '--chunk-size',
      `${file} is ${info.size} bytes: ${Math.ceil(info.size / chunkSize)} chunks of ${chunkSize} bytes, more than ${MAX_PIECE_COUNT}; use --chunk-size ${Math.ceil(info.size / MAX_PIECE_COUNT)} or more`,
    );
  }
  // Peers refuse such a name (it becomes their file's name), so refuse it here, before the split.
  if (UNSAFE_CHARS.test(basename(file))) {
    throw new OptionError(
      'file',
      `"${escapeUnsafe(basename(file))}" contains control or bidi characters, which peers refuse in a file name; rename it (or link it under another name)`,
    );
  }
  try {
    const handle = await open(file, 'r');
    try {
      await handle.read(Buffer.alloc(1), 0, 1, 0);
    } finally {
      await handle.close();
    }
  } catch (err) {
    throw new OptionError('file', `${file} cannot be read: ${(err as Error).message}`);
  }
}
