import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  DEFAULT_CHUNK_SIZE,
  MAX_PIECE_LENGTH,
  OptionError,
  parseEncryptionPolicy,
  parseEndpoint,
  parseIntegerOption,
  parseLogFormat,
  parseRateLimit,
  parseTransportPolicy,
} from '@swarmdrop/protocol';
import { loadToken } from '@swarmdrop/protocol/node';
import {
  DEFAULT_EXPECTED_PEERS,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
  type OwnerOptions,
} from './owner.js';

export const PROGRAM = 'swarmdrop-owner';

export const USAGE = `Usage: ${PROGRAM} <port> <file> [options]

Splits <file> into chunks and serves it to swarmdrop peers and BitTorrent
clients. <port> may be HOST:PORT to bind one interface. The same port answers
BitTorrent and HTTP (GET /<name>.torrent, /announce, /status).

Options:
  --dir DIR                   working directory for chunks, summary.txt and
                              <name>.torrent (default: .swarmdrop/owner-<port>)
  --chunk-size BYTES          chunk size (default: ${DEFAULT_CHUNK_SIZE})
  --expected-peers N          sizes each peer's initial batch as
                              ceil(chunks / N) (default: ${DEFAULT_EXPECTED_PEERS})
  --max-connections N         connections served at once; more are refused
                              (default: ${DEFAULT_MAX_CONNECTIONS})
  --max-connections-per-address N
                              connections served at once from one source
                              address (IPv6: one /64); more are refused
                              (default: ${DEFAULT_MAX_CONNECTIONS_PER_ADDRESS})
  --handshake-timeout-ms MS   close a connection that has not completed its
                              BitTorrent handshake, or an HTTP request, within
                              this long (default: ${DEFAULT_HANDSHAKE_TIMEOUT_MS})
  --encryption POLICY         prefer|require|off: MSE/PE (RC4) for BitTorrent
                              connections (default: prefer; see README)
  --transport POLICY          both|tcp|utp: BitTorrent over TCP, µTP (UDP on
                              the same port number) or both (default: both)
  --public-host HOST          host written into the .torrent's announce URL
                              on disk (default: the bound host, or 127.0.0.1)
  --token-file FILE           make the swarm private: HTTP and announces need
                              this token, the wire admits only addresses that
                              announced with it, and the torrent is marked
                              private (BEP 27). Default: $SWARMDROP_TOKEN
  --upload-limit RATE         bytes per second sent to all BitTorrent
                              connections together, e.g. 500k, 2M, 10MiB
                              (k, M, G = 1000^n; Ki, Mi, Gi = 1024^n;
                              default: 0, no limit)
  --download-limit RATE       bytes per second received from all BitTorrent
                              connections together (same units; default: 0)
  --quiet                     no live status line on the terminal (log
                              lines are printed as always)
  --log-format text|json      console log format (default: text)
  -h, --help                  show this help
  -v, --version               show the version
`;

function parseOptions(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      dir: { type: 'string' },
      'chunk-size': { type: 'string' },
      'expected-peers': { type: 'string' },
      'max-connections': { type: 'string' },
      'max-connections-per-address': { type: 'string' },
      'handshake-timeout-ms': { type: 'string' },
      'public-host': { type: 'string' },
      'token-file': { type: 'string' },
      encryption: { type: 'string' },
      transport: { type: 'string' },
      'log-format': { type: 'string' },
      'upload-limit': { type: 'string' },
      'download-limit': { type: 'string' },
      quiet: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
  });
}

/** node:util's parse errors, in our words: `-5` is a bad port, not an unknown option. */
function argumentError(err: Error): OptionError {
  const unknown = /^Unknown option '([^']+)'/.exec(err.message);
  if (unknown) {
    const name = unknown[1]!;
    if (/^-\d+$/.test(name))
      return new OptionError('<port>', `"${name}" is not a port number (1-65535, or 0 for any)`);
    return new OptionError('arguments', `unknown option ${name}`);
  }
  return new OptionError('arguments', err.message.split('\n')[0]!);
}

/** What the command line gives: the owner's options, and how the terminal shows it. */
export interface OwnerCliOptions extends OwnerOptions {
  /** --quiet: no live status line. */
  readonly quiet: boolean;
}

export function parseOwnerArgs(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): OwnerCliOptions | 'help' | 'version' {
  let parsed: ReturnType<typeof parseOptions>;
  try {
    parsed = parseOptions(argv);
  } catch (err) {
    throw argumentError(err as Error);
  }
  const { values, positionals } = parsed;
  if (values.help) return 'help';
  if (values.version) return 'version';
  if (positionals.length < 2) throw new OptionError('arguments', 'expected <port> <file>');
  if (positionals.length > 2)
    throw new OptionError('arguments', `unexpected extra argument "${positionals[2]}"`);
  const endpoint = parseEndpoint(positionals[0]!, '<port>', true);
  const file = positionals[1]!;
  return {
    file,
    host: endpoint.host,
    port: endpoint.port,
    dir: resolve(values.dir ?? `.swarmdrop/owner-${endpoint.port}`),
    chunkSize:
      values['chunk-size'] === undefined
        ? DEFAULT_CHUNK_SIZE
        : parseIntegerOption(values['chunk-size'], '--chunk-size', 1, MAX_PIECE_LENGTH),
    expectedPeers:
      values['expected-peers'] === undefined
        ? DEFAULT_EXPECTED_PEERS
        : parseIntegerOption(values['expected-peers'], '--expected-peers', 1, 10_000),
    maxConnections:
      values['max-connections'] === undefined
        ? DEFAULT_MAX_CONNECTIONS
        : parseIntegerOption(values['max-connections'], '--max-connections', 1, 100_000),
    maxConnectionsPerAddress:
      values['max-connections-per-address'] === undefined
        ? DEFAULT_MAX_CONNECTIONS_PER_ADDRESS
        : parseIntegerOption(
            values['max-connections-per-address'],
            '--max-connections-per-address',
            1,
            100_000,
          ),
    handshakeTimeoutMs:
      values['handshake-timeout-ms'] === undefined
        ? DEFAULT_HANDSHAKE_TIMEOUT_MS
        : parseIntegerOption(
            values['handshake-timeout-ms'],
            '--handshake-timeout-ms',
            100,
            3_600_000,
          ),
    publicHost: values['public-host'],
    token: loadToken(values['token-file'], env),
    encryption: parseEncryptionPolicy(values.encryption),
    transport: parseTransportPolicy(values.transport),
    logFormat: parseLogFormat(values['log-format']),
    uploadLimitBytesPerSecond: parseRateLimit(values['upload-limit'], '--upload-limit'),
    downloadLimitBytesPerSecond: parseRateLimit(values['download-limit'], '--download-limit'),
    quiet: values.quiet ?? false,
  };
}
