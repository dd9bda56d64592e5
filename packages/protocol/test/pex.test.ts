/** The ut_pex codec (BEP 11): round trips, the layout stock clients write, and hostile payloads. */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  bencodeDecode,
  bencodeEncode,
  decodePex,
  encodePex,
  PEX_FLAG,
  PEX_MAX_ENTRIES_RECEIVED,
  PEX_MAX_PAYLOAD_BYTES,
  type PexMessage,
  WireError,
} from '../src/index.js';

const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (err) {
    return err instanceof WireError ? err.code : `not a WireError: ${String(err)}`;
  }
  return undefined;
};

describe('encodePex', () => {
  it('writes IPv4 and IPv6 peers in their own keys, with one flag byte per added peer', () => {
    const bytes = encodePex({
      added: [
        { host: '10.0.0.1', port: 6881, flags: PEX_FLAG.seed | PEX_FLAG.reachable },
        { host: '::1', port: 7000, flags: PEX_FLAG.utp },
      ],
      dropped: [{ host: '10.0.0.2', port: 1 }],
    });
    const dict = bencodeDecode(bytes) as Record<string, Uint8Array>;
    expect(Buffer.from(dict.added!).toString('hex')).toBe('0a0000011ae1');
    expect([...dict['added.f']!]).toEqual([0x12]);
    expect(dict.added6!.length).toBe(18);
    expect([...dict['added6.f']!]).toEqual([0x04]);
    expect(Buffer.from(dict.dropped!).toString('hex')).toBe('0a0000020001');
    expect(dict.dropped6!.length).toBe(0);
  });
});

describe('decodePex', () => {
  it('reads what libtorrent writes (added, added.f, dropped; no IPv6 keys)', () => {
    const payload = bencodeEncode({
      added: Buffer.from('7f0000011b58c0a8000a1b59', 'hex'),
      'added.f': Buffer.from([0x10, 0x02]),
      dropped: Buffer.from('7f0000021b5a', 'hex'),
    });
    expect(decodePex(payload)).toEqual({
      added: [
        { host: '127.0.0.1', port: 7000, flags: 0x10 },
        { host: '192.168.0.10', port: 7001, flags: 0x02 },
      ],
      dropped: [{ host: '127.0.0.2', port: 7002 }],
    });
  });

  it('spells IPv6 hosts as a socket does (short form)', () => {
    const message = decodePex(
      encodePex({ added: [{ host: '::1', port: 9, flags: 0 }], dropped: [] }),
    );
    expect(message.added).toEqual([{ host: '::1', port: 9, flags: 0 }]);
  });

  it('takes peers without flags when added.f is missing or of the wrong length', () => {
    const peers = Buffer.from('7f0000011b587f0000011b59', 'hex');
    for (const flags of [undefined, Buffer.from([1]), Buffer.from([1, 2, 3])]) {
      const payload = bencodeEncode({ added: peers, ...(flags ? { 'added.f': flags } : {}) });
      expect(decodePex(payload).added.map((p) => p.flags)).toEqual([0, 0]);
    }
  });

  it('leaves out entries on port 0 and ignores keys it does not know', () => {
    const payload = bencodeEncode({
      added: Buffer.from('7f00000100007f0000011b58', 'hex'),
      'added.f': Buffer.from([0, 0]),
      extra: 5,
    });
    expect(decodePex(payload).added).toEqual([{ host: '127.0.0.1', port: 7000, flags: 0 }]);
  });

  it.each([
    ['not bencode', Buffer.from('garbage')],
    ['an empty payload', Buffer.alloc(0)],
    ['a list, not a dictionary', bencodeEncode([1, 2])],
    ['a string, not a dictionary', bencodeEncode(Buffer.from('abcdef'))],
    ['added as an integer', bencodeEncode({ added: 5 })],
    ['added of 7 bytes', bencodeEncode({ added: Buffer.alloc(7) })],
    ['dropped6 of 17 bytes', bencodeEncode({ dropped6: Buffer.alloc(17) })],
    [
      'too many added peers',
      bencodeEncode({ added: Buffer.alloc(6 * (PEX_MAX_ENTRIES_RECEIVED + 1), 1) }),
    ],
    ['an oversized payload', bencodeEncode({ x: Buffer.alloc(PEX_MAX_PAYLOAD_BYTES) })],
  ])('refuses %s with ERR_PEX_MESSAGE', (_what, payload) => {
    expect(codeOf(() => decodePex(payload))).toBe('ERR_PEX_MESSAGE');
  });

  it('accepts the most entries a stock client may send', () => {
    const payload = bencodeEncode({ added: Buffer.alloc(6 * PEX_MAX_ENTRIES_RECEIVED, 1) });
    expect(decodePex(payload).added).toHaveLength(PEX_MAX_ENTRIES_RECEIVED);
  });
});

const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join('.'));
const ipv6 = fc
  .array(fc.nat(0xffff), { minLength: 8, maxLength: 8 })
  // Not an IPv4-mapped one: those come back as IPv4, which is right, but not a round trip.
  .filter((g) => !(g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff))
  .map((g) => g.map((x) => x.toString(16)).join(':'));
const host = fc.oneof(ipv4, ipv6);
const port = fc.integer({ min: 1, max: 65_535 });
const messageArb: fc.Arbitrary<PexMessage> = fc.record({
  added: fc.array(fc.record({ host, port, flags: fc.nat(255) }), { maxLength: 60 }),
  dropped: fc.array(fc.record({ host, port }), { maxLength: 60 }),
});
const short = (h: string) =>
  h.includes(':') ? new URL(`http://[${h}]/`).hostname.slice(1, -1) : h;

describe('decodePex, property', () => {
  it('round-trips any message (IPv4 first, then IPv6, each in order)', () => {
    fc.assert(
      fc.property(messageArb, (message) => {
        const order = <T extends { host: string }>(list: readonly T[]) => [
          ...list.filter((p) => !p.host.includes(':')),
          ...list.filter((p) => p.host.includes(':')).map((p) => ({ ...p, host: short(p.host) })),
        ];
        expect(decodePex(encodePex(message))).toEqual({
          added: order(message.added),
          dropped: order(message.dropped),
        });
      }),
    );
  });

  it('throws only WireErrors, and returns bounded lists, for any bytes', () => {
    const mutated = fc
      .tuple(messageArb, fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 8 }))
      .map(([message, edits]) => {
        const bytes = encodePex(message);
        for (const [at, value] of edits) if (bytes.length > 0) bytes[at % bytes.length] = value;
        return bytes;
      });
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), mutated), (bytes) => {
        try {
          const message = decodePex(bytes);
          expect(message.added.length).toBeLessThanOrEqual(2 * PEX_MAX_ENTRIES_RECEIVED);
          expect(message.dropped.length).toBeLessThanOrEqual(2 * PEX_MAX_ENTRIES_RECEIVED);
        } catch (err) {
          expect(err).toBeInstanceOf(WireError);
          expect((err as WireError).code).toBe('ERR_PEX_MESSAGE');
          expect((err as Error).message).not.toContain('\n');
        }
      }),
      { numRuns: 2_000 },
    );
  });
});
