import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  AnnounceError,
  type AnnounceRequest,
  announceFailure,
  announceResponse,
  canonicalHost,
  parseAnnounce,
  type TrackerPeer,
  unmapIPv4,
} from '@swarmdrop/protocol';

/** A member of the swarm this peer is connected to, by its listening address. */
export interface Member extends TrackerPeer {
  /** It holds every chunk. */
  readonly seed: boolean;
}

export interface MemberTrackerContext {
  readonly infoHash: Buffer;
  /** Our own listening port: we list ourselves first. */
  readonly port: number;
  readonly seed: boolean;
  /** The members we are connected to whose listening address we know. */
  readonly members: () => readonly Member[];
}

/**
 * `GET /announce` on a peer: the tracker of a swarm whose owner may be gone.
 * aria2c and Transmission read no `x.pe` in a magnet link, so the one way
 * to point them at a member is as a tracker
 * (`tr=http://MEMBER:PORT/announce`). The answer is that member first, then
 * the members it is connected to (their listening addresses), up to
 * `numwant`; nothing is recorded of the announcer, so a request costs no
 * state and a flood of fake announces fills no table.
 */
export function answerMemberAnnounce(
  context: MemberTrackerContext,
  req: IncomingMessage,
  res: ServerResponse,
  query: string,
): AnnounceRequest | undefined {
  let request: AnnounceRequest;
  try {
    request = parseAnnounce(query);
  } catch (err) {
    if (!(err instanceof AnnounceError)) throw err;
    send(res, 400, announceFailure(err.message));
    return undefined;
  }
  if (!request.infoHash.equals(context.infoHash)) {
    send(res, 200, announceFailure('unknown info_hash: this peer trades one torrent'));
    return undefined;
  }
  const from = canonicalHost(unmapIPv4(req.socket.remoteAddress ?? ''));
  const self: TrackerPeer = {
    host: unmapIPv4(req.socket.localAddress ?? '127.0.0.1'),
    port: context.port,
  };
  const others = context
    .members()
    .filter((m) => !(canonicalHost(m.host) === from && m.port === request.port));
  const listed = request.numwant > 0 ? [self, ...others].slice(0, request.numwant) : [];
  const seeds = others.filter((m) => m.seed).length + (context.seed ? 1 : 0);
  send(
    res,
    200,
    announceResponse({
      peers: listed,
      complete: seeds,
      incomplete: others.length + 1 - seeds,
    }),
  );
  return request;
}

function send(res: ServerResponse, status: number, body: Buffer): void {
  res.writeHead(status, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
}
