import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { join } from 'node:path';
import { bencodeEncode } from '@swarmdrop/protocol';
import {
  CHUNK,
  Cleanup,
  freePort,
  freePorts,
  merged,
  PEER_BIN,
  rawExchange,
  runBin,
  startOwner,
  startPeer,
} from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';

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
    ['no arguments', [], /expected <owner> <port> \[<download-neighbour>\]/],
    ['one argument', ['6881'], /expected <owner> <port> \[<download-neighbour>\]/],
    ['a bad --max-peers', ['6881', '7001', '--max-peers', '0'], /--max-peers/],
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
    [
      'an upload limit that is not a rate',
      ['6881', '7001', '--upload-limit', 'fast'],
      /--upload-limit: "fast" is not a rate in bytes per second \(examples: 500k, 2M, 10MiB/,
    ],
    [
      'a download limit in bits',
      ['6881', '7001', '--download-limit', '500kb'],
      /--download-limit: "500kb" is not a rate in bytes per second/,
    ],
    [
      'a per-address cap of 0',
      ['6881', '7001', '7002', '--max-connections-per-address', '0'],
      /--max-connections-per-address: 0 is out of range/,
    ],
  ];
  for (const [what, args, message] of cases) {
    it(`${what}: one line on stderr, exit status 2, no stack`, async () => {
      const child = runBin(cleanup, PEER_BIN, args);
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
    const child = runBin(cleanup, PEER_BIN, [
      '1',
      `127.0.0.1:${port}`,
      '2',
      '--dir',
      await cleanup.tempDir(),
    ]);
    expect(await child.exited).toBe(2);
    const lines = child.stderr.split('\n').filter((l) => l !== '');
    expect(lines).toEqual([
      `swarmdrop-peer: error: <port>: 127.0.0.1:${port} is already in use (see swarmdrop-peer --help)`,
    ]);
  });

  it('--help prints the usage on stdout and exits 0', async () => {
    const child = runBin(cleanup, PEER_BIN, ['--help']);
    expect(await child.exited).toBe(0);
    expect(child.stdout.text()).toMatch(
      /^Usage: swarmdrop-peer <owner> <port> \[<download-neighbour>\]/,
    );
    for (const option of [
      '--dir',
      '--out',
      '--exit-when-done',
      '--swarm',
      '--max-peers',
      '--fallback-after-ms',
      '--log-format',
    ])
      expect(child.stdout.text()).toContain(option);
    expect(child.stderr).toBe('');
  });
});

describe('a --dir holding files swarmdrop did not write', () => {
  // Opening the store used to delete, recursively, everything under <dir>/chunks/ that was not a chunk file.
  it('is refused with one line naming them, exit status 2, and nothing is deleted', async () => {
    const dir = await cleanup.tempDir();
    await mkdir(join(dir, 'chunks', 'holiday'), { recursive: true });
    await writeFile(join(dir, 'chunks', 'holiday', 'beach.jpg'), 'precious');
    await writeFile(join(dir, 'chunks', 'todo.txt'), 'also precious');
    const child = runBin(cleanup, PEER_BIN, ['1', '0', '2', '--dir', dir]);
    expect(await child.exited).toBe(2);
    const lines = child.stderr.split('\n').filter((l) => l !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^swarmdrop-peer: error: --dir: .*chunks holds 2 entries swarmdrop did not write \("holiday", "todo.txt"\)/,
    );
    expect(await readFile(join(dir, 'chunks', 'holiday', 'beach.jpg'), 'utf8')).toBe('precious');
    expect(await readFile(join(dir, 'chunks', 'todo.txt'), 'utf8')).toBe('also precious');
  });
});

describe('--log-format json', () => {
  it('prints one JSON object per line with the role, port and event', async () => {
    const [nobody, port, neighbour] = await freePorts(3);
    const dir = await cleanup.tempDir();
    const child = runBin(cleanup, PEER_BIN, [
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
    expect(records.some((r) => r.event === 'waiting' && r.for === 'owner')).toBe(true);
    expect(records.every((r) => typeof r.time === 'string' && r.port === port)).toBe(true);
  });
});

describe('a metainfo with a dangerous name', () => {
  for (const name of [
    '../evil',
    '/etc/evil',
    '..',
    'a\\..\\evil',
    'C:evil',
    'invoice\u202efdp.exe',
  ]) {
    it(`refuses info.name ${JSON.stringify(name)} before writing anything`, async () => {
      const owner = await fakeOwner(torrentNamed(name));
      const base = await cleanup.tempDir();
      const dir = join(base, 'peer');
      await expect(
        startPeer(cleanup, { ownerPort: owner, port: 0, neighbourPort: await freePort(), dir }),
      ).rejects.toMatchObject({ code: 'ERR_METAINFO', field: 'info.name' });
      // Nothing written next to the working directory, nor a torrent inside it.
      expect(await readdir(base)).toEqual(['peer']);
      expect(await readdir(dir)).toEqual([]);
    });
  }

  it('the bin says which field was refused, in one line, with exit status 1', async () => {
    const owner = await fakeOwner(torrentNamed('../evil'));
    const [port, neighbour] = await freePorts(2);
    const child = runBin(cleanup, PEER_BIN, [
      String(owner),
      String(port),
      String(neighbour),
      '--dir',
      await cleanup.tempDir(),
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

describe('a malformed HTTP request on the peer port', () => {
  // Bug pinned here: one request with a target like `//[` crashed the whole
  // peer (`new URL` threw inside the request listener).
  it('is answered 400 and costs only that request', async () => {
    const { owner } = await startOwner(cleanup, { size: 3 * CHUNK, options: { expectedPeers: 1 } });
    const { peer } = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: 0,
      neighbourPort: await freePort(),
    });
    const answer = await rawExchange(
      peer.port,
      'GET //[ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    expect(answer).toMatch(/^HTTP\/1\.1 400/);
    const status = await rawExchange(
      peer.port,
      'GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    expect(status).toMatch(/^HTTP\/1\.1 200/);
  });
});

describe('--exit-when-done', () => {
  it('a lone peer finishes with 0 once the file is merged and lingerMs has passed', async () => {
    const { owner, data } = await startOwner(cleanup, {
      size: 5 * CHUNK,
      options: { expectedPeers: 1 },
    });
    const { peer, log } = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: 0,
      neighbourPort: await freePort(),
      options: { exitWhenDone: true, lingerMs: 300 },
    });
    expect(await peer.finished).toBe(0);
    const events = log.lines.map((l) => l.event);
    expect(events.indexOf('merged')).toBeGreaterThan(-1);
    expect(events.indexOf('done')).toBeGreaterThan(events.indexOf('merged'));
    const path = log.filter('done')[0]!.fields.path!;
    expect((await readFile(path)).equals(data)).toBe(true);
  });

  it('waits for a connected upload neighbour to hold every chunk', async () => {
    const chunks = 20;
    // Batches of one chunk: A gets the rest by fallback, B from A.
    const { owner } = await startOwner(cleanup, {
      size: chunks * CHUNK,
      options: { expectedPeers: chunks },
    });
    // A may not exit before B, downloading from A, is complete (and lingering does not end it).
    const a = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: 0,
      neighbourPort: await freePort(),
      options: { exitWhenDone: true, lingerMs: 600_000, fallbackAfterMs: 100 },
    });
    await merged(a.log);
    const b = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: 0,
      neighbourPort: a.peer.port,
      options: { fallbackAfterMs: 600_000 },
    });
    expect(await a.peer.finished).toBe(0);
    // B announced its last chunk to A only after storing it.
    expect(b.peer.status()).toMatchObject({ held: chunks, complete: true });
    expect(b.log.filter('chunk-received', { via: 'neighbour' }).length).toBeGreaterThan(0);
  });
});

describe('the summary file', () => {
  it('is rebuilt from the chunk files at start, whatever it said before', async () => {
    const { owner } = await startOwner(cleanup, { size: 4 * CHUNK, options: { expectedPeers: 1 } });
    const dir = await cleanup.tempDir();
    await writeFile(join(dir, 'summary.txt'), '0\n1\n2\n3\n99\n');
    const { log } = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: 0,
      neighbourPort: await freePort(),
      dir,
    });
    // It held nothing, so it asked for everything.
    await merged(log);
    expect(log.chunks('request-sent').sort((a, b) => a - b)).toEqual([0, 1, 2, 3]);
    expect(log.filter('resumed')).toHaveLength(0);
  });
});
