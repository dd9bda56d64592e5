/**
 * The tracker's byte-level encodings (BEP 3 announce queries, BEP 23/7 compact
 * peer lists), shared by the owner's tracker, the peer's tracker client and
 * the tests. Pure: no sockets.
 */

/** An address as a tracker lists it. */
export interface TrackerPeer {
  readonly host: string;
  readonly port: number;
}

/**
 * Every byte as `%xx`: how a tracker client sends `info_hash` and `peer_id`,
 * which are binary and would be mangled as UTF-8 text.
 */
export function percentEncodeBytes(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += `%${b.toString(16).padStart(2, '0')}`;
  return out;
}

export interface AnnounceQueryFields {
  readonly infoHash: Uint8Array;
  readonly peerId: Uint8Array;
  readonly port: number;
  readonly left: number;
  readonly uploaded?: number;
  readonly downloaded?: number;
  readonly event?: 'started' | 'completed' | 'stopped' | undefined;
  readonly numwant?: number | undefined;
}

/** The query string of an announce (without the leading `?`), compact peers requested. */
export function announceQuery(fields: AnnounceQueryFields): string {
  const parts = [
    `info_hash=${percentEncodeBytes(fields.infoHash)}`,
    `peer_id=${percentEncodeBytes(fields.peerId)}`,
    `port=${fields.port}`,
    `uploaded=${fields.uploaded ?? 0}`,
    `downloaded=${fields.downloaded ?? 0}`,
    `left=${fields.left}`,
    'compact=1',
  ];
  if (fields.numwant !== undefined) parts.push(`numwant=${fields.numwant}`);
  if (fields.event) parts.push(`event=${fields.event}`);
  return parts.join('&');
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** BEP 23: 6 bytes per IPv4 peer (address, port); other addresses are left out. */
export function encodeCompactPeers(peers: readonly TrackerPeer[]): Buffer {
  const v4 = peers.filter((p) => IPV4.test(p.host));
  const out = Buffer.allocUnsafe(v4.length * 6);
  v4.forEach((p, i) => {
    p.host.split('.').forEach((octet, j) => {
      out[i * 6 + j] = Number(octet);
    });
    out.writeUInt16BE(p.port, i * 6 + 4);
  });
  return out;
}

/** BEP 7: 18 bytes per IPv6 peer (address, port), for the `peers6` key. */
export function encodeCompactPeers6(peers: readonly TrackerPeer[]): Buffer {
  const v6 = peers.filter((p) => p.host.includes(':'));
  const out = Buffer.alloc(v6.length * 18);
  v6.forEach((p, i) => {
    ipv6Bytes(p.host).copy(out, i * 18);
    out.writeUInt16BE(p.port, i * 18 + 16);
  });
  return out;
}

/** The peers of a BEP 23 compact list; a trailing partial entry is ignored. */
export function decodeCompactPeers(bytes: Uint8Array): TrackerPeer[] {
  const out: TrackerPeer[] = [];
  for (let i = 0; i + 6 <= bytes.length; i += 6) {
    out.push({
      host: `${bytes[i]}.${bytes[i + 1]}.${bytes[i + 2]}.${bytes[i + 3]}`,
      port: (bytes[i + 4]! << 8) | bytes[i + 5]!,
    });
  }
  return out;
}

/** The peers of a BEP 7 `peers6` list; a trailing partial entry is ignored. */
export function decodeCompactPeers6(bytes: Uint8Array): TrackerPeer[] {
  const out: TrackerPeer[] = [];
  for (let i = 0; i + 18 <= bytes.length; i += 18) {
    const groups: string[] = [];
    for (let g = 0; g < 8; g++)
      groups.push(((bytes[i + 2 * g]! << 8) | bytes[i + 2 * g + 1]!).toString(16));
    out.push({ host: groups.join(':'), port: (bytes[i + 16]! << 8) | bytes[i + 17]! });
  }
  return out;
}

/** The 16 bytes of an IPv6 address (`::1`, `fe80::1%eth0`, `::ffff:1.2.3.4`). */
function ipv6Bytes(host: string): Buffer {
  const text = host.replace(/%.*$/, '');
  const out = Buffer.alloc(16);
  let groups = text.split(':');
  const last = groups[groups.length - 1]!;
  if (last.includes('.')) {
    const [a, b, c, d] = last.split('.').map(Number) as [number, number, number, number];
    groups = [...groups.slice(0, -1), ((a << 8) | b).toString(16), ((c << 8) | d).toString(16)];
  }
  const gap = groups.indexOf('');
  if (gap !== -1) {
    const head = groups.slice(0, gap).filter((g) => g !== '');
    const tail = groups.slice(gap + 1).filter((g) => g !== '');
    groups = [...head, ...Array<string>(8 - head.length - tail.length).fill('0'), ...tail];
  }
  groups.forEach((g, i) => {
    out.writeUInt16BE(Number.parseInt(g, 16), i * 2);
  });
  return out;
}
