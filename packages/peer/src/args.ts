import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  type Endpoint,
  looksLikeLink,
  OptionError,
  parseEncryptionPolicy,
  parseEndpoint,
  parseInfoHash,
  parseIntegerOption,
  parseLink,
  parseLogFormat,
  parseRateLimit,
  parseSha256,
  parseTransportPolicy,
} from '@swarmdrop/protocol';
import {
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
  loadToken,
} from '@swarmdrop/protocol/node';
import {
  DEFAULT_FALLBACK_AFTER_MS,
  DEFAULT_LINGER_MS,
  DEFAULT_OWNER_TIMEOUT_MS,
  type PeerOptions,
} from './peer.js';
import { DEFAULT_PIPELINE_BLOCKS } from './swarm/swarm-scheduler.js';
import { DEFAULT_MAX_PEERS } from './swarm/swarm-session.js';

export const PROGRAM = 'swarmdrop-peer';

export const USAGE = `Usage: ${PROGRAM} <owner> <port> [<download-neighbour>] [options]

Joins the swarm served by the file owner at <owner> and listens on <port>.
Ring mode (with <download-neighbour>): downloads from the peer at
<download-neighbour>, serves its upload neighbours, and falls back to the
owner. Swarm mode (without it, or with --swarm): takes peers from the
owner's tracker and trades with all of them (rarest-first, endgame,
choking with an optimistic slot).
Each address may be PORT (on 127.0.0.1; <port> listens on every
interface) or HOST:PORT. <owner> may also be the owner's .torrent URL,
http://HOST:PORT/NAME.torrent, or its link, swarmdrop://HOST:PORT/INFOHASH,
which pins the content: any other metainfo is refused. <download-neighbour>
may be a comma-separated list to download from several neighbours at once
(the first is the main one).

Options:
  --swarm                     swarm mode even with <download-neighbour>
                              (the neighbours are dialled as swarm peers)
  --max-peers N               swarm mode: connections held at once, dialled
                              and accepted (default: ${DEFAULT_MAX_PEERS})
  --dir DIR                   working directory: chunks/, summary.txt,
                              <name>.torrent (default: .swarmdrop/peer-<port>)
  --out PATH                  where the merged file goes (default: DIR/<name>)
  --exit-when-done            exit 0 once the file is merged and every
                              connected upload neighbour holds every chunk
                              (or has gone)
  --fallback-after-ms MS      fetch from the owner what the download
                              neighbour has not supplied for this long
                              (default: ${DEFAULT_FALLBACK_AFTER_MS})
  --owner-timeout-ms MS       give up when the owner cannot be reached for
                              this long at start (default: ${DEFAULT_OWNER_TIMEOUT_MS})
  --linger-ms MS              with --exit-when-done, how long to wait for an
                              upload neighbour that never connects
                              (default: ${DEFAULT_LINGER_MS})
  --pipeline N                bytes requested ahead per connection, in
                              16 KiB units (default: ${DEFAULT_PIPELINE_BLOCKS})
  --max-connections N         connections served at once on <port>; more
                              are refused (default: ${DEFAULT_MAX_CONNECTIONS})
  --max-connections-per-address N
                              connections served at once from one source
                              address (IPv6: one /64); more are refused
                              (default: ${DEFAULT_MAX_CONNECTIONS_PER_ADDRESS})
  --infohash HEX              accept only the metainfo with this info-hash
                              (40 hex digits); anything else exits 1
  --sha256 HEX                the merged file must have this SHA-256
  --token-file FILE           the private swarm's token: sent to the owner,
                              and required on our own port (HTTP, and the
                              wire from hosts the tracker did not list).
                              Default: $SWARMDROP_TOKEN
  --encryption POLICY         prefer|require|off: MSE/PE (RC4) for BitTorrent
                              connections, both ways (default: prefer; see README)
  --transport POLICY          both|tcp|utp: BitTorrent over TCP, µTP (UDP on
                              the same port number) or both; with both,
                              connect over TCP and fall back to µTP (default: both)
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

/** Where the metainfo is fetched from when `<owner>` is given as PORT or HOST:PORT. */
export const DEFAULT_METAINFO_PATH = '/metainfo.torrent';

/**
 * Reads `<owner>`: PORT, HOST:PORT, [IPv6]:PORT, or the owner's `.torrent`
 * URL (`http://HOST[:PORT]/NAME.torrent`, what the owner prints as `ready
 * url=`). A URL gives both the endpoint and the path to fetch the metainfo from.
 */
export function parseOwnerArg(text: string): { owner: Endpoint; metainfoPath: string } {
  const field = '<owner>';
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(text.trim()))
    return { owner: parseEndpoint(text, field), metainfoPath: DEFAULT_METAINFO_PATH };
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    throw new OptionError(field, `"${text}" is not a valid URL`, 'ERR_ADDRESS');
  }
  if (url.protocol !== 'http:')
    throw new OptionError(
      field,
      `"${text}": the owner serves its .torrent over http://, not ${url.protocol}//`,
      'ERR_ADDRESS',
    );
  if (url.username || url.password || url.hash)
    throw new OptionError(
      field,
      `"${text}": a .torrent URL takes no user, password or #fragment`,
      'ERR_ADDRESS',
    );
  if (url.pathname === '/' && url.search === '')
    throw new OptionError(
      field,
      `"${text}" names no .torrent (expected http://HOST:PORT/NAME.torrent)`,
      'ERR_ADDRESS',
    );
  // URL keeps an IPv6 hostname bracketed and leaves out port 80; parseEndpoint checks the rest.
  const owner = parseEndpoint(`${url.hostname}:${url.port || '80'}`, field);
  return { owner, metainfoPath: `${url.pathname}${url.search}` };
}

/** What the command line gives: the peer's options, and how the terminal shows it. */
export interface PeerCliOptions extends PeerOptions {
  /** --quiet: no live status line. */
  readonly quiet: boolean;
}

export function parsePeerArgs(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): PeerCliOptions | 'help' | 'version' {
  const parsed = (() => {
    try {
      return parseArgs({
        args: argv,
        allowPositionals: true,
        strict: true,
        options: {
          dir: { type: 'string' },
          out: { type: 'string' },
          'exit-when-done': { type: 'boolean' },
          swarm: { type: 'boolean' },
          'max-peers': { type: 'string' },
          'fallback-after-ms': { type: 'string' },
          'owner-timeout-ms': { type: 'string' },
          'linger-ms': { type: 'string' },
          pipeline: { type: 'string' },
          'max-connections': { type: 'string' },
          'max-connections-per-address': { type: 'string' },
          infohash: { type: 'string' },
          sha256: { type: 'string' },
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
    } catch (err) {
      throw new OptionError('arguments', (err as Error).message.split('\n')[0]!);
    }
  })();
  const { values, positionals } = parsed;
  if (values.help) return 'help';
  if (values.version) return 'version';
  if (positionals.length < 2)
    throw new OptionError('arguments', 'expected <owner> <port> [<download-neighbour>]');
  if (positionals.length > 3)
    throw new OptionError('arguments', `unexpected extra argument "${positionals[3]}"`);
  const link = looksLikeLink(positionals[0]!) ? parseLink(positionals[0]!, '<owner>') : undefined;
  const { owner, metainfoPath } = link
    ? { owner: link.owner, metainfoPath: DEFAULT_METAINFO_PATH }
    : parseOwnerArg(positionals[0]!);
  const pinned =
    values.infohash === undefined ? undefined : parseInfoHash(values.infohash, '--infohash');
  if (link && pinned && !link.infoHash.equals(pinned)) {
    throw new OptionError('--infohash', 'differs from the info-hash in the <owner> link');
  }
  const listen = parseEndpoint(positionals[1]!, '<port>', true);
  // A comma-separated list adds download neighbours (a chord); the first is the seed's one.
  const [neighbour, ...moreNeighbours] = (positionals[2]?.split(',') ?? []).map((part) =>
    parseEndpoint(part, '<download-neighbour>'),
  ) as [Endpoint | undefined, ...Endpoint[]];
  const ms = (name: string, fallback: number) => {
    const text = values[name as keyof typeof values] as string | undefined;
    return text === undefined ? fallback : parseIntegerOption(text, `--${name}`, 0, 86_400_000);
  };
  return {
    owner,
    metainfoPath,
    listen,
    neighbour,
    moreNeighbours,
    dir: resolve(values.dir ?? `.swarmdrop/peer-${listen.port}`),
    out: values.out === undefined ? undefined : resolve(values.out),
    exitWhenDone: values['exit-when-done'] ?? false,
    swarm: (values.swarm ?? false) || neighbour === undefined,
    maxPeers:
      values['max-peers'] === undefined
        ? DEFAULT_MAX_PEERS
        : parseIntegerOption(values['max-peers'], '--max-peers', 1, 1_000),
    fallbackAfterMs: ms('fallback-after-ms', DEFAULT_FALLBACK_AFTER_MS),
    ownerTimeoutMs: ms('owner-timeout-ms', DEFAULT_OWNER_TIMEOUT_MS),
    lingerMs: ms('linger-ms', DEFAULT_LINGER_MS),
    pipelineBlocks:
      values.pipeline === undefined
        ? DEFAULT_PIPELINE_BLOCKS
        : parseIntegerOption(values.pipeline, '--pipeline', 1, 4_096),
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
    logFormat: parseLogFormat(values['log-format']),
    infoHash: link?.infoHash ?? pinned,
    sha256: values.sha256 === undefined ? undefined : parseSha256(values.sha256, '--sha256'),
    token: loadToken(values['token-file'], env),
    encryption: parseEncryptionPolicy(values.encryption),
    transport: parseTransportPolicy(values.transport),
    uploadLimitBytesPerSecond: parseRateLimit(values['upload-limit'], '--upload-limit'),
    downloadLimitBytesPerSecond: parseRateLimit(values['download-limit'], '--download-limit'),
    quiet: values.quiet ?? false,
  };
}
