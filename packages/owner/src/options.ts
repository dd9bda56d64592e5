/**
 * The owner's options, declared once: for each, how the command line spells
 * it, how a value is read and bounded, its default, and its help text. The
 * command line (args.ts) and `Owner.start()` both go through this table, so
 * `--chunk-size 0` and `Owner.start({ chunkSize: 0 })` are refused by the same
 * check with the same words, and take the same defaults.
 *
 * The schema's machinery (value specs, resolveOptions, the parseArgs config
 * and USAGE lines from the flags) is protocol's option-schema.ts, shared
 * with the peer.
 */
import { resolve } from 'node:path';
import {
  DEFAULT_CHUNK_SIZE,
  type EncryptionPolicy,
  MAX_PIECE_LENGTH,
  OptionError,
  parseEncryptionPolicy,
  parseTransportPolicy,
  type TransportPolicy,
} from '@swarmdrop/protocol';
import { DEFAULT_HANDSHAKE_TIMEOUT_MS } from '@swarmdrop/protocol/node';
import {
  anyTextValue,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
  integerValue,
  type LogFormat,
  type OptionFlag,
  type OptionSchema,
  parseLogFormat,
  parseToken,
  rateValue,
  resolveOptions,
  SERVICE_FLAGS,
  textValue,
} from '@swarmdrop/service';
import { DEFAULT_TRACKER_MAX_PEERS, DEFAULT_TRACKER_MAX_PER_ADDRESS } from './tracker.js';

/** Defaults shared with the protocol's server and connection. */
export { DEFAULT_HANDSHAKE_TIMEOUT_MS } from '@swarmdrop/protocol/node';
export { DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_ADDRESS } from '@swarmdrop/service';
export const DEFAULT_EXPECTED_PEERS = 5;
/**
 * Highest `--tracker-max-peers`: a record costs a few hundred bytes in the
 * tracker and the peer table, so this bounds them near 100 MB.
 */
export const MAX_TRACKER_MAX_PEERS = 200_000;
/** `Owner.start()` without a port listens on any free one (`owner.port` says which), as `net.Server.listen()` does. */
export const DEFAULT_PORT = 0;

/**
 * What `Owner.start()` accepts. Only `file` is required; every other field
 * takes the command line's default (the UPPER_CASE constants) and is
 * checked against the same bounds as its flag.
 */
export interface OwnerOptions {
  /** The file to distribute; only ever read. */
  readonly file: string;
  /** Working directory for chunk files, summary and `.torrent` (default `.swarmdrop/owner-<port>`). */
  readonly dir?: string | undefined;
  /** Interface to bind; all interfaces when undefined. */
  readonly host?: string | undefined;
  /** 0 picks a free port (default DEFAULT_PORT). */
  readonly port?: number | undefined;
  /** Bytes per chunk (default DEFAULT_CHUNK_SIZE). */
  readonly chunkSize?: number | undefined;
  /** Peers the initial batches are split over (default DEFAULT_EXPECTED_PEERS). */
  readonly expectedPeers?: number | undefined;
  /** Records the tracker keeps in all (default DEFAULT_TRACKER_MAX_PEERS). */
  readonly trackerMaxPeers?: number | undefined;
  /** Records the tracker keeps per source address, an IPv6 /64 (default DEFAULT_TRACKER_MAX_PER_ADDRESS). */
  readonly trackerMaxPerAddress?: number | undefined;
  /** Connections served at once (default DEFAULT_MAX_CONNECTIONS). */
  readonly maxConnections?: number | undefined;
  /** Connections held at once from one source address (default DEFAULT_MAX_CONNECTIONS_PER_ADDRESS). */
  readonly maxConnectionsPerAddress?: number | undefined;
  /** Deadline for a connection's first byte, its handshake, and each HTTP request (default DEFAULT_HANDSHAKE_TIMEOUT_MS). */
  readonly handshakeTimeoutMs?: number | undefined;
  /** Host written into the `.torrent` on disk's announce URL (HTTP downloads use the request's Host). */
  readonly publicHost?: string | undefined;
  /** Console log format of the logger the owner makes (default text). */
  readonly logFormat?: LogFormat | undefined;
  /**
   * Makes the swarm private: the metainfo, announces and the detailed
   * /status need it, BitTorrent connections are accepted only from addresses
   * that announced with it within ANNOUNCE_EXPIRY_MS, and the torrent is
   * marked private (BEP 27), which changes its info-hash.
   */
  readonly token?: string | undefined;
  /** MSE/PE policy for incoming BitTorrent connections (default prefer). */
  readonly encryption?: EncryptionPolicy | undefined;
  /** TCP, µTP (UDP on the same port number) or both for BitTorrent (default both). */
  readonly transport?: TransportPolicy | undefined;
  /** Bytes per second sent over all BitTorrent connections together; 0: no limit (default). */
  readonly uploadLimitBytesPerSecond?: number | undefined;
  /** Bytes per second received over all BitTorrent connections together; 0: no limit (default). */
  readonly downloadLimitBytesPerSecond?: number | undefined;
}

/** The options an owner runs with: checked, every default filled in. */
export interface ResolvedOwnerOptions {
  readonly file: string;
  /** Absolute. */
  readonly dir: string;
  readonly host: string | undefined;
  readonly port: number;
  readonly chunkSize: number;
  readonly expectedPeers: number;
  readonly trackerMaxPeers: number;
  readonly trackerMaxPerAddress: number;
  readonly maxConnections: number;
  readonly maxConnectionsPerAddress: number;
  readonly handshakeTimeoutMs: number;
  readonly publicHost: string | undefined;
  readonly logFormat: LogFormat;
  readonly token: string | undefined;
  readonly encryption: EncryptionPolicy;
  readonly transport: TransportPolicy;
  readonly uploadLimitBytesPerSecond: number;
  readonly downloadLimitBytesPerSecond: number;
}

type Key = keyof ResolvedOwnerOptions;

/** Every field of the owner's options, with how it is read and its default. */
export const OWNER_OPTIONS: OptionSchema<ResolvedOwnerOptions> = {
  file: {
    ...textValue((t, field) => {
      if (t === '') throw new OptionError(field, 'is empty; name the file to distribute');
      return t;
    }),
    required: 'is required: the path of the file to distribute',
    // Never taken: a missing file is refused (required).
    default: '',
  },
  host: { ...anyTextValue, default: undefined },
  port: { ...integerValue(0, 65_535), default: DEFAULT_PORT },
  // After port: its default names the port.
  dir: { ...textValue((t) => resolve(t)), default: (o) => resolve(`.swarmdrop/owner-${o.port}`) },
  chunkSize: { ...integerValue(1, MAX_PIECE_LENGTH), default: DEFAULT_CHUNK_SIZE },
  expectedPeers: { ...integerValue(1, 10_000), default: DEFAULT_EXPECTED_PEERS },
  trackerMaxPeers: {
    ...integerValue(1, MAX_TRACKER_MAX_PEERS),
    default: DEFAULT_TRACKER_MAX_PEERS,
  },
  trackerMaxPerAddress: {
    ...integerValue(1, MAX_TRACKER_MAX_PEERS),
    default: DEFAULT_TRACKER_MAX_PER_ADDRESS,
  },
  maxConnections: { ...integerValue(1, 100_000), default: DEFAULT_MAX_CONNECTIONS },
  maxConnectionsPerAddress: {
    ...integerValue(1, 100_000),
    default: DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
  },
  handshakeTimeoutMs: { ...integerValue(100, 3_600_000), default: DEFAULT_HANDSHAKE_TIMEOUT_MS },
  publicHost: { ...anyTextValue, default: undefined },
  logFormat: { ...textValue(parseLogFormat), default: 'text' },
  token: { ...textValue(parseToken), default: undefined },
  encryption: { ...textValue(parseEncryptionPolicy), default: parseEncryptionPolicy(undefined) },
  transport: { ...textValue(parseTransportPolicy), default: parseTransportPolicy(undefined) },
  uploadLimitBytesPerSecond: { ...rateValue, default: 0 },
  downloadLimitBytesPerSecond: { ...rateValue, default: 0 },
};

/**
 * One command-line flag (protocol's OptionFlag): `--token-file` sets
 * `token` from the file it names.
 */
export type OwnerFlag = OptionFlag<Key>;

/** The flags in USAGE order. docs/owner.md quotes this help and details each flag; keep them in step. */
export const OWNER_FLAGS: readonly OwnerFlag[] = [
  {
    name: 'dir',
    arg: 'DIR',
    key: 'dir',
    help: [
      'working directory for chunks, summary.txt and',
      '<name>.torrent (default: .swarmdrop/owner-<port>)',
    ],
  },
  {
    name: 'chunk-size',
    arg: 'BYTES',
    key: 'chunkSize',
    help: [`chunk size (default: ${DEFAULT_CHUNK_SIZE})`],
  },
  {
    name: 'expected-peers',
    arg: 'N',
    key: 'expectedPeers',
    help: [
      "sizes each peer's initial batch as",
      `ceil(chunks / N) (default: ${DEFAULT_EXPECTED_PEERS})`,
    ],
  },
  {
    name: 'tracker-max-peers',
    arg: 'N',
    key: 'trackerMaxPeers',
    help: [
      'tracker records kept in all; past it, a new one',
      'replaces the least recently announced',
      `(default: ${DEFAULT_TRACKER_MAX_PEERS})`,
    ],
  },
  {
    name: 'tracker-max-per-address',
    arg: 'N',
    key: 'trackerMaxPerAddress',
    help: [
      'tracker records kept per source address (IPv6:',
      'one /64); past it, a new one replaces that',
      `address's oldest (default: ${DEFAULT_TRACKER_MAX_PER_ADDRESS})`,
    ],
  },
  {
    name: 'max-connections',
    arg: 'N',
    key: 'maxConnections',
    help: [
      'BitTorrent connections served at once; more',
      `are refused (default: ${DEFAULT_MAX_CONNECTIONS})`,
    ],
  },
  {
    name: 'max-connections-per-address',
    arg: 'N',
    key: 'maxConnectionsPerAddress',
    help: [
      'BitTorrent connections served at once from one',
      'source address (IPv6: one /64); more are refused',
      `(default: ${DEFAULT_MAX_CONNECTIONS_PER_ADDRESS})`,
    ],
  },
  {
    name: 'handshake-timeout-ms',
    arg: 'MS',
    key: 'handshakeTimeoutMs',
    help: [
      'close a connection that has not completed its',
      'BitTorrent handshake, or an HTTP request, within',
      `this long (default: ${DEFAULT_HANDSHAKE_TIMEOUT_MS})`,
    ],
  },
  {
    name: 'encryption',
    arg: 'POLICY',
    key: 'encryption',
    help: [
      'prefer|require|off: MSE/PE (RC4) for BitTorrent',
      'connections (default: prefer; docs/transports.md)',
    ],
  },
  {
    name: 'transport',
    arg: 'POLICY',
    key: 'transport',
    help: [
      'both|tcp|utp: BitTorrent over TCP, µTP (UDP on',
      'the same port number) or both (default: both)',
    ],
  },
  {
    name: 'public-host',
    arg: 'HOST',
    key: 'publicHost',
    help: [
      "host written into the .torrent's announce URL",
      'on disk (default: the bound host, or 127.0.0.1)',
    ],
  },
  {
    name: 'token-file',
    arg: 'FILE',
    key: 'token',
    help: [
      'make the swarm private: HTTP and announces need',
      'this token, the wire admits only addresses that',
      'announced with it, and the torrent is marked',
      'private (BEP 27). Default: $SWARMDROP_TOKEN',
    ],
  },
  ...SERVICE_FLAGS,
];

/**
 * Checks `input` (what `Owner.start()` was given, or what the command line
 * parsed) and fills in every default. A value out of bounds, of the wrong
 * type, or a key that is no option is an OptionError naming it: the key for
 * a library caller (`chunkSize: 0 is out of range (1-16777216)`), as the
 * command line names the flag (`--chunk-size: 0 is out of range ...`).
 */
export function resolveOwnerOptions(input: OwnerOptions): ResolvedOwnerOptions {
  return resolveOptions(OWNER_OPTIONS, input, 'owner');
}
