import { spawn, spawnSync } from 'node:child_process';
import { copyFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CHUNK,
  Cleanup,
  freePort,
  merged,
  startOwner,
  startPeer,
  tempDir,
  within,
} from './helpers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const hasAria2 = spawnSync('aria2c', ['--version'], { stdio: 'ignore' }).status === 0;
// In CI a missing aria2c is a failure (the test runs and spawn fails), never a skip.
const skip = !hasAria2 && !process.env.CI;

describe('a stock BitTorrent client as the download neighbour', () => {
  it.skipIf(skip)(
    skip
      ? 'aria2c seeding the owner torrent serves a swarmdrop peer (SKIPPED: aria2c is not installed; apt-get install aria2)'
      : 'aria2c seeding the owner torrent serves a swarmdrop peer',
    async () => {
      if (!hasAria2)
        throw new Error('aria2c is not installed and CI is set: apt-get install aria2');
      const chunks = 40;
      // A large expectedPeers keeps the owner's batch small: the rest must come from aria2c.
      const { owner, data, file } = await startOwner(cleanup, {
        size: chunks * CHUNK - 4321,
        expectedPeers: 50,
      });
      const seedDir = await tempDir(cleanup, 'swarmdrop-aria2-');
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
      aria.stdout.setEncoding('utf8').on('data', (t: string) => {
        ariaLog += t;
      });
      aria.stderr.setEncoding('utf8').on('data', (t: string) => {
        ariaLog += t;
      });
      cleanup.add(async () => {
        if (aria.exitCode === null && aria.signalCode === null) {
          aria.kill('SIGKILL');
          await ariaExited;
        }
      });

      const { capture } = await startPeer(cleanup, {
        ownerPort: owner.port,
        port: 0,
        neighbourPort: ariaPort,
        options: { fallbackAfterMs: 60_000 },
      });
      const path = await within(merged(capture), 50_000, () => `aria2c said:\n${ariaLog}`);
      expect((await readFile(path)).equals(data)).toBe(true);

      const label = `127.0.0.1:${ariaPort}`;
      const fromAria = capture.chunks('chunk-received', { via: 'neighbour', from: label });
      const fromOwner = capture.chunks('chunk-received', { via: 'owner' });
      expect(fromOwner.length).toBe(1);
      expect([...fromOwner, ...fromAria].sort((a, b) => a - b)).toEqual([...Array(chunks).keys()]);
      expect(capture.filter('fallback')).toHaveLength(0);
      expect(capture.filter('idlist-received', { from: label }).length).toBeGreaterThan(0);
    },
  );
});
