import type { IncomingMessage, ServerResponse } from 'node:http';
import { announceFailure, type Metainfo, withAnnounce } from '@swarmdrop/protocol';
import {
  DASHBOARD_REPORT_PATH,
  requestQuery,
  sendBody,
  sendJson,
  sendText,
  sendUnauthorized,
} from '@swarmdrop/service';
import { type AnnounceContext, answerAnnounce } from './tracker.js';

export interface OwnerRoutesOptions {
  readonly metainfo: Metainfo;
  /** The `.torrent` as written to disk: without a token in its tracker URL. */
  readonly torrent: Buffer;
  readonly token: string | undefined;
  readonly announce: AnnounceContext;
  /** Page `page` (from 0) of every peer, or a one-line reason when there is no such page. */
  readonly peersPage: (page: number) => Record<string, unknown> | string;
}

/**
 * The owner's own HTTP routes, tried before the shell's (`/status`,
 * `/metrics`, the dashboard): the metainfo, the tracker's announce, and the
 * list of endpoints for a `curl /`. Returns true when it answered.
 */
export function ownerRoutes(
  options: OwnerRoutesOptions,
): (path: string, req: IncomingMessage, res: ServerResponse, authorized: boolean) => boolean {
  const { metainfo, torrent, token } = options;
  return (path, req, res, authorized) => {
    if (path === '/metainfo.torrent' || path === `/${metainfo.name}.torrent`) {
      if (!authorized) {
        sendUnauthorized(res);
        return true;
      }
      const host = validHost(req.headers.host);
      // Token holders get the token in the tracker URL, so a stock client announces with it.
      const key = token === undefined ? '' : `?key=${token}`;
      const body = host ? withAnnounce(torrent, `http://${host}/announce${key}`) : torrent;
      sendBody(req, res, 'application/x-bittorrent', body, {
        'content-disposition': `attachment; filename="${encodeURIComponent(metainfo.name)}.torrent"`,
      });
      return true;
    }
    if (path === '/announce') {
      if (!authorized) {
        const body = announceFailure('this swarm is private: announce with key=<token>');
        res.writeHead(401, { 'content-type': 'text/plain', 'content-length': body.length });
        res.end(body);
        return true;
      }
      answerAnnounce(options.announce, req, res, requestQuery(req.url));
      return true;
    }
    if (path === '/status/peers') {
      if (!authorized) {
        sendUnauthorized(res);
        return true;
      }
      const raw = new URLSearchParams(requestQuery(req.url)).get('page') ?? '0';
      const page = /^\d{1,9}$/.test(raw) ? Number(raw) : Number.NaN;
      const answer = Number.isNaN(page)
        ? `page: "${raw.slice(0, 40)}" is not a page number`
        : options.peersPage(page);
      if (typeof answer === 'string') sendText(res, 400, `${answer}\n`);
      else sendJson(req, res, answer);
      return true;
    }
    // A browser gets the dashboard at `/`; curl and scripts get the list of endpoints.
    if (path === '/' && !acceptsHtml(req)) {
      sendText(
        res,
        200,
        `swarmdrop owner serving ${metainfo.name}\n` +
          `  GET /${encodeURIComponent(metainfo.name)}.torrent  (also /metainfo.torrent)\n` +
          '  GET /announce                 BitTorrent tracker\n' +
          '  GET /status                   JSON status of the swarm\n' +
          '  GET /status/peers?page=N      every peer, 100 a page\n' +
          '  GET /metrics                  Prometheus metrics\n' +
          '  GET / (from a browser)        the live dashboard\n' +
          '  GET /dashboard/events         its updates (Server-Sent Events)\n' +
          '  GET /dashboard/state          its whole state as JSON\n' +
          `  POST ${DASHBOARD_REPORT_PATH}        peers' reports\n`,
      );
      return true;
    }
    return false;
  };
}

/** A browser asking for a page (its Accept names text/html). */
function acceptsHtml(req: IncomingMessage): boolean {
  return /\btext\/html\b/.test(req.headers.accept ?? '');
}

function validHost(header: string | undefined): string | undefined {
  return header && /^[A-Za-z0-9.\-:[\]]+$/.test(header) ? header : undefined;
}
