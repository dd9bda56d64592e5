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
  Owner,
  parseOwnerArgs,
} from '../src/index.js';

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
