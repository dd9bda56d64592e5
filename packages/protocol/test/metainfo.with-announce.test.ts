/**
 * Pins a bug: withAnnounce decoded the whole torrent and encoded it again,
 * which sorts dictionary keys, so a torrent whose info dictionary was not in
 * canonical key order came back with a different info-hash: a different
 * torrent. It now splices the raw info bytes through untouched.
 */
import { createHash } from 'node:crypto';
import bencode from 'bencode';
import { describe, expect, it } from 'vitest';
import { buildMetainfo, parseMetainfo, withAnnounce } from '../src/index.js';

const piece = createHash('sha1').update('x').digest();

describe('withAnnounce', () => {
  it('sets the announce URL of a built torrent and keeps its info-hash', () => {
    const { bytes, metainfo } = buildMetainfo({ name: 'f', length: 5, pieceHashes: [piece] });
    const moved = parseMetainfo(withAnnounce(bytes, 'http://10.1.2.3:7000/announce'));
    expect(moved.announce).toBe('http://10.1.2.3:7000/announce');
    expect(moved.infoHash.equals(metainfo.infoHash)).toBe(true);
    // Replacing an existing announce works the same way, and other keys survive.
    const again = withAnnounce(withAnnounce(bytes, 'http://a/1'), 'http://b/2');
    expect(parseMetainfo(again).announce).toBe('http://b/2');
    const top = bencode.decode(again) as Record<string, Uint8Array>;
    expect(Buffer.from(top['created by'] ?? []).toString()).toBe('swarmdrop');
  });

  it('keeps the info-hash of a torrent whose info keys are not sorted', () => {
    const rawInfo = Buffer.concat([
      Buffer.from('d6:pieces20:'),
      piece,
      Buffer.from('4:name1:f12:piece lengthi10e6:lengthi5ee'),
    ]);
    const original = Buffer.concat([
      Buffer.from('d7:comment2:hi4:info'),
      rawInfo,
      Buffer.from('e'),
    ]);
    const before = parseMetainfo(original);
    const after = parseMetainfo(withAnnounce(original, 'http://127.0.0.1:9/announce'));
    expect(before.infoHash.toString('hex')).toBe(createHash('sha1').update(rawInfo).digest('hex'));
    expect(after.infoHash.toString('hex')).toBe(before.infoHash.toString('hex'));
    expect(after.announce).toBe('http://127.0.0.1:9/announce');
  });

  it('the result is canonical bencode: top-level keys sorted', () => {
    const { bytes } = buildMetainfo({ name: 'f', length: 5, pieceHashes: [piece] });
    const out = withAnnounce(bytes, 'http://x/a');
    expect(out.equals(Buffer.from(bencode.encode(bencode.decode(out))))).toBe(true);
  });
});
