/**
 * Metadata from peers (BEP 9) with a stock client: libtorrent
 * (python3-libtorrent), given only the info-hash and the owner's address
 * (no `.torrent`, no tracker, DHT and LPD off), fetches the info dictionary
 * from the owner over ut_metadata and then the whole file. aria2c,
 * Transmission and qBittorrent from the owner's magnet link:
 * stock-magnet.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHUNK, Cleanup, startOwner } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { CLIENT_HANG_MS, spawnLogged } from '../src/stock-clients.js';

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
