/**
 * The peer's options: the command-line ones that are not about addresses or
 * encryption (those have their own files), and the one schema the command
 * line and Peer.start() share (same checks, same words, same defaults).
 */
import { readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { OptionError } from '@swarmdrop/protocol';
import { Cleanup, LogCapture, rejected, startOwner, thrown } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { type PeerCliOptions, parsePeerArgs, USAGE } from '../src/args.js';
import {
  DEFAULT_FALLBACK_AFTER_MS,
  DEFAULT_LINGER_MS,
  DEFAULT_LISTEN,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
  DEFAULT_MAX_PEERS,
  DEFAULT_METAINFO_PATH,
  DEFAULT_OWNER_TIMEOUT_MS,
  DEFAULT_PIPELINE_BLOCKS,
  PEER_FLAGS,
  PEER_OPTIONS,
  type PeerOptions,
  resolvePeerOptions,
} from '../src/options.js';
import { Peer } from '../src/peer.js';

describe('parsePeerArgs', () => {
  it('exchanges peers unless --no-pex', () => {
    expect(parsePeerArgs(['7000', '7001'])).toMatchObject({ pex: true });
    expect(parsePeerArgs(['7000', '7001', '--no-pex'])).toMatchObject({ pex: false });
  });

  it('has no rate limit and shows the status line by default', () => {
    expect(parsePeerArgs(['7000', '7001'])).toMatchObject({
      uploadLimitBytesPerSecond: 0,
      downloadLimitBytesPerSecond: 0,
      quiet: false,
    });
  });

  it('reads --upload-limit and --download-limit in bytes/s (k = 1000, Ki = 1024), and --quiet', () => {
    expect(
      parsePeerArgs([
        '7000',
        '7001',
        '--upload-limit',
        '500k',
        '--download-limit',
        '2MiB',
        '--quiet',
      ]),
    ).toMatchObject({
      uploadLimitBytesPerSecond: 500_000,
      downloadLimitBytesPerSecond: 2_097_152,
      quiet: true,
    });
    expect(parsePeerArgs(['7000', '7001', '--upload-limit', '0'])).toMatchObject({
      uploadLimitBytesPerSecond: 0,
    });
    expect(() => parsePeerArgs(['7000', '7001', '--download-limit', '2 Mbit'])).toThrow(
      /^--download-limit: "2 Mbit" is not a rate in bytes per second/,
    );
  });
});

/** The command line's options without the terminal's own (`--quiet`). */
function cliOptions(argv: string[]): Omit<PeerCliOptions, 'quiet'> {
  const parsed = parsePeerArgs(argv, {});
  if (typeof parsed === 'string') throw new Error(`parsed to ${parsed}`);
  const { quiet: _quiet, ...options } = parsed;
  return options;
}

/** What `OptionError` says after its field: `pipelineBlocks: 0 is out of range` -> `0 is out of range`. */
function reason(err: unknown): string {
  expect(err).toBeInstanceOf(OptionError);
  const { field, message } = err as OptionError;
  return message.slice(field.length + 2);
}

describe('one option schema for the command line and Peer.start', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());
  const owner = { host: '127.0.0.1', port: 6881 };

  // Before, start() checked nothing: { pipelineBlocks: 0 } or { maxPeers: -1 }
  // ran with whatever they meant downstream, while the flags were refused.
  it('refuses a bad value given to start() as the command line refuses its flag', async () => {
    const dir = await cleanup.tempDir();
    const cases: Array<[keyof PeerOptions, unknown, string[], string]> = [
      ['pipelineBlocks', 0, ['--pipeline=0'], '--pipeline'],
      ['pipelineBlocks', 4_097, ['--pipeline=4097'], '--pipeline'],
      ['maxPeers', 1_001, ['--max-peers=1001'], '--max-peers'],
      ['fallbackAfterMs', -1, ['--fallback-after-ms=-1'], '--fallback-after-ms'],
      ['ownerTimeoutMs', 1.5, ['--owner-timeout-ms=1.5'], '--owner-timeout-ms'],
      ['lingerMs', 86_400_001, ['--linger-ms=86400001'], '--linger-ms'],
      ['maxConnections', 0, ['--max-connections=0'], '--max-connections'],
      [
        'maxConnectionsPerAddress',
        100_001,
        ['--max-connections-per-address=100001'],
        '--max-connections-per-address',
      ],
      ['encryption', 'always', ['--encryption=always'], '--encryption'],
      ['transport', 'quic', ['--transport=quic'], '--transport'],
      ['logFormat', 'yaml', ['--log-format=yaml'], '--log-format'],
      ['uploadLimitBytesPerSecond', -1, ['--upload-limit=-1'], '--upload-limit'],
      ['downloadLimitBytesPerSecond', 2e12, ['--download-limit=2000000000000'], '--download-limit'],
      ['infoHash', 'abc', ['--infohash=abc'], '--infohash'],
      ['sha256', 'f'.repeat(63), [`--sha256=${'f'.repeat(63)}`], '--sha256'],
      // The positionals: start() names the option, the command line the argument.
      ['listen', { port: 70_000 }, [], '<port>'],
      ['neighbour', { host: '127.0.0.1', port: 0 }, [], '<download-neighbour>'],
      ['owner', { host: 'bad host', port: 6881 }, [], '<owner>'],
    ];
    const positional: Record<string, string[]> = {
      listen: ['6881', '70000'],
      neighbour: ['6881', '7001', '127.0.0.1:0'],
      owner: ['bad host:6881', '7001'],
    };
    for (const [key, value, flags, field] of cases) {
      const argv = [...(positional[key] ?? ['6881', '7001']), ...flags];
      const fromCli = thrown(() => parsePeerArgs(argv, {}));
      const fromStart = await rejected(
        Peer.start({ owner, dir: join(dir, 'p'), [key]: value } as PeerOptions, {
          logger: new LogCapture().logger('peer'),
        }),
      );
      expect((fromCli as OptionError).field, argv.join(' ')).toBe(field);
      expect((fromStart as OptionError).field, key).toBe(key);
      expect((fromStart as OptionError).code).toBe((fromCli as OptionError).code);
      expect(reason(fromStart), key).toBe(reason(fromCli));
    }
    // Refused before anything was made: no working directory.
    expect(await readdir(dir)).toEqual([]);
  });

  it('fills the same defaults: start() with only the owner runs as `<owner> 0` on the command line', async () => {
    expect(resolvePeerOptions({ owner: { port: 6881 } })).toEqual(cliOptions(['6881', '0']));
    expect(resolvePeerOptions({ owner, listen: { port: 7001 } })).toEqual(
      cliOptions(['127.0.0.1:6881', '7001']),
    );
    expect(
      resolvePeerOptions({ owner, neighbour: { port: 7002 }, moreNeighbours: [{ port: 7003 }] }),
    ).toEqual(cliOptions(['127.0.0.1:6881', '0', '7002,7003']));
    expect(resolvePeerOptions({ owner })).toMatchObject({
      listen: DEFAULT_LISTEN,
      dir: resolve('.swarmdrop/peer-0'),
      swarm: true,
      exitWhenDone: false,
      maxPeers: DEFAULT_MAX_PEERS,
      fallbackAfterMs: DEFAULT_FALLBACK_AFTER_MS,
      ownerTimeoutMs: DEFAULT_OWNER_TIMEOUT_MS,
      lingerMs: DEFAULT_LINGER_MS,
      pipelineBlocks: DEFAULT_PIPELINE_BLOCKS,
      maxConnections: DEFAULT_MAX_CONNECTIONS,
      maxConnectionsPerAddress: DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
      metainfoPath: DEFAULT_METAINFO_PATH,
      encryption: 'prefer',
      transport: 'both',
      logFormat: 'text',
    });
    // Pinned content as bytes or as the flag's hex: the same Buffer.
    const hash = 'ab'.repeat(20);
    expect(resolvePeerOptions({ owner, infoHash: Buffer.from(hash, 'hex') }).infoHash).toEqual(
      cliOptions(['6881', '0', '--infohash', hash]).infoHash,
    );
    expect(resolvePeerOptions({ owner, infoHash: hash }).infoHash).toEqual(
      Buffer.from(hash, 'hex'),
    );
  });

  it('a peer started with the owner, a host and a --dir runs with the command line options', async () => {
    const started = await startOwner(cleanup);
    const dir = join(await cleanup.tempDir(), 'work');
    const peer = await Peer.start(
      { owner: { host: '127.0.0.1', port: started.port }, listen: { host: '127.0.0.1' }, dir },
      { logger: new LogCapture().logger('peer') },
    );
    cleanup.add(() => peer.close());
    expect(peer.options).toEqual(
      cliOptions([`127.0.0.1:${started.port}`, '127.0.0.1:0', '--dir', dir]),
    );
    expect(peer.port).toBeGreaterThan(0);
    expect(peer.metainfo?.infoHash).toEqual(started.metainfo.infoHash);
  });

  it('refuses what no command line could give: no owner, an unknown key, a wrong type', () => {
    const cases: Array<[unknown, string]> = [
      [{}, 'owner: is required'],
      [{ owner, pipeline: 5 }, 'options: unknown option pipeline'],
      [{ owner, maxPeers: '5' }, 'maxPeers: expected a number, got string'],
      [{ owner, swarm: 'yes' }, 'swarm: expected a boolean, got string'],
      [{ owner, encryption: null }, 'encryption: expected a string, got null'],
      [{ owner: 'localhost:6881' }, 'owner: expected an object, got string'],
      [{ owner: { host: 'h' } }, 'owner.port: expected a number, got undefined'],
      [{ owner, infoHash: Buffer.alloc(19) }, 'infoHash: expected 20 bytes, got 19'],
      [{ owner, moreNeighbours: [{ port: 7003 }] }, 'moreNeighbours: needs a neighbour'],
      [{ owner, neighbour: owner, moreNeighbours: [{ port: 0 }] }, 'moreNeighbours[0]: port 0'],
      [{ owner, token: 'short' }, 'token: the token must be'],
      [null, 'options: expected an object'],
    ];
    for (const [input, message] of cases) {
      const err = thrown(() => resolvePeerOptions(input as PeerOptions));
      expect(err, JSON.stringify(input)).toBeInstanceOf(OptionError);
      expect((err as OptionError).message).toContain(message);
    }
  });

  it('USAGE lists every flag, and every option but the positionals has one', () => {
    for (const flag of PEER_FLAGS) expect(USAGE).toContain(`--${flag.name}`);
    const flagged = new Set(PEER_FLAGS.map((f) => f.key).filter((k) => k !== undefined));
    // trackerless comes from <owner> too: a magnet link without a swarmdrop tracker.
    const positional = [
      'owner',
      'metainfoPath',
      'trackerless',
      'listen',
      'neighbour',
      'moreNeighbours',
    ];
    expect(
      Object.keys(PEER_OPTIONS)
        .filter((k) => !positional.includes(k))
        .sort(),
    ).toEqual([...flagged].sort());
  });
});
