import type { IncomingMessage, ServerResponse } from 'node:http';
import { tokenMatches } from '../token.js';

/** A plain-text response; `headers` may add to or override the defaults. */
export function sendText(
  res: ServerResponse,
  status: number,
  text: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** A 200 with `body`, and no body for HEAD. */
export function sendBody(
  req: IncomingMessage,
  res: ServerResponse,
  contentType: string,
  body: string | Buffer,
  headers: Record<string, string> = {},
): void {
  res.writeHead(200, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(body),
    ...headers,
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** Pretty JSON, for the status pages. */
export function sendJson(req: IncomingMessage, res: ServerResponse, value: unknown): void {
  sendBody(req, res, 'application/json', `${JSON.stringify(value, null, 2)}\n`);
}

/**
 * The decoded path of an origin-form target (`/path?query`), or undefined for
 * anything else: `new URL` throws on some absolute forms (`http://[`) and
 * takes `//host/path` for a host, and a bad %-escape throws in decodeURIComponent.
 */
export function requestPath(target: string | undefined): string | undefined {
  if (!target?.startsWith('/') || target.startsWith('//')) return undefined;
  try {
    return decodeURIComponent(target.split('?')[0]!);
  } catch {
    return undefined;
  }
}

/** The raw query string of a target (after `?`), undecoded. */
export function requestQuery(target: string | undefined): string {
  const at = (target ?? '').indexOf('?');
  return at === -1 ? '' : target!.slice(at + 1);
}

/**
 * Wraps a router so that a bad target gets 400, a method other than GET/HEAD
 * 405 (POST too, on the paths `postPaths` names), and a handler bug costs one
 * request (500, reported to `onError`), never the process.
 */
export function httpRouter(
  route: (path: string, req: IncomingMessage, res: ServerResponse) => void,
  onError: (err: Error, req: IncomingMessage) => void,
  postPaths: ReadonlySet<string> = new Set(),
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    try {
      const path = requestPath(req.url);
      const post = req.method === 'POST' && path !== undefined && postPaths.has(path);
      if (req.method !== 'GET' && req.method !== 'HEAD' && !post) {
        sendText(res, 405, `method ${req.method} not allowed\n`, {
          allow: path !== undefined && postPaths.has(path) ? 'POST' : 'GET, HEAD',
        });
        return;
      }
      if (path === undefined) {
        sendText(res, 400, 'bad request target: expected a path such as /status\n');
        return;
      }
      route(path, req, res);
    } catch (err) {
      onError(err as Error, req);
      if (!res.headersSent) sendText(res, 500, 'internal error\n');
      else res.destroy();
    }
  };
}

/**
 * Whether a request carries the swarm token: `Authorization: Bearer <token>`,
 * or any `key=<token>` in the query (stock clients put it in the tracker or
 * .torrent URL, and add a `key` of their own to announces, so every `key`
 * counts). Always true when the swarm has no token.
 */
export function carriesToken(req: IncomingMessage, token: string | undefined): boolean {
  if (token === undefined) return true;
  const auth = req.headers.authorization;
  const bearer = auth && /^Bearer\s+(\S+)\s*$/i.exec(auth);
  if (bearer && tokenMatches(token, bearer[1])) return true;
  for (const part of requestQuery(req.url).split('&')) {
    if (part.startsWith('key=') && tokenMatches(token, part.slice(4))) return true;
  }
  return false;
}

/** The answer to a request without the token: 401, saying how to send it. */
export function sendUnauthorized(res: ServerResponse): void {
  sendText(
    res,
    401,
    'this swarm is private: send its token as "Authorization: Bearer <token>" or add ?key=<token> to the URL\n',
    { 'www-authenticate': 'Bearer realm="swarmdrop"' },
  );
}
