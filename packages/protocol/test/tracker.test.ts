/** The tracker's format: announce queries and answers, compact peer lists, the batch key. */
import { describe, expect, it } from 'vitest';
import {
  announceFailure,
  announceQuery,
  announceResponse,
  BATCH_KEY,
  bencodeDecode,
  decodeAnnounceResponse,
  decodeCompactPeers,
  decodeCompactPeers6,
  encodeCompactPeers,
  encodeCompactPeers6,
  parseAnnounce,
  percentEncodeBytes,
} from '../src/index.js';

describe('encodeCompactPeers6', () => {
  it('packs IPv6 addresses in all their spellings and skips IPv4', () => {
    const packed = encodeCompactPeers6([
      { host: '::1', port: 1 },
      { host: '2001:db8::8:800:200c:417a', port: 6881 },
      { host: '::ffff:1.2.3.4', port: 2 },
      { host: 'fe80::1%lo', port: 3 },
      { host: '10.0.0.1', port: 4 },
    ]);
    expect(packed.length).toBe(4 * 18);
    const hex = (i: number) => packed.subarray(i * 18, i * 18 + 16).toString('hex');
    expect(hex(0)).toBe('00000000000000000000000000000001');
    expect(hex(1)).toBe('20010db80000000000080800200c417a');
    expect(hex(2)).toBe('00000000000000000000ffff01020304');
    expect(hex(3)).toBe('fe800000000000000000000000000001');
    expect([0, 1, 2, 3].map((i) => packed.readUInt16BE(i * 18 + 16))).toEqual([1, 6881, 2, 3]);
  });

  it('decodes back to the same addresses', () => {
    const peers = [
      { host: '2001:db8:0:0:8:800:200c:417a', port: 6881 },
      { host: '0:0:0:0:0:0:0:1', port: 1 },
    ];
    const decoded = decodeCompactPeers6(encodeCompactPeers6(peers));
    expect(decoded.map((p) => p.port)).toEqual([6881, 1]);
    expect(decoded[0]!.host).toBe('2001:db8:0:0:8:800:200c:417a');
    expect(decoded[1]!.host).toBe('0:0:0:0:0:0:0:1');
  });
});

describe('encodeCompactPeers', () => {
  it('round-trips IPv4 peers and leaves out IPv6 ones', () => {
    const peers = [
      { host: '127.0.0.1', port: 6881 },
      { host: '10.1.2.3', port: 65535 },
    ];
    const packed = encodeCompactPeers([...peers, { host: '::1', port: 9 }]);
    expect(packed.length).toBe(12);
    expect(decodeCompactPeers(packed)).toEqual(peers);
  });

  it('ignores a trailing partial entry', () => {
    const packed = encodeCompactPeers([{ host: '1.2.3.4', port: 5 }]);
    expect(decodeCompactPeers(Buffer.concat([packed, Buffer.from([1, 2, 3])]))).toEqual([
      { host: '1.2.3.4', port: 5 },
    ]);
  });
});

describe('announceQuery', () => {
  it('percent-encodes every byte of the info-hash and peer id', () => {
    expect(percentEncodeBytes(Uint8Array.from([0, 0x41, 0xff]))).toBe('%00%41%ff');
    const query = announceQuery({
      infoHash: Buffer.alloc(20, 0xab),
      peerId: Buffer.alloc(20, 0x20),
      port: 7001,
      left: 42,
      event: 'started',
      numwant: 5,
    });
    const fields = new Map(query.split('&').map((kv) => kv.split('=') as [string, string]));
    expect(fields.get('info_hash')).toBe('%ab'.repeat(20));
    expect(fields.get('peer_id')).toBe('%20'.repeat(20));
    expect(fields.get('port')).toBe('7001');
    expect(fields.get('left')).toBe('42');
    expect(fields.get('event')).toBe('started');
    expect(fields.get('numwant')).toBe('5');
    expect(fields.get('compact')).toBe('1');
  });
});

describe('the announce format, both directions', () => {
  it('parseAnnounce reads what announceQuery writes', () => {
    const infoHash = Buffer.alloc(20, 0xab);
    const peerId = Buffer.from('-SD0001-%&=+ binary!');
    const request = parseAnnounce(
      announceQuery({ infoHash, peerId, port: 6881, left: 0, event: 'completed', numwant: 7 }),
    );
    expect(request.infoHash.equals(infoHash)).toBe(true);
    expect(request.peerId.equals(peerId)).toBe(true);
    expect(request).toMatchObject({ port: 6881, left: 0, event: 'completed', numwant: 7 });
  });

  it('decodeAnnounceResponse reads what announceResponse writes, the batch under BATCH_KEY', () => {
    const body = announceResponse({
      peers: [
        { host: '10.0.0.1', port: 1 },
        { host: '::1', port: 2 },
      ],
      complete: 1,
      incomplete: 2,
      batch: [0, 3, 4],
    });
    expect(Object.keys(bencodeDecode(body) as object)).toContain(BATCH_KEY);
    expect(decodeAnnounceResponse(body)).toEqual({
      batch: [0, 3, 4],
      peers: 1,
      listed: [
        { host: '10.0.0.1', port: 1 },
        { host: '0:0:0:0:0:0:0:1', port: 2 },
      ],
    });
    expect(decodeAnnounceResponse(announceFailure('no'))).toEqual({ failure: 'no' });
  });
});
