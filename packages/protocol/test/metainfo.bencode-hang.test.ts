/**
 * Pins a bug: bencode 4's decoder takes a string length of "-3" at face
 * value and moves its read position backwards, so `d1:a-3:e` (8 bytes from a
 * hostile owner or a corrupt file) made parseMetainfo, withAnnounce and
 * bencodeDecode (which reads the owner's tracker responses) loop forever and
 * hang the whole process. They now check the bencode strictly before
 * decoding. (A regression would hang this file rather than fail it: the loop
 * is synchronous.)
 */
import { describe, expect, it } from 'vitest';
import { bencodeDecode, MetainfoError, parseMetainfo, withAnnounce } from '../src/index.js';
import { thrown } from './helpers.js';

const hostile = ['d1:a-3:e', 'd4:infod-1:ee', 'd4:infol-5:ee', 'd-0:e', 'd4:infoi1e+3:abce'];

describe('a negative or signed bencode string length', () => {
  it.each(hostile)('parseMetainfo refuses %j with field "torrent"', (text) => {
    const err = thrown(() => parseMetainfo(Buffer.from(text)));
    expect(err).toBeInstanceOf(MetainfoError);
    expect(err).toMatchObject({ code: 'ERR_METAINFO', field: 'torrent' });
  });

  it.each(hostile)('withAnnounce refuses %j', (text) => {
    expect(thrown(() => withAnnounce(Buffer.from(text), 'http://x/announce'))).toBeInstanceOf(
      MetainfoError,
    );
  });

  it.each(hostile)('bencodeDecode refuses %j with an Error', (text) => {
    expect(thrown(() => bencodeDecode(Buffer.from(text)))).toBeInstanceOf(Error);
  });
});
