import { spawn } from 'node:child_process';
import { copyFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CHUNK,
  Cleanup,
  freePort,
  startOwner,
  startPeer,
  toolAvailable,
  within,
} from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

describe('a stock BitTorrent client as the download neighbour', () => {
  // In CI a missing aria2c is a failure (the test runs and spawn fails), never a skip.
  it.skipIf(!toolAvailable('aria2c'))(
    'aria2c seeding the owner torrent serves a swarmdrop peer (needs aria2c: apt-get install aria2)',
    async () => {
      const chunks = 40;
      // A large expectedPeers keeps the owner's batch small: the rest must come from aria2c.
      const { owner, data, file } = await startOwner(cleanup, {
        size: chunks * CHUNK - 4321,
        options: { expectedPeers: 50 },
      });
      const seedDir = await cleanup.tempDir('swarmdrop-aria2-');
      await copyFile(file, join(seedDir, owner.metainfo.name));
      const ariaPort = await freePort();
      let ariaLog = '';
      const aria = spawn(
        'aria2c',
        [
          `--dir=${seedDir}`,
          '--enable-dht=false',
          '--enable-dht6=false',
          '--bt-enable-lpd=false',
          '--enable-peer-exchange=false',
          '--seed-ratio=0.0',
          '--seed-time=60',
          `--listen-port=${ariaPort}`,
          '--check-integrity=true',
          '--bt-hash-check-seed=true',
          '--summary-interval=0',
          '--console-log-level=notice',
          owner.torrentPath,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const ariaExited = new Promise<void>((resolve) => aria.once('exit', () => resolve()));
      const ariaFailed = new Promise<never>((_resolve, reject) =>
        aria.once('error', (err) => reject(new Error(`aria2c could not run: ${err.message}`))),
      );
      ariaFailed.catch(() => {}); // observed by the race below
      aria.stdout.setEncoding('utf8').on('data', (t: string) => {
        ariaLog += t;
      });
      aria.stderr.setEncoding('utf8').on('data', (t: string) => {
        ariaLog += t;
      });
      cleanup.add(async () => {
        if (aria.pid !== undefined && aria.exitCode === null && aria.signalCode === null) {
          aria.kill('SIGKILL');
          await ariaExited;
        }
      });

      // Start the peer once aria2c listens, so that the peer's own connection to it comes
      // first: aria2c drops a second connection from a peer it already has one with.
      await within(
        new Promise<void>((resolve) => {
          const check = () => {
            if (/listening on TCP port/.test(ariaLog)) resolve();
          };
          check();
          aria.stdout.on('data', check);
        }),
        30_000,
        () => `aria2c never said it listens:\n${ariaLog}`,
      );
      const { log } = await startPeer(cleanup, {
        ownerPort: owner.port,
        port: 0,
        neighbourPort: ariaPort,
        // Out of reach: every chunk outside the batch must come from aria2c.
        options: { fallbackAfterMs: 600_000 },
      });
      const mergedLine = await within(
        Promise.race([log.waitFor('merged', undefined, { timeoutMs: 55_000 }), ariaFailed]),
        50_000,
        () => `aria2c said:\n${ariaLog}\nthe peer's log ends:\n${log.tail()}`,
      );
      expect((await readFile(mergedLine.fields.path!)).equals(data)).toBe(true);

      const label = `127.0.0.1:${ariaPort}`;
      const fromAria = log.chunks('chunk-received', { via: 'neighbour', from: label });
      const fromOwner = log.chunks('chunk-received', { via: 'owner' });
      expect(fromOwner.length).toBe(1);
      expect([...fromOwner, ...fromAria].sort((a, b) => a - b)).toEqual([...Array(chunks).keys()]);
      expect(log.filter('fallback')).toHaveLength(0);
      expect(log.filter('idlist-received', { from: label }).length).toBeGreaterThan(0);
    },
  );
});
