import { parseArgs } from 'node:util';
import {
  type Endpoint,
  looksLikeMagnet,
  type MagnetLink,
  OptionError,
  parseEndpoint,
  parseMagnet,
} from '@swarmdrop/protocol';
import {
  formatOptionLines,
  loadToken,
  looksLikeLink,
  parseArgsOptions,
  parseLink,
  readFlags,
} from '@swarmdrop/service';
import {
  DEFAULT_METAINFO_PATH,
  PEER_FLAGS,
  PEER_OPTIONS,
  type PeerOptions,
  type ResolvedPeerOptions,
  resolvePeerOptions,
} from './options.js';

export { DEFAULT_METAINFO_PATH } from './options.js';

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
which pins the content: any other metainfo is refused. The link may name
any member of the swarm, not only the owner. <owner> may also be a magnet
link, magnet:?xt=urn:btih:INFOHASH&tr=...&x.pe=HOST:PORT: its swarmdrop
tracker is the owner, its x.pe peers are dialled, and without such a
tracker the metainfo comes from those peers (docs/links.md). <download-neighbour>
may be a comma-separated list to download from several neighbours at once
(the first is the main one).

Options:
${formatOptionLines(PEER_FLAGS)}`;

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
export interface PeerCliOptions extends ResolvedPeerOptions {
  /** --quiet: no live status line. */
  readonly quiet: boolean;
}

/**
 * Reads a command line into the peer's options: the positionals, each
 * flag's text through its option's parser (errors name the flag), then the
 * same defaults and checks as `Peer.start()` (options.ts).
 */
export function parsePeerArgs(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): PeerCliOptions | 'help' | 'version' {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: parseArgsOptions(PEER_FLAGS),
    });
  } catch (err) {
    throw new OptionError('arguments', (err as Error).message.split('\n')[0]!);
  }
  const { values, positionals } = parsed;
  if (values.help) return 'help';
  if (values.version) return 'version';
  if (positionals.length < 2)
    throw new OptionError('arguments', 'expected <owner> <port> [<download-neighbour>]');
  if (positionals.length > 3)
    throw new OptionError('arguments', `unexpected extra argument "${positionals[3]}"`);
  const magnet = looksLikeMagnet(positionals[0]!)
    ? magnetOwner(parseMagnet(positionals[0]!, '<owner>'))
    : undefined;
  const link =
    magnet ?? (looksLikeLink(positionals[0]!) ? parseLink(positionals[0]!, '<owner>') : undefined);
  const { owner, metainfoPath } = link
    ? { owner: link.owner, metainfoPath: DEFAULT_METAINFO_PATH }
    : parseOwnerArg(positionals[0]!);
  const flags = readFlags(PEER_FLAGS, values, PEER_OPTIONS, ['token']);
  const pinned = flags.infoHash as Buffer | undefined;
  if (link && pinned && !link.infoHash.equals(pinned)) {
    throw new OptionError('--infohash', 'differs from the info-hash in the <owner> link');
  }
  // A comma-separated list adds download neighbours (a chord); the first is the seed's one.
  // A magnet link's peers come after them: in swarm mode all of them are dialled alike.
  const [neighbour, ...moreNeighbours] = [
    ...(positionals[2] === undefined
      ? []
      : PEER_OPTIONS.moreNeighbours.parse(positionals[2], '<download-neighbour>')),
    ...(magnet?.peers ?? []),
  ];
  const input: Record<string, unknown> = {
    ...flags,
    ...(magnet ? { swarm: true, trackerless: magnet.trackerless } : {}),
    owner,
    metainfoPath,
    listen: PEER_OPTIONS.listen.parse(positionals[1]!, '<port>'),
    neighbour,
    moreNeighbours,
    infoHash: link?.infoHash ?? pinned,
    // The token comes from the file --token-file names, else from $SWARMDROP_TOKEN.
    token: loadToken(values['token-file'] as string | undefined, env),
  };
  return { ...resolvePeerOptions(input as unknown as PeerOptions), quiet: values.quiet === true };
}

/**
 * Who `<owner>` is for a magnet link: the host of its first tracker that is
 * a swarmdrop owner's (`http://HOST:PORT/announce`, what the owner prints),
 * else its first peer, which is then only asked for the metadata and traded
 * with (`trackerless`). Its other peers are dialled as swarm peers.
 */
function magnetOwner(magnet: MagnetLink): {
  owner: Endpoint;
  infoHash: Buffer;
  peers: readonly Endpoint[];
  trackerless: boolean;
} {
  const tracker = magnet.trackers.map(ownerTracker).find((t) => t !== undefined);
  if (tracker)
    return { owner: tracker, infoHash: magnet.infoHash, peers: magnet.peers, trackerless: false };
  const [first, ...rest] = magnet.peers;
  if (!first)
    throw new OptionError(
      '<owner>',
      'the magnet link names neither a swarmdrop tracker (tr=http://HOST:PORT/announce) nor a peer (x.pe=HOST:PORT), and swarmdrop finds peers no other way (no DHT)',
      'ERR_ADDRESS',
    );
  return { owner: first, infoHash: magnet.infoHash, peers: [first, ...rest], trackerless: true };
}

/** `http://HOST:PORT/announce` (a swarmdrop owner's tracker) to HOST:PORT; undefined for any other tracker. */
function ownerTracker(url: string): Endpoint | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  if (parsed.protocol !== 'http:' || parsed.pathname !== '/announce' || !parsed.hostname)
    return undefined;
  try {
    return parseEndpoint(`${parsed.hostname}:${parsed.port || '80'}`, 'tr');
  } catch {
    return undefined;
  }
}
