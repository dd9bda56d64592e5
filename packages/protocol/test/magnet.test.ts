import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { OptionError } from '../src/errors.js';
import { formatMagnet, looksLikeMagnet, MAX_MAGNET_ENTRIES, parseMagnet } from '../src/magnet.js';

const HEX = 'c12fe1c06bba254a9dc9f519b335aa7c1367a88a';

describe('magnet links', () => {
  it('reads the info-hash, name, trackers and peers', () => {
    const link = parseMagnet(
      `magnet:?xt=urn:btih:${HEX.toUpperCase()}&dn=big%20file.iso&tr=http%3A%2F%2F10.0.0.1%3A7000%2Fannounce&x.pe=10.0.0.2:6881&x.pe=[::1]:6882`,
      '<owner>',
    );
    expect(link.infoHash.toString('hex')).toBe(HEX);
    expect(link.name).toBe('big file.iso');
    expect(link.trackers).toEqual(['http://10.0.0.1:7000/announce']);
    expect(link.peers).toEqual([
      { host: '10.0.0.2', port: 6881 },
      { host: '::1', port: 6882 },
    ]);
  });

  it('reads a base32 info-hash as the same 20 bytes as its hex', () => {
    // RFC 4648 base32 of the 20 bytes above.
    const base32 = 'YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK';
    expect(parseMagnet(`magnet:?xt=urn:btih:${base32}`, 'x').infoHash.toString('hex')).toBe(HEX);
    expect(
      parseMagnet(`magnet:?xt=urn:btih:${base32.toLowerCase()}`, 'x').infoHash.toString('hex'),
    ).toBe(HEX);
  });

  it('formats what it parses back to the same link', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 20, maxLength: 20 }),
        fc.option(fc.string({ maxLength: 40 }), { nil: undefined }),
        fc.array(fc.webUrl(), { maxLength: 3 }),
        fc.array(fc.record({ host: fc.ipV4(), port: fc.integer({ min: 1, max: 65535 }) }), {
          maxLength: 3,
        }),
        (hash, name, trackers, peers) => {
          const text = formatMagnet({ infoHash: hash, name, trackers, peers });
          const back = parseMagnet(text, 'x');
          expect(back.infoHash.equals(Buffer.from(hash))).toBe(true);
          expect(back.name).toBe(name);
          expect(back.trackers).toEqual(trackers);
          expect(back.peers).toEqual(peers);
        },
      ),
    );
  });

  it('ignores parameters it does not know and a v2 hash next to the v1 one', () => {
    const link = parseMagnet(
      `magnet:?xt=urn:btmh:1220${'ab'.repeat(32)}&xt=urn:btih:${HEX}&xl=1000&so=0-3&kt=a+b`,
      'x',
    );
    expect(link.infoHash.toString('hex')).toBe(HEX);
  });

  it('keeps at most MAX_MAGNET_ENTRIES peers and trackers', () => {
    const peers = Array.from(
      { length: MAX_MAGNET_ENTRIES + 10 },
      (_, i) => `x.pe=10.0.0.1:${1000 + i}`,
    );
    const trackers = Array.from({ length: MAX_MAGNET_ENTRIES + 10 }, (_, i) => `tr=http://t${i}/a`);
    const link = parseMagnet(
      `magnet:?xt=urn:btih:${HEX}&${peers.join('&')}&${trackers.join('&')}`,
      'x',
    );
    expect(link.peers).toHaveLength(MAX_MAGNET_ENTRIES);
    expect(link.trackers).toHaveLength(MAX_MAGNET_ENTRIES);
  });

  it.each([
    ['not a magnet', 'http://x/y.torrent', /is not a magnet link/],
    ['no info-hash', 'magnet:?dn=file', /no BitTorrent v1 info-hash/],
    ['v2 only', `magnet:?xt=urn:btmh:1220${'ab'.repeat(32)}`, /no BitTorrent v1 info-hash/],
    ['a short hash', 'magnet:?xt=urn:btih:abcd', /is not an info-hash/],
    [
      'two hashes',
      `magnet:?xt=urn:btih:${HEX}&xt=urn:btih:${'0'.repeat(40)}`,
      /two different info-hashes/,
    ],
    [
      'bad percent-encoding',
      `magnet:?xt=urn:btih:${HEX}&dn=%E0%A4%A`,
      /not valid percent-encoding/,
    ],
    ['a peer without host', `magnet:?xt=urn:btih:${HEX}&x.pe=6881`, /names no host/],
    ['a peer with a bad port', `magnet:?xt=urn:btih:${HEX}&x.pe=10.0.0.1:99999`, /out of range/],
    [
      'a tracker that is no URL',
      `magnet:?xt=urn:btih:${HEX}&tr=file:///etc/passwd`,
      /is not an http/,
    ],
    ['an endless link', `magnet:?xt=urn:btih:${HEX}&dn=${'a'.repeat(9000)}`, /too long/],
  ])('refuses %s with one line naming the field', (_, text, message) => {
    let error: unknown;
    try {
      parseMagnet(text, '<owner>');
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(OptionError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).toMatch(/^<owner>/);
    expect((error as Error).message).not.toContain('\n');
  });

  it('tells a magnet link from other owner arguments', () => {
    expect(looksLikeMagnet(' MAGNET:?xt=urn:btih:x')).toBe(true);
    expect(looksLikeMagnet('swarmdrop://1.2.3.4:5/aa')).toBe(false);
    expect(looksLikeMagnet('7000')).toBe(false);
  });
});
