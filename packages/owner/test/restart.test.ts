/**
 * Restarting on the same --dir reuses the chunk files that still verify,
 * rewrites the ones that do not, and the source file is never written.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseMetainfo } from '@swarmdrop/protocol';
import { Cleanup, randomFile, startOwner, type TestOwner, TestPeer } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';

const FILE_SIZE = 1_000_000; // 10 chunks, the last one shorter

describe('restart on the same directory', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  /** A source file of FILE_SIZE random bytes in a fresh directory, and the owner's --dir next to it. */
  async function source(): Promise<{ dir: string; path: string; data: Buffer; work: string }> {
    const dir = await cleanup.tempDir();
    const path = join(dir, 'data.bin');
    const data = await randomFile(path, FILE_SIZE);
    return { dir, path, data, work: join(dir, 'owner') };
  }

  function start(file: string, dir: string): Promise<TestOwner> {
    return startOwner(cleanup, { file, dir });
  }

  /** A stock client that has the whole file from `o`, checked chunk by chunk against the metainfo. */
  async function downloadAll(o: TestOwner): Promise<Buffer> {
    const client = await TestPeer.connect(o.port, { metainfo: o.metainfo });
    cleanup.add(() => client.destroy());
    await client.ready();
    expect(client.remoteBitfield?.isComplete()).toBe(true);
    await client.interested();
    await client.fetchChunks(Array.from({ length: o.metainfo.geometry.pieceCount }, (_, k) => k));
    return client.file();
  }

  it('writes every chunk the first time and reuses them all the next', async () => {
    const src = await source();
    const first = await start(src.path, src.work);
    const chunks = first.metainfo.geometry.pieceCount;
    expect(chunks).toBe(10);
    const firstListening = await first.log.waitFor('listening');
    expect(firstListening.fields).toMatchObject({
      written: String(chunks),
      reused: '0',
      chunks: String(chunks),
      size: String(FILE_SIZE),
      infohash: first.metainfo.infoHash.toString('hex'),
    });
    const infoHash = first.metainfo.infoHash;
    await first.owner.close();

    const second = await start(src.path, src.work);
    const secondListening = await second.log.waitFor('listening');
    expect(secondListening.fields).toMatchObject({ written: '0', reused: String(chunks) });
    expect(second.metainfo.infoHash.equals(infoHash)).toBe(true);

    // The working directory is as the design says.
    const work = src.work;
    expect((await readdir(join(work, 'chunks'))).sort()).toEqual(
      Array.from({ length: chunks }, (_, k) => `${k}.chunk`).sort(),
    );
    for (let k = 0; k < chunks; k++) {
      const data = await readFile(join(work, 'chunks', `${k}.chunk`));
      expect(data.equals(src.data.subarray(k * 102_400, (k + 1) * 102_400))).toBe(true);
    }
    expect(await readFile(join(work, 'summary.txt'), 'utf8')).toBe(
      `${Array.from({ length: chunks }, (_, k) => k).join('\n')}\n`,
    );
    const torrent = parseMetainfo(await readFile(join(work, 'data.bin.torrent')));
    expect(torrent.infoHash.equals(infoHash)).toBe(true);
    expect(torrent.announce).toBe(`http://127.0.0.1:${second.port}/announce`);
    expect(torrent.sha256?.equals(createHash('sha256').update(src.data).digest())).toBe(true);
  });

  it('rewrites a chunk file tampered with between runs, and drops strays', async () => {
    const src = await source();
    const work = src.work;
    const first = await start(src.path, work);
    const chunks = first.metainfo.geometry.pieceCount;
    await first.owner.close();

    // Flip one byte of chunk 3, truncate nothing else; leave junk behind too.
    const tampered = join(work, 'chunks', '3.chunk');
    const bytes = await readFile(tampered);
    bytes[500] = bytes[500]! ^ 0xff;
    await writeFile(tampered, bytes);
    await writeFile(join(work, 'chunks', '42.chunk'), 'from a longer, older file');
    await writeFile(join(work, 'chunks', '5.chunk.1a2b3c4d.tmp'), 'half-written');

    const second = await start(src.path, work);
    const line = await second.log.waitFor('listening');
    expect(line.fields).toMatchObject({ written: '1', reused: String(chunks - 1) });
    expect((await readFile(tampered)).equals(src.data.subarray(3 * 102_400, 4 * 102_400))).toBe(
      true,
    );
    expect((await readdir(join(work, 'chunks'))).sort()).toEqual(
      Array.from({ length: chunks }, (_, k) => `${k}.chunk`).sort(),
    );

    // And what it serves is right.
    expect((await downloadAll(second)).equals(src.data)).toBe(true);
  });

  it('never writes the source file: bytes, size and mtime unchanged after serving and a restart', async () => {
    const src = await source();
    // An mtime in the past, so a write of any kind would show.
    const past = new Date(Date.UTC(2020, 1, 2, 3, 4, 5));
    await utimes(src.path, past, past);
    const before = await stat(src.path);
    const listing = (await readdir(src.dir)).sort();

    const first = await start(src.path, src.work);
    expect((await downloadAll(first)).equals(src.data)).toBe(true);
    await first.owner.close();
    const second = await start(src.path, src.work);
    await second.owner.close();

    const after = await stat(src.path);
    expect((await readFile(src.path)).equals(src.data)).toBe(true);
    expect(after.size).toBe(before.size);
    expect(after.mtimeMs).toBe(before.mtimeMs);
    expect(after.mtimeMs).toBe(past.getTime());
    expect(after.mode).toBe(before.mode);
    expect(after.ino).toBe(before.ino);
    // Nothing was created next to it (everything went under --dir).
    expect((await readdir(src.dir)).sort()).toEqual([...listing, 'owner'].sort());
  });
});
