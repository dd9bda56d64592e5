/**
 * A stock BitTorrent client (aria2, from Debian) downloads from the owner
 * alone: it fetches the .torrent over HTTP, announces to the owner's
 * tracker, finds the owner itself in the peer list and gets every piece.
 *
 * This once failed: aria2 connected, the owner answered its handshake, and
 * then nothing — the owner's PeerWire decoded the handshake (which arrives in
 * the first read) before the owner had attached its handler, so it never
 * sent its bitfield and aria2 waited forever.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Cleanup, type LogCapture, startOwner, toolAvailable, within } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';

const ARIA2_TIMEOUT_MS = 60_000;
// In CI aria2c must be there: the test runs, and fails without it.
const skip = !toolAvailable('aria2c');
const title = `aria2c downloads a 3 MiB file from the owner alone, byte-identical${
  skip ? ' (skipped: aria2c is not installed; in CI it is required)' : ''
}`;

describe('interop with aria2c', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it.skipIf(skip)(
    title,
    async () => {
      const { owner, log, data, port } = await startOwner(cleanup, {
        size: 3 * 1024 * 1024 + 12_345,
        name: 'random-3mib.bin',
      });
      const download = join(await cleanup.tempDir('swarmdrop-aria2-'), 'aria2');
      const { code, output } = await aria2Download(
        cleanup,
        download,
        `http://127.0.0.1:${port}/random-3mib.bin.torrent`,
        log,
      );
      expect(code, `${output}\nowner log:\n${log.tail()}`).toBe(0);

      const got = await readFile(join(download, 'random-3mib.bin'));
      expect(got.length).toBe(data.length);
      expect(got.equals(data)).toBe(true);

      // The owner's side of it: announced, connected, served every chunk.
      expect(log.filter('announce', { event: 'started' })).toHaveLength(1);
      const connected = log.filter('connected').length;
      expect(connected).toBeGreaterThanOrEqual(1);
      // aria2c has exited, so each of its connections ends in a `disconnected`
      // line: once all are in, any protocol error would have been logged.
      await log.waitFor('disconnected', undefined, { count: connected });
      const sent = new Set(log.chunks('chunk-sent'));
      expect(sent.size).toBe(owner.metainfo.geometry.pieceCount);
      expect(log.filter('protocol-error')).toHaveLength(0);
    },
    ARIA2_TIMEOUT_MS + 15_000,
  );

  // A private swarm: a stock client puts the token in the .torrent URL, and the
  // .torrent it gets announces with it, so the owner admits it to the wire.
  it.skipIf(skip)(
    `aria2c joins a private swarm with ?key=<token> in the .torrent URL${skip ? ' (skipped: aria2c is not installed)' : ''}`,
    async () => {
      const token = 'aria2-private-swarm-token-0123';
      const { owner, log, data, port } = await startOwner(cleanup, {
        size: 2 * 1024 * 1024 + 7,
        name: 'private.bin',
        options: { token },
      });
      expect(owner.metainfo.private).toBe(true);
      const download = join(await cleanup.tempDir('swarmdrop-aria2-'), 'aria2');
      const { code, output } = await aria2Download(
        cleanup,
        download,
        `http://127.0.0.1:${port}/private.bin.torrent?key=${token}`,
        log,
      );
      expect(code, `${output}\nowner log:\n${log.tail()}`).toBe(0);
      expect((await readFile(join(download, 'private.bin'))).equals(data)).toBe(true);
      expect(log.filter('connection-refused')).toHaveLength(0);
      expect(log.filter('announce', { event: 'started' })).toHaveLength(1);
    },
    ARIA2_TIMEOUT_MS + 15_000,
  );
});

/** Runs aria2c on `url` until it exits (bounded against a hang); its exit code and output. */
async function aria2Download(
  cleanup: Cleanup,
  download: string,
  url: string,
  log: LogCapture,
): Promise<{ code: number | null; output: string }> {
  const args = [
    `--dir=${download}`,
    '--no-conf=true',
    '--enable-dht=false',
    '--enable-dht6=false',
    '--bt-enable-lpd=false',
    '--enable-peer-exchange=false',
    '--seed-time=0',
    '--bt-stop-timeout=60',
    '--follow-torrent=mem',
    '--summary-interval=0',
    '--console-log-level=warn',
    '--check-integrity=true',
    '--file-allocation=none',
    url,
  ];
  const aria2 = spawn('aria2c', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = once(aria2, 'exit') as Promise<[number | null, string | null]>;
  cleanup.add(async () => {
    if (aria2.exitCode === null && aria2.signalCode === null && aria2.pid !== undefined) {
      process.kill(aria2.pid, 'SIGKILL');
      await exited;
    }
  });
  let output = '';
  aria2.stdout?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  aria2.stderr?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const spawnError = once(aria2, 'error').then(([err]) => {
    throw new Error(`cannot run aria2c: ${(err as Error).message}`);
  });
  const [code] = await within(
    Promise.race([exited, spawnError]),
    ARIA2_TIMEOUT_MS,
    () => `aria2c still running:\n${output}\nowner log:\n${log.tail()}`,
  );
  return { code, output };
}
