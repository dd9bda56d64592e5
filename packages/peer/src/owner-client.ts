import { request } from 'node:http';
import {
  announceQuery,
  decodeAnnounceResponse,
  type Endpoint,
  escapeUnsafe,
  formatEndpoint,
  MAX_METAINFO_BYTES,
  type Metainfo,
  parseMetainfo,
} from '@swarmdrop/protocol';
import {
  DASHBOARD_REPORT_HEADER,
  DASHBOARD_REPORT_PATH,
  type PeerReport,
} from '@swarmdrop/service';

/*
 * Requests go through node:http, whose global agent keeps connections alive
 * (Node 19 and later), so announces and dashboard reports reuse one. Not
 * undici, though the team prefers it for HTTP clients: measured, importing
 * the undici package costs a peer about 110 ms of CPU at its first request
 * and the single-file bundle 1.1 MB (20 ms more at every start), in a
 * benchmark whose limit is CPU per process; and Node's built-in fetch,
 * undici inside, refuses the Fetch standard's "bad ports" (6000, 5060,
 * 6667 and others), where an owner may well listen.
 */
export const HTTP_TIMEOUT_MS = 10_000;
const MAX_ANNOUNCE_BYTES = 1024 * 1024;

/** A non-200 answer from the owner; `status` says which. */
export class HttpStatusError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** GET `path` from the owner; resolves with the body, rejects on a non-200 or an oversize body. */
export function httpGet(
  owner: Endpoint,
  path: string,
  maxBytes: number,
  signal?: AbortSignal,
  token?: string,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: owner.host ?? '127.0.0.1',
        port: owner.port,
        path,
        method: 'GET',
        ...(token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } }),
        timeout: HTTP_TIMEOUT_MS,
        signal,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxBytes) {
            req.destroy(new Error(`response from ${path} is larger than ${maxBytes} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => {
          if (res.statusCode !== 200) {
            reject(
              new HttpStatusError(
                res.statusCode ?? 0,
                `GET ${path.split('?')[0]} answered ${res.statusCode}: ${escapeUnsafe(Buffer.concat(chunks).toString('utf8', 0, 200).trim())}`,
              ),
            );
          } else {
            resolve(Buffer.concat(chunks));
          }
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () =>
      req.destroy(new Error(`GET ${path} timed out after ${HTTP_TIMEOUT_MS} ms`)),
    );
    req.on('error', reject);
    req.end();
  });
}

/** Fetches and validates the owner's `.torrent` (a dangerous name is refused by parseMetainfo). */
export async function fetchMetainfo(
  owner: Endpoint,
  signal?: AbortSignal,
  path = '/metainfo.torrent',
  token?: string,
): Promise<{ bytes: Buffer; metainfo: Metainfo }> {
  const bytes = await httpGet(owner, path, MAX_METAINFO_BYTES, signal, token);
  return { bytes, metainfo: parseMetainfo(bytes) };
}

export interface AnnounceResult {
  /** The initial batch the owner assigned us, when it assigned one. */
  readonly batch: number[] | undefined;
  readonly peers: number;
  /** The hosts of the peers in the answer (IPv4 and IPv6), as the owner's tracker saw them announce. */
  readonly hosts: string[];
  /** The peers the tracker listed (BEP 23 compact, and BEP 7 `peers6`): whom swarm mode dials. */
  readonly peerList: readonly Endpoint[];
}

/** Announces to the owner's tracker; reads swarmdrop's batch key (BATCH_KEY, protocol's tracker.ts). */
export async function announce(
  owner: Endpoint,
  fields: {
    infoHash: Uint8Array;
    peerId: Uint8Array;
    port: number;
    left: number;
    event?: 'started' | 'completed' | 'stopped';
    /** Peers wanted in the answer (swarm mode asks for --max-peers); the tracker's default without it. */
    numwant?: number;
  },
  signal?: AbortSignal,
  token?: string,
): Promise<AnnounceResult> {
  const query =
    announceQuery(fields) +
    // As a stock client would, from the tracker URL (the Bearer header carries it too).
    (token === undefined ? '' : `&key=${token}`);
  const body = await httpGet(owner, `/announce?${query}`, MAX_ANNOUNCE_BYTES, signal, token);
  const answer = decodeAnnounceResponse(body);
  if (answer.failure !== undefined)
    throw new Error(
      `tracker at ${formatEndpoint(owner.host, owner.port)} refused: ${answer.failure}`,
    );
  const { batch, peers, listed } = answer;
  const hosts = listed.map((p) => p.host);
  const peerList = listed.filter((p) => p.port > 0);
  return { batch, peers, hosts, peerList };
}

/** Bounds on the owner's "next report in" hint: a bad header cannot make a peer flood or go silent. */
export const REPORT_HINT_MIN_MS = 500;
export const REPORT_HINT_MAX_MS = 60_000;

/**
 * POSTs a dashboard report to the owner (DASHBOARD_REPORT_PATH); resolves on
 * its 204 with the owner's hint for the next report (ms, within
 * REPORT_HINT_MIN_MS..REPORT_HINT_MAX_MS; undefined from an owner that
 * gives none), rejects with an HttpStatusError on any other answer.
 */
export function postReport(
  owner: Endpoint,
  report: PeerReport,
  signal?: AbortSignal,
  token?: string,
): Promise<number | undefined> {
  const body = JSON.stringify(report);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: owner.host ?? '127.0.0.1',
        port: owner.port,
        path: DASHBOARD_REPORT_PATH,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
        },
        timeout: HTTP_TIMEOUT_MS,
        signal,
      },
      (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode !== 204) {
            reject(new HttpStatusError(res.statusCode ?? 0, `report: HTTP ${res.statusCode}`));
            return;
          }
          const hint = Number(res.headers[DASHBOARD_REPORT_HEADER]);
          resolve(
            Number.isFinite(hint) && hint > 0
              ? Math.min(REPORT_HINT_MAX_MS, Math.max(REPORT_HINT_MIN_MS, hint))
              : undefined,
          );
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('report timed out')));
    req.on('error', reject);
    req.end(body);
  });
}
