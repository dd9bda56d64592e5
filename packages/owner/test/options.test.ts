/**
 * Options: what the command line parses to, what Owner.start refuses (naming
 * the field), and a --dir that would overwrite the file being distributed.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DEFAULT_CHUNK_SIZE, OptionError } from '@swarmdrop/protocol';
import {
  Cleanup,
  LogCapture,
  ownerOptions,
  randomFile,
  rejected,
  thrown,
} from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DEFAULT_EXPECTED_PEERS,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
  DEFAULT_TRACKER_MAX_PEERS,
  DEFAULT_TRACKER_MAX_PER_ADDRESS,
  OWNER_FLAGS,
  OWNER_OPTIONS,
  Owner,
  type OwnerCliOptions,
  type OwnerOptions,
  parseOwnerArgs,
  resolveOwnerOptions,
  USAGE,
} from '../src/index.js';

/** The command line's options without the terminal's own (`--quiet`). */
function cliOptions(argv: string[]): Omit<OwnerCliOptions, 'quiet'> {
  const parsed = parseOwnerArgs(argv, {});
  if (typeof parsed === 'string') throw new Error(`parsed to ${parsed}`);
  const { quiet: _quiet, ...options } = parsed;
  return options;
}

/** What `OptionError` says after its field: `chunkSize: 0 is out of range` -> `0 is out of range`. */
function reason(err: unknown): string {
  expect(err).toBeInstanceOf(OptionError);
  const { field, message } = err as OptionError;
  return message.slice(field.length + 2);
}

describe('parseOwnerArgs', () => {
  it('reads port, host:port and [v6]:port, with documented defaults', () => {
    expect(parseOwnerArgs(['7000', 'movie.mkv'])).toEqual({
      file: 'movie.mkv',
      host: undefined,
      port: 7000,
      dir: resolve('.swarmdrop/owner-7000'),
      chunkSize: DEFAULT_CHUNK_SIZE,
      expectedPeers: DEFAULT_EXPECTED_PEERS,
      maxConnections: DEFAULT_MAX_CONNECTIONS,
      maxConnectionsPerAddress: DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
      trackerMaxPeers: DEFAULT_TRACKER_MAX_PEERS,
      trackerMaxPerAddress: DEFAULT_TRACKER_MAX_PER_ADDRESS,
      handshakeTimeoutMs: DEFAULT_HANDSHAKE_TIMEOUT_MS,
      publicHost: undefined,
      logFormat: 'text',
      encryption: 'prefer',
      transport: 'both',
      uploadLimitBytesPerSecond: 0,
      downloadLimitBytesPerSecond: 0,
      quiet: false,
    });
    expect(
      parseOwnerArgs(['7000', 'f', '--upload-limit', '2M', '--download-limit', '10MiB', '--quiet']),
    ).toMatchObject({
      uploadLimitBytesPerSecond: 2_000_000,
      downloadLimitBytesPerSecond: 10_485_760,
      quiet: true,
    });
    expect(
      parseOwnerArgs(['7000', 'f', '--encryption', 'require', '--transport', 'utp']),
    ).toMatchObject({
      encryption: 'require',
      transport: 'utp',
    });
    expect(() => parseOwnerArgs(['7000', 'f', '--encryption', 'always'])).toThrow(
      /--encryption: "always" is not one of: prefer, require, off/,
    );
    expect(() => parseOwnerArgs(['7000', 'f', '--transport', 'udp'])).toThrow(
      /--transport: "udp" is not one of: both, tcp, utp/,
    );
    expect(parseOwnerArgs(['10.0.0.5:7000', 'f'])).toMatchObject({ host: '10.0.0.5', port: 7000 });
    expect(parseOwnerArgs(['[::1]:0', 'f'])).toMatchObject({ host: '::1', port: 0 });
    expect(
      parseOwnerArgs([
        '7000',
        'f',
        '--dir',
        'work',
        '--chunk-size',
        '16384',
        '--expected-peers',
        '3',
        '--max-connections',
        '9',
        '--max-connections-per-address',
        '4',
        '--tracker-max-peers',
        '20000',
        '--tracker-max-per-address',
        '500',
        '--handshake-timeout-ms',
        '500',
        '--public-host',
        'owner.example',
        '--log-format',
        'json',
      ]),
    ).toMatchObject({
      dir: resolve('work'),
      chunkSize: 16_384,
      expectedPeers: 3,
      maxConnections: 9,
      maxConnectionsPerAddress: 4,
      trackerMaxPeers: 20_000,
      trackerMaxPerAddress: 500,
      handshakeTimeoutMs: 500,
      publicHost: 'owner.example',
      logFormat: 'json',
    });
    expect(parseOwnerArgs(['--help'])).toBe('help');
    expect(parseOwnerArgs(['-v'])).toBe('version');
  });

  it('refuses bad values with an OptionError naming the field', () => {
    const cases: Array<[string[], RegExp]> = [
      [['7000'], /expected <port> <file>/],
      [['x', 'f'], /<port>/],
      [['-1', 'f'], /<port>: "-1"/],
      [['65536', 'f'], /out of range/],
      [['7000', 'f', '--chunk-size', '1.5'], /--chunk-size/],
      [['7000', 'f', '--expected-peers', '0'], /--expected-peers/],
      [['7000', 'f', '--max-connections-per-address', '0'], /--max-connections-per-address/],
      [['7000', 'f', '--tracker-max-peers', '0'], /--tracker-max-peers: 0 is out of range/],
      [['7000', 'f', '--tracker-max-peers', 'many'], /--tracker-max-peers: "many"/],
      [['7000', 'f', '--tracker-max-per-address', '1e3'], /--tracker-max-per-address/],
      [['7000', 'f', '--log-format', 'yaml'], /--log-format/],
      [['7000', 'f', '--nope'], /unknown option --nope/],
    ];
    for (const [argv, message] of cases) {
      const caught = thrown(() => parseOwnerArgs(argv));
      expect(caught, argv.join(' ')).toBeInstanceOf(OptionError);
      expect((caught as OptionError).message).toMatch(message);
    }
  });
});

describe('one option schema for the command line and Owner.start', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  // Before, start() had its own checks with other bounds (expectedPeers up to
  // 2^53, handshakeTimeoutMs from 1 ms) and other words than the flags.
  it('refuses a bad value given to start() as the command line refuses its flag', async () => {
    const dir = await cleanup.tempDir();
    const file = join(dir, 'f.bin');
    await randomFile(file, 1000);
    const cases: Array<[keyof OwnerOptions, unknown, string]> = [
      ['chunkSize', -1, '--chunk-size=-1'],
      ['chunkSize', 0, '--chunk-size=0'],
      ['chunkSize', 1.5, '--chunk-size=1.5'],
      ['chunkSize', 16_777_217, '--chunk-size=16777217'],
      ['expectedPeers', 10_001, '--expected-peers=10001'],
      ['maxConnections', 0, '--max-connections=0'],
      ['maxConnectionsPerAddress', 100_001, '--max-connections-per-address=100001'],
      ['trackerMaxPeers', 200_001, '--tracker-max-peers=200001'],
      ['trackerMaxPerAddress', -5, '--tracker-max-per-address=-5'],
      ['handshakeTimeoutMs', 50, '--handshake-timeout-ms=50'],
      ['encryption', 'always', '--encryption=always'],
      ['transport', 'udp', '--transport=udp'],
      ['logFormat', 'yaml', '--log-format=yaml'],
      ['uploadLimitBytesPerSecond', -1, '--upload-limit=-1'],
      ['downloadLimitBytesPerSecond', 2e12, '--download-limit=2000000000000'],
    ];
    for (const [key, value, flag] of cases) {
      const fromCli = thrown(() => parseOwnerArgs(['0', file, flag], {}));
      const fromStart = await rejected(
        Owner.start({ file, dir: join(dir, 'o'), [key]: value } as OwnerOptions, {
          logger: new LogCapture().logger('owner'),
        }),
      );
      expect((fromCli as OptionError).field, flag).toBe(flag.split('=')[0]);
      expect((fromStart as OptionError).field, flag).toBe(key);
      expect((fromStart as OptionError).code).toBe((fromCli as OptionError).code);
      expect(reason(fromStart), flag).toBe(reason(fromCli));
    }
  });

  it('fills the same defaults: start() with only a file runs as the command line with only <port> <file>', async () => {
    const dir = await cleanup.tempDir();
    const file = join(dir, 'f.bin');
    await randomFile(file, 1000);
    // Resolved without starting: the default --dir is relative to the working directory.
    expect(resolveOwnerOptions({ file })).toEqual(cliOptions(['0', file]));
    expect(resolveOwnerOptions({ file, port: 7000 })).toEqual(cliOptions(['7000', file]));
    const work = join(dir, 'work');
    const owner = await Owner.start(
      { file, dir: work, host: '127.0.0.1' },
      { logger: new LogCapture().logger('owner') },
    );
    cleanup.add(() => owner.close());
    expect(owner.options).toEqual(cliOptions(['127.0.0.1:0', file, '--dir', work]));
    expect(owner.options).toMatchObject({
      chunkSize: DEFAULT_CHUNK_SIZE,
      expectedPeers: DEFAULT_EXPECTED_PEERS,
      encryption: 'prefer',
      transport: 'both',
      uploadLimitBytesPerSecond: 0,
    });
    expect(owner.port).toBeGreaterThan(0);
  });

  it('refuses what no command line could give: a missing file, an unknown key, a wrong type', () => {
    const cases: Array<[unknown, string]> = [
      [{}, 'file: is required'],
      [{ file: 'f', chunksize: 5 }, 'options: unknown option chunksize'],
      [{ file: 'f', chunkSize: '5' }, 'chunkSize: expected a number, got string'],
      [{ file: 'f', encryption: null }, 'encryption: expected a string, got null'],
      [{ file: 'f', token: 'short' }, 'token: the token must be'],
      [null, 'options: expected an object'],
    ];
    for (const [input, message] of cases) {
      const err = thrown(() => resolveOwnerOptions(input as OwnerOptions));
      expect(err, JSON.stringify(input)).toBeInstanceOf(OptionError);
      expect((err as OptionError).message).toContain(message);
    }
  });

  it('USAGE lists every flag, and every option but <port> <file> has one', () => {
    for (const flag of OWNER_FLAGS) expect(USAGE).toContain(`--${flag.name}`);
    const flagged = new Set(OWNER_FLAGS.map((f) => f.key).filter((k) => k !== undefined));
    const positional = ['file', 'host', 'port'];
    expect(
      Object.keys(OWNER_OPTIONS)
        .filter((k) => !positional.includes(k))
        .sort(),
    ).toEqual([...flagged].sort());
  });
});

describe('Owner.start refuses', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('option values out of range, naming the field, before touching the disk', async () => {
    const dir = await cleanup.tempDir();
    const path = join(dir, 'f.bin');
    await randomFile(path, 1000);
    for (const [field, value] of [
      ['chunkSize', 0],
      ['chunkSize', 1.5],
      ['port', 70_000],
      ['expectedPeers', 0],
      ['maxConnections', -1],
      ['handshakeTimeoutMs', Number.NaN],
    ] as const) {
      const err = await rejected(
        Owner.start(ownerOptions(path, join(dir, 'o'), { [field]: value }), {
          logger: new LogCapture().logger('owner'),
        }),
      );
      expect(err).toBeInstanceOf(OptionError);
      expect((err as OptionError).field).toBe(field);
      expect((err as OptionError).code).toBe('ERR_OPTION');
    }
  });

  // A source named summary.txt, distributed with --dir set to its own
  // directory, used to be overwritten by the chunk summary.
  it('a --dir where it would overwrite or delete the file being distributed', async () => {
    const dir = await cleanup.tempDir();
    await mkdir(join(dir, 'chunks'));
    const files = [join(dir, 'summary.txt'), join(dir, 'chunks', 'data.bin')];
    const contents = await Promise.all(files.map((path) => randomFile(path, 5000)));
    for (const [k, path] of files.entries()) {
      const log = new LogCapture();
      const err = await rejected(
        Owner.start(ownerOptions(path, dir), { logger: log.logger('owner') }),
      );
      expect(err).toBeInstanceOf(OptionError);
      expect((err as OptionError).message).toMatch(/would overwrite/);
      expect((await readFile(path)).equals(contents[k]!)).toBe(true);
      expect(log.lines).toHaveLength(0);
    }
    // The same file with a --dir of its own is fine.
    const owner = await Owner.start(ownerOptions(files[0]!, join(dir, 'elsewhere')), {
      logger: new LogCapture().logger('owner'),
    });
    cleanup.add(() => owner.close());
    await owner.close();
    expect((await readFile(files[0]!)).equals(contents[0]!)).toBe(true);
  });
});
