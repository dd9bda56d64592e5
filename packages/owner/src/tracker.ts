import {
  bencodeEncode,
  encodeCompactPeers,
  encodeCompactPeers6,
  type TrackerPeer,
} from '@swarmdrop/protocol';

/** Announce interval we ask clients to keep, in seconds. */
export const ANNOUNCE_INTERVAL_S = 30;
/** The announce response key carrying a swarmdrop peer's initial batch; stock clients ignore it. */
export const BATCH_KEY = 'swarmdrop batch';

export interface AnnounceRequest {
  readonly infoHash: Buffer;
  readonly peerId: Buffer;
  readonly port: number;
  readonly left: number | undefined;
  readonly event: string | undefined;
  readonly compact: boolean;
}

export class AnnounceError extends Error {}

/**
 * Splits a raw query string into byte values: `info_hash` and `peer_id` are
 * percent-encoded binary, which URLSearchParams would mangle as UTF-8.
 */
export function parseQueryBytes(query: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const part of query.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const key = decodePercent(eq === -1 ? part : part.slice(0, eq)).toString('latin1');
    out.set(key, decodePercent(eq === -1 ? '' : part.slice(eq + 1)));
  }
  return out;
}

function decodePercent(text: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x25 /* % */) {
      const hex = text.slice(i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(hex))
        throw new AnnounceError(`bad percent-encoding near "${text.slice(i, i + 3)}"`);
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else if (c === 0x2b /* + */) {
      bytes.push(0x20);
    } else if (c < 0x80) {
      bytes.push(c);
    } else {
      throw new AnnounceError('non-ASCII character in query');
    }
  }
  return Buffer.from(bytes);
}

/** Validates an announce query; throws AnnounceError naming the bad parameter. */
export function parseAnnounce(query: string): AnnounceRequest {
  const q = parseQueryBytes(query);
  const infoHash = q.get('info_hash');
  if (infoHash?.length !== 20) throw new AnnounceError('info_hash must be 20 bytes');
  const peerId = q.get('peer_id');
  if (peerId?.length !== 20) throw new AnnounceError('peer_id must be 20 bytes');
  const portText = q.get('port')?.toString('latin1') ?? '';
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < 1 || port > 65_535)
    throw new AnnounceError('port must be 1-65535');
  const leftText = q.get('left')?.toString('latin1');
  const left = leftText !== undefined && /^\d+$/.test(leftText) ? Number(leftText) : undefined;
  return {
    infoHash,
    peerId,
    port,
    left,
    event: q.get('event')?.toString('latin1') || undefined,
    compact: q.get('compact')?.toString('latin1') !== '0',
  };
}

export type SwarmPeer = TrackerPeer;

export function announceResponse(fields: {
  peers: readonly SwarmPeer[];
  complete: number;
  incomplete: number;
  batch?: readonly number[] | undefined;
}): Buffer {
  const body: Record<string, unknown> = {
    complete: fields.complete,
    incomplete: fields.incomplete,
    interval: ANNOUNCE_INTERVAL_S,
    'min interval': 5,
    peers: encodeCompactPeers(fields.peers),
  };
  const peers6 = encodeCompactPeers6(fields.peers);
  if (peers6.length > 0) body.peers6 = peers6;
  if (fields.batch) body[BATCH_KEY] = [...fields.batch];
  return bencodeEncode(body);
}

export function announceFailure(reason: string): Buffer {
  return bencodeEncode({ 'failure reason': reason });
}
