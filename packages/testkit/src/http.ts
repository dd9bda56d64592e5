import { once } from 'node:events';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { type AnnounceQueryFields, announceQuery } from '@swarmdrop/protocol';
import { HANG_MS } from './env.js';

export interface HttpResult {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}

/** One HTTP request on its own connection (no keep-alive pool left behind). */
export function httpGet(
  port: number,
  path: string,
  options: {
    method?: string;
    headers?: Record<string, string>;
    host?: string;
    /** Source address to connect from (another loopback address, say 127.0.0.2). */
    localAddress?: string;
    /** A request body (for a POST). */
    body?: string | Buffer;
  } = {},
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: options.host ?? '127.0.0.1',
        port,
        path,
        method: options.method ?? 'GET',
        headers: { connection: 'close', ...options.headers },
        agent: false,
        timeout: HANG_MS,
        ...(options.localAddress ? { localAddress: options.localAddress } : {}),
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(parts),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`HTTP ${path} timed out`)));
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Writes `bytes` on a fresh socket and collects everything until the remote closes it. */
export async function rawExchange(port: number, bytes: Uint8Array | string): Promise<string> {
  const socket = connect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  const parts: Buffer[] = [];
  socket.on('data', (d: Buffer) => parts.push(d));
  await once(socket, 'connect');
  socket.write(bytes);
  const timer = setTimeout(() => socket.destroy(), HANG_MS);
  await once(socket, 'close');
  clearTimeout(timer);
  return Buffer.concat(parts).toString('latin1');
}

/** The path of an announce, as a stock tracker client sends it (`left` 0 unless given). */
export function announcePath(
  fields: Omit<AnnounceQueryFields, 'left' | 'event'> & { left?: number; event?: string },
): string {
  const query = announceQuery({ ...fields, left: fields.left ?? 0, event: undefined });
  return `/announce?${query}${fields.event ? `&event=${fields.event}` : ''}`;
}

/** A Server-Sent Events stream being read: each `data:` message in order. */
export interface EventStream {
  readonly status: number;
  /** Every message so far. */
  readonly messages: string[];
  /** Resolves with message number `n` (0-based) once it has come; rejects if the stream ends first or after HANG_MS. */
  message(n: number): Promise<string>;
  /** Resolves once the stream has ended (the server closed it, or close()). */
  readonly ended: Promise<void>;
  close(): void;
}

/** Opens `path` as an event stream (the dashboard's); resolves once the response head is in. */
export function openEventStream(
  port: number,
  path: string,
  headers: Record<string, string> = {},
  options: {
    /** Source address to connect from (another loopback address, say 127.0.0.2). */
    localAddress?: string;
  } = {},
): Promise<EventStream> {
  return new Promise((resolve, reject) => {
    const target = {
      host: '127.0.0.1',
      port,
      path,
      headers,
      agent: false,
      ...(options.localAddress ? { localAddress: options.localAddress } : {}),
    };
    const req = httpRequest(target, (res) => {
      const messages: string[] = [];
      const waiters = new Set<() => void>();
      let ended = false;
      let buffered = '';
      res.setEncoding('utf8');
      res.on('data', (text: string) => {
        buffered += text;
        for (let end = buffered.indexOf('\n\n'); end !== -1; end = buffered.indexOf('\n\n')) {
          const block = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          const data = block
            .split('\n')
            .filter((line) => line.startsWith('data: '))
            .map((line) => line.slice(6));
          if (data.length > 0) messages.push(data.join('\n'));
        }
        for (const wake of waiters) wake();
      });
      let markEnded = () => {};
      const closed = new Promise<void>((ok) => {
        markEnded = ok;
      });
      // A stream cut mid-way ('aborted') has ended as much as one closed cleanly.
      res.on('error', () => {});
      res.on('close', () => {
        ended = true;
        markEnded();
        for (const wake of waiters) wake();
      });
      resolve({
        status: res.statusCode ?? 0,
        messages,
        message: (n) =>
          new Promise((ok, fail) => {
            const timer = setTimeout(() => {
              waiters.delete(check);
              fail(new Error(`event stream ${path}: no message ${n} within ${HANG_MS} ms`));
            }, HANG_MS);
            const check = () => {
              if (messages.length > n) ok(messages[n]!);
              else if (ended)
                fail(new Error(`event stream ${path} ended after ${messages.length} messages`));
              else return;
              clearTimeout(timer);
              waiters.delete(check);
            };
            waiters.add(check);
            check();
          }),
        ended: closed,
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
    req.end();
  });
}
