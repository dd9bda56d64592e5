/**
 * Restarting on the same --dir reuses the chunk files that still verify,
 * rewrites the ones that do not, and the source file is never written.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseMetainfo } from '@swarmdrop/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import type { Owner } from '../src/index.js';
import { BtClient, type LogCapture, randomFile, startOwner, TempDirs } from './helpers.js';

const FILE_SIZE = 1_000_000; // 10 chunks, the last one shorter

describe('restart on the same directory', () => {
  const temp = new TempDirs();
  const clients: BtClient[] = [];
  let owner: Owner | undefined;

  afterEach(async () => {
    for (const c of clients.splice(0)) c.destroy();
    await owner?.close();
    owner = undefined;
    await temp.cleanup();
  });

  it('writes every chunk the first time and reuses them all the next', async () => {
    const dir = await temp.make();
    const source = await randomFile(dir, 'data.bin', FILE_SIZE);
    const work = join(dir, 'owner');
    let log: LogCapture;

    ({ owner, log } = await startOwner(source.path, work));
    const chunks = owner.metainfo.geometry.pieceCount;
    expect(chunks).toBe(10);
    const first = await log.waitFor('listening');
    expect(first.fields).toMatchObject({
      written: String(chunks),
      reused: '0',
      chunks: String(chunks),
      size: String(FILE_SIZE),
      infohash: owner.metainfo.infoHash.toString('hex'),
    });
    const infoHash = owner.metainfo.infoHash;
    await owner.close();
    owner = undefined;

    ({ owner, log } = await startOwner(source.path, work));
    const second = await log.waitFor('listening');
    expect(second.fields).toMatchObject({ written: '0', reused: String(chunks) });
    expect(owner.metainfo.infoHash.equals(infoHash)).toBe(true);

    // The working directory is as the design says.
    expect((await readdir(join(work, 'chunks'))).sort()).toEqual(
      Array.from({ length: chunks }, (_, k) => `${k}.chunk`).sort(),
    );
    for (let k = 0; k < chunks; k++) {
      const data = await readFile(join(work, 'chunks', `${k}.chunk`));
      expect(data.equals(source.data.subarray(k * 102_400, (k + 1) * 102_400))).toBe(true);
    }
    expect(await readFile(join(work, 'summary.txt'), 'utf8')).toBe(
      `${Array.from({ length: chunks }, (_, k) => k).join('\n')}\n`,
    );
    const torrent = parseMetainfo(await readFile(join(work, 'data.bin.torrent')));
    expect(torrent.infoHash.equals(infoHash)).toBe(true);
    expect(torrent.announce).toBe(`http://127.0.0.1:${owner.port}/announce`);
    expect(torrent.sha256?.equals(createHash('sha256').update(source.data).digest())).toBe(true);
  });

  it('rewrites a chunk file tampered with between runs, and drops strays', async () => {
    const dir = await temp.make();
    const source = await randomFile(dir, 'data.bin', FILE_SIZE);
    const work = join(dir, 'owner');
    let log: LogCapture;
    ({ owner, log } = await startOwner(source.path, work));
    const chunks = owner.metainfo.geometry.pieceCount;
    await owner.close();
    owner = undefined;

    // Flip one byte of chunk 3, truncate nothing else; leave junk behind too.
    const tampered = join(work, 'chunks', '3.chunk');
    const bytes = await readFile(tampered);
    bytes[500] = bytes[500]! ^ 0xff;
    await writeFile(tampered, bytes);
    await writeFile(join(work, 'chunks', '42.chunk'), 'from a longer, older file');
    await writeFile(join(work, 'chunks', '5.chunk.1a2b3c4d.tmp'), 'half-written');

    ({ owner, log } = await startOwner(source.path, work));
    const line = await log.waitFor('listening');
    expect(line.fields).toMatchObject({ written: '1', reused: String(chunks - 1) });
    expect((await readFile(tampered)).equals(source.data.subarray(3 * 102_400, 4 * 102_400))).toBe(
      true,
    );
    expect((await readdir(join(work, 'chunks'))).sort()).toEqual(
      Array.from({ length: chunks }, (_, k) => `${k}.chunk`).sort(),
    );

    // And what it serves is right.
    const client = await BtClient.connect(owner.port, owner.metainfo);
    clients.push(client);
    await client.ready();
    expect(client.remoteBitfield?.isComplete()).toBe(true);
    await client.interested();
    await client.fetchChunks(Array.from({ length: chunks }, (_, k) => k));
    expect(client.file().equals(source.data)).toBe(true);
  });

  it('never writes the source file: bytes, size and mtime unchanged after serving and a restart', async () => {
    const dir = await temp.make();
    const source = await randomFile(dir, 'data.bin', FILE_SIZE);
    // An mtime in the past, so a write of any kind would show.
    const past = new Date(Date.UTC(2020, 1, 2, 3, 4, 5));
    await utimes(source.path, past, past);
    const before = await stat(source.path);
    const listing = (await readdir(dir)).sort();

    ({ owner } = await startOwner(source.path, join(dir, 'owner')));
    const client = await BtClient.connect(owner.port, owner.metainfo);
    clients.push(client);
    await client.ready();
    await client.interested();
    await client.fetchChunks(
      Array.from({ length: owner.metainfo.geometry.pieceCount }, (_, k) => k),
    );
    expect(client.file().equals(source.data)).toBe(true);
    await owner.close();
    owner = undefined;
    ({ owner } = await startOwner(source.path, join(dir, 'owner')));
    await owner.close();
    owner = undefined;

    const after = await stat(source.path);
    expect((await readFile(source.path)).equals(source.data)).toBe(true);
    expect(after.size).toBe(before.size);
    expect(after.mtimeMs).toBe(before.mtimeMs);
    expect(after.mtimeMs).toBe(past.getTime());
    expect(after.mode).toBe(before.mode);
    expect(after.ino).toBe(before.ino);
    // Nothing was created next to it (everything went under --dir).
    expect((await readdir(dir)).sort()).toEqual([...listing, 'owner'].sort());
  });
});
