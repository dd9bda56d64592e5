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
    req.end();
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
