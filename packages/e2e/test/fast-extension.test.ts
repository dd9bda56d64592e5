/**
 * The fast extension (BEP 6) against stock clients, on loopback (DHT, LPD,
 * PEX, UPnP/NAT-PMP off: there is no outside network):
 * - a libtorrent seeder (python3-libtorrent) whose request queue is cut to
 *   a few blocks (`max_allowed_in_request_queue`): it sends `have all`, and
 *   rejects the requests our pipeline sends beyond its queue; the peer logs
 *   both, asks again, and completes byte-identical;
 * - an aria2c seeder: its `have all` is logged and the peer completes.
 * In both the owner's batch is one chunk: the rest must come from the stock
 * client, the peer's download neighbour.
 */
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CHUNK,
  Cleanup,
  freePort,
  IN_CI,
  merged,
  startOwner,
  startPeer,
  toolAvailable,
} from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { libtorrentPython } from '../src/cpu-job.js';
import { CLIENT_HANG_MS, spawnLogged, startAria2Seeder } from '../src/stock-clients.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const CHUNKS = 40;
const python = libtorrentPython();
const noAria2 = !toolAvailable('aria2c');

/** A libtorrent seeder: listens on 127.0.0.1:PORT, prints `seeding` once it has checked the file. */
const SEEDER = `
import sys, time, libtorrent as lt
torrent, save, port, queue = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
s = lt.session({'listen_interfaces': '127.0.0.1:%d' % port, 'enable_dht': False,
  'enable_lsd': False, 'enable_upnp': False, 'enable_natpmp': False,
  'max_allowed_in_request_queue': queue, 'alert_mask': 0})
p = lt.add_torrent_params(); p.ti = lt.torrent_info(torrent); p.save_path = save
h = s.add_torrent(p)
while not h.status().is_seeding: time.sleep(0.05)
print('seeding', flush=True)
while True: time.sleep(1)
`;

/** An owner whose batch for the peer is one chunk, a copy of its file in a folder for a seeder. */
async function ownerAndSeedCopy() {
  const owner = await startOwner(cleanup, {
    size: CHUNKS * CHUNK - 4321,
    options: { expectedPeers: 50 },
  });
  const seedDir = await cleanup.tempDir('swarmdrop-fast-seed-');
  await copyFile(owner.file, join(seedDir, owner.metainfo.name));
  return { owner, seedDir };
}

describe('the fast extension with stock clients', () => {
  // CI installs python3-libtorrent (.ci/run) and must run this; elsewhere the title says why it did not.
  it.skipIf(python === undefined && !IN_CI)(
    `libtorrent's have all and its rejects (a request queue of 4) are logged and handled: the peer completes${python === undefined ? ' (skipped: no python3 with libtorrent; apt install python3-libtorrent)' : ''}`,
    async () => {
      if (python === undefined)
        throw new Error('no python3 that imports libtorrent (python3-libtorrent)');
      const { owner, seedDir } = await ownerAndSeedCopy();
      // Beside the file it seeds: the folder is the test's, removed with it.
      const script = join(seedDir, 'lt-seed.py');
      await writeFile(script, SEEDER);
      const ltPort = await freePort();
      const seeder = spawnLogged(cleanup, python, [
        script,
        owner.owner.torrentPath,
        seedDir,
        String(ltPort),
        '4',
      ]);
      await seeder.waitFor(/seeding/, CLIENT_HANG_MS);
      const { log } = await startPeer(cleanup, {
        ownerPort: owner.port,
        port: 0,
        neighbourPort: ltPort,
      });
      const path = await merged(log).catch((err: Error) => {
        throw new Error(`${err.message}\nlibtorrent said:\n${seeder.output()}`);
      });
      expect((await readFile(path)).equals(owner.data)).toBe(true);
      const label = `127.0.0.1:${ltPort}`;
      expect(log.filter('idlist-received', { from: label, as: 'have-all' })).toHaveLength(1);
      const rejects = log.filter('reject-received', { from: label });
      expect(rejects.length, 'libtorrent rejected requests past its queue').toBeGreaterThan(0);
      // Every chunk but the owner's one came from libtorrent, rejects and all.
      expect(log.chunks('chunk-received', { from: label }).length).toBe(CHUNKS - 1);
      expect(log.filter('protocol-error')).toEqual([]);
    },
    CLIENT_HANG_MS + 30_000,
  );

  it.skipIf(noAria2)(
    `aria2c's have all is logged and the peer completes from it${noAria2 ? ' (skipped: aria2c not installed; required in CI)' : ''}`,
    async () => {
      const { owner, seedDir } = await ownerAndSeedCopy();
      const ariaPort = await freePort();
      const seeder = await startAria2Seeder(cleanup, {
        torrent: owner.owner.torrentPath,
        dir: seedDir,
        port: ariaPort,
      });
      const { log } = await startPeer(cleanup, {
        ownerPort: owner.port,
        port: 0,
        neighbourPort: ariaPort,
      });
      const path = await merged(log).catch((err: Error) => {
        throw new Error(`${err.message}\naria2c said:\n${seeder.output()}`);
      });
      expect((await readFile(path)).equals(owner.data)).toBe(true);
      const label = `127.0.0.1:${ariaPort}`;
      expect(log.filter('idlist-received', { from: label, as: 'have-all' })).toHaveLength(1);
      expect(log.chunks('chunk-received', { from: label }).length).toBe(CHUNKS - 1);
      expect(log.filter('protocol-error')).toEqual([]);
    },
    CLIENT_HANG_MS + 15_000,
  );

  it.skipIf(noAria2)(
    `aria2c's rejects: six peers on one aria2c seeder, which unchokes four at a time, all complete and log its rejects${noAria2 ? ' (skipped: aria2c not installed; required in CI)' : ''}`,
    async () => {
      const { owner, seedDir } = await ownerAndSeedCopy();
      const ariaPort = await freePort();
      // Its upload slowed so that requests queue up: at its 10 s rechoke, the peers it chokes
      // still have requests there, which it answers with rejects (BEP 6).
      const seeder = await startAria2Seeder(cleanup, {
        torrent: owner.owner.torrentPath,
        dir: seedDir,
        port: ariaPort,
        args: ['--max-overall-upload-limit=1M'],
        seedTimeS: 240,
      });
      const label = `127.0.0.1:${ariaPort}`;
      const peers = await Promise.all(
        Array.from({ length: 6 }, () =>
          startPeer(cleanup, {
            ownerPort: owner.port,
            port: 0,
            neighbourPort: ariaPort,
            options: { fallbackAfterMs: 600_000 },
          }),
        ),
      );
      await Promise.all(
        peers.map(({ log }) =>
          merged(log).catch((err: Error) => {
            throw new Error(`${err.message}\naria2c said:\n${seeder.output().slice(-3000)}`);
          }),
        ),
      );
      const rejects = peers.flatMap(({ log }) => log.filter('reject-received', { from: label }));
      expect(rejects.length, "aria2c's rejects in the peers' logs").toBeGreaterThan(0);
      for (const { log } of peers) expect(log.filter('protocol-error')).toEqual([]);
    },
    4 * CLIENT_HANG_MS,
  );
});
