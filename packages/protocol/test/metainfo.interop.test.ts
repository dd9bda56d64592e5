/**
 * Interop with stock BitTorrent tools from Debian: transmission-show, aria2c
 * and mktorrent read and write the same torrents and info-hashes we do.
 * In CI (CI set) these always run, so a missing tool fails the run; outside
 * CI a missing tool skips its test.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Cleanup, hasTool, IN_CI, pseudoRandomBytes } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { buildMetainfo, DEFAULT_CHUNK_SIZE, parseMetainfo } from '../src/index.js';
import { splitFile } from '../src/node/index.js';

const run = promisify(execFile);
const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** Skip only outside CI, and only when the tool is missing. */
const needs = (tool: string) => !IN_CI && !hasTool(tool);

async function transmissionShow(torrentPath: string) {
  const { stdout } = await run('transmission-show', [torrentPath]);
  const field = (name: string) =>
    new RegExp(`^\\s*${name}:\\s*(.+)$`, 'm').exec(stdout)?.[1]?.trim();
  return { hash: field('Hash'), pieceCount: field('Piece Count'), name: field('Name'), stdout };
}

async function aria2Show(torrentPath: string) {
  const { stdout } = await run('aria2c', ['--show-files=true', torrentPath]);
  const field = (name: string) => new RegExp(`^${name}:\\s*(.+)$`, 'm').exec(stdout)?.[1]?.trim();
  return {
    hash: field('Info Hash'),
    pieceCount: field('The Number of Pieces'),
    totalLength: field('Total Length'),
    stdout,
  };
}

/** aria2c re-hashes `dir/<name>` against the torrent and exits 0 only when every piece matches. */
async function aria2Verify(torrentPath: string, dir: string): Promise<number> {
  try {
    await run('aria2c', [
      '--check-integrity=true',
      '--hash-check-only=true',
      '--seed-time=0',
      '--enable-dht=false',
      '--enable-dht6=false',
      '--bt-enable-lpd=false',
      '--enable-peer-exchange=false',
      '--console-log-level=error',
      '--summary-interval=0',
      '--auto-save-interval=0',
      `--dir=${dir}`,
      torrentPath,
    ]);
    return 0;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'number') return code;
    throw err;
  }
}

/** A file of 5 chunks + 1234 bytes, split, and a torrent built for it with buildMetainfo. */
async function ourTorrent() {
  const dir = await cleanup.tempDir();
  const source = join(dir, 'payload.bin');
  await writeFile(source, pseudoRandomBytes(5 * DEFAULT_CHUNK_SIZE + 1234, 7));
  const split = await splitFile({ source, dir: join(dir, 'work') });
  const { bytes, metainfo } = buildMetainfo({
    name: 'payload.bin',
    length: split.length,
    pieceHashes: split.pieceHashes,
    sha256: split.sha256,
    announce: 'http://127.0.0.1:1/announce',
  });
  const torrentPath = join(dir, 'payload.torrent');
  await writeFile(torrentPath, bytes);
  return { dir, source, torrentPath, metainfo };
}

/** A file of 3 x 2^17 + 5 bytes and a torrent of it made by mktorrent -l 17. */
async function mktorrentTorrent() {
  const dir = await cleanup.tempDir();
  const source = join(dir, 'stock.bin');
  const length = 3 * (1 << 17) + 5;
  await writeFile(source, pseudoRandomBytes(length, 11));
  const torrentPath = join(dir, 'stock.torrent');
  await run('mktorrent', [
    '-l',
    '17',
    '-a',
    'http://127.0.0.1:1/announce',
    '-o',
    torrentPath,
    source,
  ]);
  return { dir, source, length, torrentPath };
}

describe('torrents written by buildMetainfo, read by stock tools', () => {
  it.skipIf(needs('transmission-show'))(
    'transmission-show reports our info-hash, name and piece count (skipped outside CI without transmission-show)',
    async () => {
      const { torrentPath, metainfo } = await ourTorrent();
      const shown = await transmissionShow(torrentPath);
      expect(shown.hash?.toLowerCase()).toBe(metainfo.infoHash.toString('hex'));
      expect(shown.name).toBe('payload.bin');
      expect(shown.pieceCount).toBe(String(metainfo.geometry.pieceCount));
    },
  );

  it.skipIf(needs('aria2c'))(
    'aria2c -S reports our info-hash, piece count and length (skipped outside CI without aria2c)',
    async () => {
      const { torrentPath, metainfo } = await ourTorrent();
      const shown = await aria2Show(torrentPath);
      expect(shown.hash?.toLowerCase()).toBe(metainfo.infoHash.toString('hex'));
      expect(shown.pieceCount).toBe('6');
      expect(shown.totalLength).toContain(
        `(${(5 * DEFAULT_CHUNK_SIZE + 1234).toLocaleString('en-US')})`,
      );
    },
  );

  it.skipIf(needs('aria2c'))(
    'aria2c re-hashes the file against our 100 KiB piece hashes and accepts it, and refuses a corrupted copy (skipped outside CI without aria2c)',
    async () => {
      const { dir, source, torrentPath } = await ourTorrent();
      const good = join(dir, 'good');
      const bad = join(dir, 'bad');
      const data = await readFile(source);
      await mkdir(good);
      await mkdir(bad);
      await writeFile(join(good, 'payload.bin'), data);
      const corrupt = Buffer.from(data);
      corrupt[3 * DEFAULT_CHUNK_SIZE + 17] = corrupt[3 * DEFAULT_CHUNK_SIZE + 17]! ^ 0xff;
      await writeFile(join(bad, 'payload.bin'), corrupt);
      expect(await aria2Verify(torrentPath, good)).toBe(0);
      expect(await aria2Verify(torrentPath, bad)).not.toBe(0);
    },
  );
});

describe('torrents written by mktorrent, read by parseMetainfo', () => {
  it.skipIf(needs('mktorrent') || needs('transmission-show'))(
    'mktorrent -l 17 output parses with the info-hash transmission-show reports (skipped outside CI without mktorrent/transmission-show)',
    async () => {
      const { source, length, torrentPath, dir } = await mktorrentTorrent();
      const parsed = parseMetainfo(await readFile(torrentPath));
      const shown = await transmissionShow(torrentPath);
      expect(parsed.infoHash.toString('hex')).toBe(shown.hash?.toLowerCase());
      expect(parsed.name).toBe('stock.bin');
      expect(parsed.length).toBe(length);
      expect(parsed.pieceLength).toBe(1 << 17);
      expect(parsed.announce).toBe('http://127.0.0.1:1/announce');
      expect(parsed.sha256).toBeUndefined();
      // Our splitter, at the same chunk size, computes the same piece hashes.
      const split = await splitFile({ source, dir: join(dir, 'work'), chunkSize: 1 << 17 });
      expect([...split.pieceHashes].map((h) => h.toString('hex'))).toEqual(
        [...parsed.pieceHashes].map((h) => h.toString('hex')),
      );
    },
  );

  it.skipIf(needs('mktorrent') || needs('aria2c'))(
    'mktorrent -l 17 output parses with the info-hash aria2c reports (skipped outside CI without mktorrent/aria2c)',
    async () => {
      const { torrentPath } = await mktorrentTorrent();
      const parsed = parseMetainfo(await readFile(torrentPath));
      const shown = await aria2Show(torrentPath);
      expect(parsed.infoHash.toString('hex')).toBe(shown.hash?.toLowerCase());
      expect(shown.pieceCount).toBe(String(parsed.geometry.pieceCount));
    },
  );
});
