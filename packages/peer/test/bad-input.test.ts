import { readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { join } from 'node:path';
import { bencodeEncode } from '@swarmdrop/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { Peer } from '../src/index.js';
import {
  CHUNK,
  Cleanup,
  captureLogger,
  freePort,
  merged,
  runPeerBin,
  startOwner,
  startPeer,
  tempDir,
} from './helpers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** An HTTP server that answers every request with `torrent`: an owner gone bad. */
async function fakeOwner(torrent: Buffer): Promise<number> {
  const server: Server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/x-bittorrent' });
    res.end(torrent);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup.add(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const address = server.address();
  return typeof address === 'object' && address ? address.port : 0;
}

function torrentNamed(name: string): Buffer {
  return bencodeEncode({
    announce: 'http://127.0.0.1:1/announce',
    info: { length: 1000, name, 'piece length': CHUNK, pieces: Buffer.alloc(20, 7) },
  });
}

describe('bad command-line input', () => {
  const cases: Array<[string, string[], RegExp]> = [
    ['no arguments', [], /expected <owner> <port> <download-neighbour>/],
    ['two arguments', ['6881', '7001'], /expected <owner> <port> <download-neighbour>/],
    ['a port out of range', ['6881', '99999', '7002'], /<port>: port 99999 is out of range/],
    ['a neighbour that is not an address', ['6881', '7001', 'x:y'], /<download-neighbour>: "x:y"/],
    ['an owner port of 0', ['0', '7001', '7002'], /<owner>: port 0 is out of range/],
    ['an unknown option', ['6881', '7001', '7002', '--bogus'], /--bogus/],
    [
      'a bad number',
      ['6881', '7001', '7002', '--fallback-after-ms', 'soon'],
      /--fallback-after-ms/,
    ],
    ['a bad log format', ['6881', '7001', '7002', '--log-format', 'xml'], /--log-format/],
    [
      'a pipeline of 0',
      ['6881', '7001', '7002', '--pipeline', '0'],
      /--pipeline: 0 is out of range/,
    ],
  ];
  for (const [what, args, message] of cases) {
    it(`${what}: one line on stderr, exit status 2, no stack`, async () => {
      const child = runPeerBin(cleanup, args);
      expect(await child.exited).toBe(2);
      const lines = child.stderr.split('\n').filter((l) => l !== '');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^swarmdrop-peer: error: /);
      expect(lines[0]).toMatch(message);
      expect(lines[0]).toContain('--help');
      expect(child.stderr).not.toContain('    at ');
      expect(child.stdout.lines).toHaveLength(0);
    });
  }

  it('a <port> already in use: one line naming it, exit status 2', async () => {
    const busy = createNetServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    cleanup.add(() => new Promise<void>((resolve) => busy.close(() => resolve())));
    const address = busy.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const child = runPeerBin(cleanup, [
      '1',
      `127.0.0.1:${port}`,
      '2',
      '--dir',
      await tempDir(cleanup),
    ]);
    expect(await child.exited).toBe(2);
    const lines = child.stderr.split('\n').filter((l) => l !== '');
    expect(lines).toEqual([
      `swarmdrop-peer: error: <port>: 127.0.0.1:${port} is already in use (see swarmdrop-peer --help)`,
    ]);
  });

  it('--help prints the usage on stdout and exits 0', async () => {
    const child = runPeerBin(cleanup, ['--help']);
    expect(await child.exited).toBe(0);
    expect(child.stdout.text()).toMatch(
      /^Usage: swarmdrop-peer <owner> <port> <download-neighbour>/,
    );
    for (const option of [
      '--dir',
      '--out',
      '--exit-when-done',
      '--fallback-after-ms',
      '--log-format',
    ])
      expect(child.stdout.text()).toContain(option);
    expect(child.stderr).toBe('');
  });

  it('an owner that never comes up: a clear error after --owner-timeout-ms, exit status 1', async () => {
    const [nobody, port, neighbour] = [await freePort(), await freePort(), await freePort()];
    const dir = await tempDir(cleanup);
    const child = runPeerBin(cleanup, [
      String(nobody),
      String(port),
      String(neighbour),
      '--dir',
      dir,
      '--owner-timeout-ms',
      '300',
    ]);
    expect(await child.exited).toBe(1);
    const lines = child.stderr.split('\n').filter((l) => l !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`the owner at 127.0.0.1:${nobody} did not serve the metainfo`);
    expect(child.stderr).not.toContain('    at ');
    expect(child.stdout.filter('waiting', { for: 'owner' }).length).toBeGreaterThan(0);
  });
});

describe('--log-format json', () => {
  it('prints one JSON object per line with the role, port and event', async () => {
    const [nobody, port, neighbour] = [await freePort(), await freePort(), await freePort()];
    const dir = await tempDir(cleanup);
    const child = runPeerBin(cleanup, [
      String(nobody),
      String(port),
      String(neighbour),
      '--dir',
      dir,
      '--owner-timeout-ms',
      '0',
      '--log-format',
      'json',
    ]);
    expect(await child.exited).toBe(1);
    const records = child.stdout.lines.map((l) => JSON.parse(l.line) as Record<string, unknown>);
    expect(records[0]).toMatchObject({
      role: 'peer',
      port,
      event: 'listening',
      dir,
      owner: `127.0.0.1:${nobody}`,
      neighbour: `127.0.0.1:${neighbour}`,
    });
    expect(records.every((r) => typeof r.time === 'string' && r.port === port)).toBe(true);
  });
});

describe('a metainfo with a dangerous name', () => {
  for (const name of ['../evil', '/etc/evil', '..', 'a\\..\\evil', 'C:evil']) {
    it(`refuses info.name ${JSON.stringify(name)} before writing anything`, async () => {
      const owner = await fakeOwner(torrentNamed(name));
      const base = await tempDir(cleanup);
      const dir = join(base, 'peer');
      await expect(
        Peer.start(
          {
            owner: { host: '127.0.0.1', port: owner },
            listen: { host: '127.0.0.1', port: 0 },
            neighbour: { host: '127.0.0.1', port: await freePort() },
            dir,
            exitWhenDone: false,
            fallbackAfterMs: 60_000,
            ownerTimeoutMs: 10_000,
            lingerMs: 0,
            logFormat: 'text',
          },
          { logger: captureLogger('peer').logger },
        ),
      ).rejects.toMatchObject({ code: 'ERR_METAINFO', field: 'info.name' });
      // Nothing written next to the working directory, nor a torrent inside it.
      expect(await readdir(base)).toEqual(['peer']);
      expect(await readdir(dir)).toEqual([]);
    });
  }

  it('the bin says which field was refused, in one line, with exit status 1', async () => {
    const owner = await fakeOwner(torrentNamed('../evil'));
    const dir = await tempDir(cleanup);
    const child = runPeerBin(cleanup, [
      String(owner),
      String(await freePort()),
      String(await freePort()),
      '--dir',
      dir,
    ]);
    expect(await child.exited).toBe(1);
    const lines = child.stderr.split('\n').filter((l) => l !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toBe(
      `swarmdrop-peer: error: metainfo info.name: "../evil" contains a path separator; refused the .torrent from the owner at 127.0.0.1:${owner}`,
    );
    expect(child.stderr).not.toContain('    at ');
  });
});

describe('--exit-when-done', () => {
  it('a lone peer finishes with 0 once the file is merged and lingerMs has passed', async () => {
    const { owner, data } = await startOwner(cleanup, { size: 5 * CHUNK, expectedPeers: 1 });
    const { peer, capture } = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: 0,
      neighbourPort: await freePort(),
      options: { exitWhenDone: true, lingerMs: 300 },
    });
    expect(await peer.finished).toBe(0);
    const events = capture.lines.map((l) => l.event);
    expect(events.indexOf('merged')).toBeGreaterThan(-1);
    expect(events.indexOf('done')).toBeGreaterThan(events.indexOf('merged'));
    const path = capture.filter('done')[0]!.fields.path!;
    expect((await readFile(path)).equals(data)).toBe(true);
  });

  it('waits for a connected upload neighbour to hold every chunk', async () => {
    const chunks = 20;
    // Batches of one chunk: A gets the rest by fallback, B from A.
    const { owner } = await startOwner(cleanup, { size: chunks * CHUNK, expectedPeers: chunks });
    // A may not exit before B, downloading from A, is complete (and lingering does not end it).
    const a = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: 0,
      neighbourPort: await freePort(),
      options: { exitWhenDone: true, lingerMs: 600_000, fallbackAfterMs: 100 },
    });
    await merged(a.capture);
    const b = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: 0,
      neighbourPort: a.peer.port,
      options: { fallbackAfterMs: 600_000 },
    });
    expect(await a.peer.finished).toBe(0);
    // B announced its last chunk to A only after storing it.
    expect(b.peer.status()).toMatchObject({ held: chunks, complete: true });
    expect(b.capture.filter('chunk-received', { via: 'neighbour' }).length).toBeGreaterThan(0);
  });
});

describe('the summary file', () => {
  it('is rebuilt from the chunk files at start, whatever it said before', async () => {
    const { owner } = await startOwner(cleanup, { size: 4 * CHUNK, expectedPeers: 1 });
    const dir = await tempDir(cleanup);
    await writeFile(join(dir, 'summary.txt'), '0\n1\n2\n3\n99\n');
    const { capture } = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: 0,
      neighbourPort: await freePort(),
      dir,
    });
    // It held nothing, so it asked for everything.
    await merged(capture);
    expect(capture.chunks('request-sent').sort((a, b) => a - b)).toEqual([0, 1, 2, 3]);
    expect(capture.filter('resumed')).toHaveLength(0);
  });
});
