/**
 * The peer's options, declared once: for each, how the command line spells
 * it, how a value is read and bounded, its default, and its help text. The
 * command line (args.ts) and `Peer.start()` both go through this table, so
 * `--pipeline 0` and `Peer.start({ ..., pipelineBlocks: 0 })` are refused by
 * the same check with the same words, and take the same defaults. The
 * machinery is protocol's option-schema.ts, shared with the owner.
 */
import { resolve } from 'node:path';
import {
  type EncryptionPolicy,
  type Endpoint,
  OptionError,
  parseEncryptionPolicy,
  parseTransportPolicy,
  type TransportPolicy,
} from '@swarmdrop/protocol';
import {
  bytesValue,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
  endpointValue,
  integerValue,
  type LogFormat,
  type OptionFlag,
  type OptionSchema,
  parseInfoHash,
  parseLogFormat,
  parseSha256,
  parseToken,
  rateValue,
  resolveOptions,
  SERVICE_FLAGS,
  switchValue,
  textValue,
  type ValueSpec,
} from '@swarmdrop/service';
import { DEFAULT_PIPELINE_BLOCKS } from './engine/scheduler.js';
import { DEFAULT_MAX_PEERS } from './swarm/swarm-session.js';

/** Defaults shared with the protocol's server. */
export { DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_ADDRESS } from '@swarmdrop/service';
export { DEFAULT_PIPELINE_BLOCKS } from './engine/scheduler.js';
export { DEFAULT_MAX_PEERS } from './swarm/swarm-session.js';
export const DEFAULT_FALLBACK_AFTER_MS = 10_000;
export const DEFAULT_OWNER_TIMEOUT_MS = 60_000;
export const DEFAULT_LINGER_MS = 5_000;
/** Where the metainfo is fetched from when `<owner>` is given as PORT or HOST:PORT. */
export const DEFAULT_METAINFO_PATH = '/metainfo.torrent';
/** `Peer.start()` without `listen` listens on every interface, on any free port (`peer.port` says which). */
export const DEFAULT_LISTEN: Endpoint = { host: undefined, port: 0 };
/** The bounds of --fallback-after-ms, --owner-timeout-ms and --linger-ms: up to a day. */
const MAX_DELAY_MS = 86_400_000;

/** A host and port as `Peer.start()` takes it: without a host, 127.0.0.1 to dial (every interface to listen on). */
export interface EndpointInput {
  readonly host?: string | undefined;
  readonly port: number;
}

/**
 * What `Peer.start()` accepts. Only `owner` is required; every other field
 * takes the command line's default (the UPPER_CASE constants) and is
 * checked against the same bounds as its flag.
 */
export interface PeerOptions {
  /** The owner's port (its HTTP tracker, metainfo and BitTorrent). */
  readonly owner: EndpointInput;
  /** The owner's HTTP path of the metainfo (default DEFAULT_METAINFO_PATH; a .torrent URL gives its own). */
  readonly metainfoPath?: string | undefined;
  /**
   * `owner` is no swarmdrop owner but only a member of the swarm (a magnet
   * link without a swarmdrop tracker): no tracker is asked, and the metadata
   * comes from the members (needs `infoHash`; swarm mode). Default false.
   */
  readonly trackerless?: boolean | undefined;
  /** Where to listen; `host` undefined means every interface, port 0 or none any free one (default DEFAULT_LISTEN). */
  readonly listen?: Partial<EndpointInput> | undefined;
  /** The download neighbour; without one the peer runs in swarm mode. */
  readonly neighbour?: EndpointInput | undefined;
  /** Further download neighbours (a chord in the topology); each gets its own download side. Needs `neighbour`. */
  readonly moreNeighbours?: readonly EndpointInput[] | undefined;
  /** Working directory: chunks/, summary.txt, `<name>.torrent` (default `.swarmdrop/peer-<port>`, as given in `listen`). */
  readonly dir?: string | undefined;
  /** Where the merged file goes; default `<dir>/<name>`. */
  readonly out?: string | undefined;
  /** Replace a file at `out` (or its `.part`) that swarmdrop did not write (default false: refuse). */
  readonly force?: boolean | undefined;
  /** Delete the chunk files once the merged file is verified, and serve from it (default false). */
  readonly removeChunks?: boolean | undefined;
  /** Finish once merged and every connected upload neighbour holds every chunk (default false: keep serving). */
  readonly exitWhenDone?: boolean | undefined;
  /** Swarm mode also with a neighbour (the neighbours are dialled as swarm peers); always on without one. */
  readonly swarm?: boolean | undefined;
  /** Swarm mode: connections held at once (default DEFAULT_MAX_PEERS). */
  readonly maxPeers?: number | undefined;
  /** Swarm mode: peer exchange (BEP 11, ut_pex) with the remotes that offer it (default true; never in a private swarm). */
  readonly pex?: boolean | undefined;
  /** Fetch from the owner what the download neighbour has not supplied for this long (default DEFAULT_FALLBACK_AFTER_MS). */
  readonly fallbackAfterMs?: number | undefined;
  /** Give up if the owner's metainfo cannot be fetched for this long (default DEFAULT_OWNER_TIMEOUT_MS). */
  readonly ownerTimeoutMs?: number | undefined;
  /** With exitWhenDone: how long to wait for an upload neighbour that never connected (default DEFAULT_LINGER_MS). */
  readonly lingerMs?: number | undefined;
  /** Bytes requested ahead per connection, in 16 KiB blocks (default DEFAULT_PIPELINE_BLOCKS). */
  readonly pipelineBlocks?: number | undefined;
  /** Connections served at once on our port (default DEFAULT_MAX_CONNECTIONS). */
  readonly maxConnections?: number | undefined;
  /** Connections served at once from one source address (default DEFAULT_MAX_CONNECTIONS_PER_ADDRESS). */
  readonly maxConnectionsPerAddress?: number | undefined;
  /** Console log format of the logger the peer makes (default text). */
  readonly logFormat?: LogFormat | undefined;
  /** Pinned content: any other metainfo is refused (20 bytes, or 40 hex digits as --infohash takes). */
  readonly infoHash?: Uint8Array | string | undefined;
  /** The merged file must have this SHA-256 (32 bytes, or 64 hex digits as --sha256 takes). */
  readonly sha256?: Uint8Array | string | undefined;
  /**
   * A private swarm's token: sent to the owner, and required on our own port
   * (HTTP needs it; the wire admits only addresses the owner's tracker lists).
   */
  readonly token?: string | undefined;
  /** MSE/PE policy for every BitTorrent connection, both ways (default prefer). */
  readonly encryption?: EncryptionPolicy | undefined;
  /** TCP, µTP (UDP on the same port number) or both for BitTorrent, both ways (default both). */
  readonly transport?: TransportPolicy | undefined;
  /** Bytes per second sent over all BitTorrent connections together; 0: no limit (default). */
  readonly uploadLimitBytesPerSecond?: number | undefined;
  /** Bytes per second received over all BitTorrent connections together; 0: no limit (default). */
  readonly downloadLimitBytesPerSecond?: number | undefined;
}

/** The options a peer runs with: checked, every default filled in. */
export interface ResolvedPeerOptions {
  readonly owner: Endpoint;
  readonly metainfoPath: string;
  readonly trackerless: boolean;
  readonly listen: Endpoint;
  readonly neighbour: Endpoint | undefined;
  readonly moreNeighbours: readonly Endpoint[];
  /** Absolute. */
  readonly dir: string;
  /** Absolute, or undefined for `<dir>/<name>`. */
  readonly out: string | undefined;
  readonly force: boolean;
  readonly removeChunks: boolean;
  readonly exitWhenDone: boolean;
  /** True also whenever there is no neighbour: the mode the peer runs in. */
  readonly swarm: boolean;
  readonly maxPeers: number;
  readonly pex: boolean;
  readonly fallbackAfterMs: number;
  readonly ownerTimeoutMs: number;
  readonly lingerMs: number;
  readonly pipelineBlocks: number;
  readonly maxConnections: number;
  readonly maxConnectionsPerAddress: number;
  readonly logFormat: LogFormat;
  readonly infoHash: Buffer | undefined;
  readonly sha256: Buffer | undefined;
  readonly token: string | undefined;
  readonly encryption: EncryptionPolicy;
  readonly transport: TransportPolicy;
  readonly uploadLimitBytesPerSecond: number;
  readonly downloadLimitBytesPerSecond: number;
}

type Key = keyof ResolvedPeerOptions;

/** A list of endpoints: comma-separated on the command line, an array from start(). */
function endpointList(): ValueSpec<readonly Endpoint[]> {
  const one = endpointValue();
  return {
    parse: (text, field) => text.split(',').map((part) => one.parse(part, field)),
    check: (value, field) => {
      if (!Array.isArray(value))
        throw new OptionError(
          field,
          `expected an array of endpoints, got ${value === null ? 'null' : typeof value}`,
        );
      return value.map((item, i) => one.check(item, `${field}[${i}]`));
    },
  };
}

/** Every field of the peer's options, with how it is read and its default, in the order they are resolved. */
export const PEER_OPTIONS: OptionSchema<ResolvedPeerOptions> = {
  owner: {
    ...endpointValue(),
    required: 'is required: the owner to join, e.g. { host: "10.0.0.1", port: 6881 }',
    // Never taken: a missing owner is refused (required).
    default: { host: undefined, port: 0 },
  },
  metainfoPath: {
    ...textValue((t, field) => {
      if (!t.startsWith('/'))
        throw new OptionError(field, `"${t}" is not a path (starting with /)`);
      return t;
    }),
    default: DEFAULT_METAINFO_PATH,
  },
  trackerless: { ...switchValue, default: false },
  listen: { ...endpointValue(true), default: DEFAULT_LISTEN },
  neighbour: { ...endpointValue(), default: undefined },
  moreNeighbours: { ...endpointList(), default: [] },
  // After listen: its default names the port.
  dir: {
    ...textValue((t) => resolve(t)),
    default: (o) => resolve(`.swarmdrop/peer-${o.listen.port}`),
  },
  out: { ...textValue((t) => resolve(t)), default: undefined },
  force: { ...switchValue, default: false },
  removeChunks: { ...switchValue, default: false },
  exitWhenDone: { ...switchValue, default: false },
  // After neighbour: without one the peer runs in swarm mode whatever `swarm` says.
  swarm: { ...switchValue, default: (o) => o.neighbour === undefined },
  maxPeers: { ...integerValue(1, 1_000), default: DEFAULT_MAX_PEERS },
  // The flag turns it off: `--no-pex` is false, start() takes a boolean.
  pex: { ...switchValue, parse: () => false, default: true },
  fallbackAfterMs: { ...integerValue(0, MAX_DELAY_MS), default: DEFAULT_FALLBACK_AFTER_MS },
  ownerTimeoutMs: { ...integerValue(0, MAX_DELAY_MS), default: DEFAULT_OWNER_TIMEOUT_MS },
  lingerMs: { ...integerValue(0, MAX_DELAY_MS), default: DEFAULT_LINGER_MS },
  pipelineBlocks: { ...integerValue(1, 4_096), default: DEFAULT_PIPELINE_BLOCKS },
  maxConnections: { ...integerValue(1, 100_000), default: DEFAULT_MAX_CONNECTIONS },
  maxConnectionsPerAddress: {
    ...integerValue(1, 100_000),
    default: DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
  },
  logFormat: { ...textValue(parseLogFormat), default: 'text' },
  infoHash: { ...bytesValue(20, parseInfoHash), default: undefined },
  sha256: { ...bytesValue(32, parseSha256), default: undefined },
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
export type PeerFlag = OptionFlag<Key>;

/** The flags in USAGE order. docs/peer.md quotes this help and details each flag; keep them in step. */
export const PEER_FLAGS: readonly PeerFlag[] = [
  {
    name: 'swarm',
    key: 'swarm',
    help: [
      'swarm mode even with <download-neighbour>',
      '(the neighbours are dialled as swarm peers)',
    ],
  },
  {
    name: 'max-peers',
    arg: 'N',
    key: 'maxPeers',
    help: [
      'swarm mode: connections held at once, dialled',
      `and accepted (default: ${DEFAULT_MAX_PEERS})`,
    ],
  },
  {
    name: 'no-pex',
    key: 'pex',
    help: [
      'swarm mode: no peer exchange (learning peers',
      'from peers); a private swarm never uses it',
    ],
  },
  {
    name: 'dir',
    arg: 'DIR',
    key: 'dir',
    help: [
      'working directory: chunks/, summary.txt,',
      '<name>.torrent (default: .swarmdrop/peer-<port>)',
    ],
  },
  {
    name: 'out',
    arg: 'PATH',
    key: 'out',
    help: ['where the merged file goes (default: DIR/<name>)'],
  },
  {
    name: 'force',
    key: 'force',
    help: [
      'replace a file at --out (or at its .part) that',
      'swarmdrop did not write; without it the peer',
      'refuses to start',
    ],
  },
  {
    name: 'remove-chunks',
    key: 'removeChunks',
    help: [
      'delete the chunk files once the merged file is',
      'verified, and serve from the merged file',
    ],
  },
  {
    name: 'exit-when-done',
    key: 'exitWhenDone',
    help: [
      'exit 0 once the file is merged and every',
      'connected upload neighbour holds every chunk',
      '(or has gone)',
    ],
  },
  {
    name: 'fallback-after-ms',
    arg: 'MS',
    key: 'fallbackAfterMs',
    help: [
      'fetch from the owner what the download',
      'neighbour has not supplied for this long',
      `(default: ${DEFAULT_FALLBACK_AFTER_MS})`,
    ],
  },
  {
    name: 'owner-timeout-ms',
    arg: 'MS',
    key: 'ownerTimeoutMs',
    help: [
      'give up when the owner cannot be reached for',
      `this long at start (default: ${DEFAULT_OWNER_TIMEOUT_MS})`,
    ],
  },
  {
    name: 'linger-ms',
    arg: 'MS',
    key: 'lingerMs',
    help: [
      'with --exit-when-done, how long to wait for an',
      'upload neighbour that never connects',
      `(default: ${DEFAULT_LINGER_MS})`,
    ],
  },
  {
    name: 'pipeline',
    arg: 'N',
    key: 'pipelineBlocks',
    help: [
      'bytes requested ahead per connection, in',
      `16 KiB units (default: ${DEFAULT_PIPELINE_BLOCKS})`,
    ],
  },
  {
    name: 'max-connections',
    arg: 'N',
    key: 'maxConnections',
    help: [
      'BitTorrent connections served at once on <port>;',
      `more are refused (default: ${DEFAULT_MAX_CONNECTIONS})`,
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
    name: 'infohash',
    arg: 'HEX',
    key: 'infoHash',
    help: [
      'accept only the metainfo with this info-hash',
      '(40 hex digits); anything else exits 1',
    ],
  },
  {
    name: 'sha256',
    arg: 'HEX',
    key: 'sha256',
    help: ['the merged file must have this SHA-256'],
  },
  {
    name: 'token-file',
    arg: 'FILE',
    key: 'token',
    help: [
      "the private swarm's token: sent to the owner,",
      'and required on our own port (HTTP, and the',
      'wire from hosts the tracker did not list).',
      'Default: $SWARMDROP_TOKEN',
    ],
  },
  {
    name: 'encryption',
    arg: 'POLICY',
    key: 'encryption',
    help: [
      'prefer|require|off: MSE/PE (RC4) for BitTorrent',
      'connections, both ways (default: prefer;',
      'docs/transports.md)',
    ],
  },
  {
    name: 'transport',
    arg: 'POLICY',
    key: 'transport',
    help: [
      'both|tcp|utp: BitTorrent over TCP, µTP (UDP on',
      'the same port number) or both; with both,',
      'connect over TCP and fall back to µTP (default: both)',
    ],
  },
  ...SERVICE_FLAGS,
];

/**
 * Checks `input` (what `Peer.start()` was given, or what the command line
 * parsed) and fills in every default. A value out of bounds, of the wrong
 * type, or a key that is no option is an OptionError naming it: the key for
 * a library caller (`pipelineBlocks: 0 is out of range (1-4096)`), as the
 * command line names the flag (`--pipeline: 0 is out of range ...`).
 */
export function resolvePeerOptions(input: PeerOptions): ResolvedPeerOptions {
  const options = resolveOptions(PEER_OPTIONS, input, 'peer');
  if (options.trackerless && options.infoHash === undefined)
    throw new OptionError(
      'trackerless',
      'needs infoHash: without a tracker the metadata comes from peers, checked against it',
    );
  // The command line cannot say this: its chord is one comma-separated list, first neighbour first.
  if (options.moreNeighbours.length > 0 && options.neighbour === undefined)
    throw new OptionError('moreNeighbours', 'needs a neighbour (the first download neighbour)');
  return {
    ...options,
    swarm: options.swarm || options.neighbour === undefined || options.trackerless,
  };
}
