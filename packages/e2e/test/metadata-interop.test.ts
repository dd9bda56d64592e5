/**
 * Metadata from peers (BEP 9) with a stock client: libtorrent
 * (python3-libtorrent), given only the info-hash and the owner's address
 * (no `.torrent`, no tracker, DHT and LPD off), fetches the info dictionary
 * from the owner over ut_metadata and then the whole file; aria2c does the
 * same from the owner's magnet link (its tracker lists the owner).
 */
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHUNK, Cleanup, startOwner, toolAvailable } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { ARIA2_QUIET, CLIENT_HANG_MS, spawnLogged } from '../src/stock-clients.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('../src/libtorrent-magnet.py', import.meta.url));
const noLibtorrent =
  spawnSync(PYTHON, ['-c', 'import libtorrent'], { stdio: 'ignore' }).status !== 0;

describe('libtorrent fetches the metadata from a swarmdrop owner', () => {
  it.skipIf(noLibtorrent)(
    `given only the info-hash and the owner's address, and then downloads the file byte-identical${noLibtorrent ? ' (skipped: python3-libtorrent not installed; required in CI)' : ''}`,
    async () => {
      const { port, data, log, metainfo } = await startOwner(cleanup, {
        size: 30 * CHUNK + 4321,
        name: 'magnet.bin',
      });
      const dir = await cleanup.tempDir('swarmdrop-libtorrent-');
      const hex = metainfo.infoHash.toString('hex');
      const client = spawnLogged(cleanup, PYTHON, [
        SCRIPT,
        hex,
        '127.0.0.1',
        String(port),
        dir,
        'file',
        '60',
      ]);
      await client.exit(CLIENT_HANG_MS);
      const output = client.output();
      expect(output).toContain(`metadata magnet.bin ${data.length} ${hex}`);
      expect(output).toContain('complete');
      expect((await readFile(join(dir, 'magnet.bin'))).equals(data)).toBe(true);
      const handshake = log.filter('extended-handshake')[0];
      expect(handshake?.fields.client).toMatch(/^libtorrent/i);
      const sent = log.filter('metadata-sent');
      expect(sent.map((l) => l.fields.piece)).toEqual(['0']);
      expect(sent[0]?.fields.bytes).toBe(String(metainfo.infoBytes.length));
    },
    CLIENT_HANG_MS + 15_000,
  );
});

describe("aria2c joins from the owner's magnet link alone", () => {
  const noAria2 = !toolAvailable('aria2c');
  it.skipIf(noAria2)(
    `the metadata over ut_metadata, then the file byte-identical${noAria2 ? ' (skipped: aria2c not installed; required in CI)' : ''}`,
    async () => {
      const { data, log, metainfo } = await startOwner(cleanup, {
        size: 20 * CHUNK + 99,
        name: 'aria-magnet.bin',
      });
      const magnet = String(log.filter('ready')[0]?.fields.magnet);
      expect(magnet).toMatch(/^magnet:\?xt=urn:btih:/);
      const dir = await cleanup.tempDir('swarmdrop-aria2-magnet-');
      const aria = spawnLogged(cleanup, 'aria2c', [
        ...ARIA2_QUIET,
        `--dir=${dir}`,
        '--seed-time=0',
        '--bt-save-metadata=false',
        magnet,
      ]);
      expect(await aria.exit(CLIENT_HANG_MS), aria.output()).toBe(0);
      expect((await readFile(join(dir, 'aria-magnet.bin'))).equals(data)).toBe(true);
      const sent = log.filter('metadata-sent');
      expect(sent.length, 'the owner sent the metadata').toBeGreaterThan(0);
      expect(sent[0]?.fields.bytes).toBe(String(metainfo.infoBytes.length));
    },
    CLIENT_HANG_MS + 15_000,
  );
});
