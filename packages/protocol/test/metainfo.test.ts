/**
 * Metainfo: build -> parse round trip, and every refusal naming its field
 * (err.field, err.code), with malformed torrents made by the bencode package.
 */
import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { thrown } from '@swarmdrop/testkit';
import bencode from 'bencode';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  buildMetainfo,
  DEFAULT_CHUNK_SIZE,
  MAX_METAINFO_BYTES,
  MAX_PIECE_COUNT,
  MAX_PIECE_LENGTH,
  MetainfoError,
  parseMetainfo,
  torrentFileName,
  withAnnounce,
} from '../src/index.js';

const hash = (i: number) => createHash('sha1').update(`chunk ${i}`).digest();
const sha1 = (bytes: Uint8Array) => createHash('sha1').update(bytes).digest();

/** A valid single-file info dictionary of 3 chunks, with `changes` merged in (undefined deletes). */
function info(changes: Record<string, unknown> = {}): Record<string, unknown> {
  const base: Record<string, unknown> = {
    length: 2 * DEFAULT_CHUNK_SIZE + 10,
    name: 'data.bin',
    'piece length': DEFAULT_CHUNK_SIZE,
    pieces: Buffer.concat([hash(0), hash(1), hash(2)]),
  };
  for (const [key, value] of Object.entries(changes)) {
    if (value === undefined) delete base[key];
    else base[key] = value;
  }
  return base;
}

function torrent(infoChanges: Record<string, unknown> = {}, top: Record<string, unknown> = {}) {
  return Buffer.from(
    bencode.encode({ announce: 'http://127.0.0.1:1/announce', info: info(infoChanges), ...top }),
  );
}

/** The MetainfoError parse throws; fails the test for anything else. */
function refusal(bytes: Uint8Array): MetainfoError {
  const err = thrown(() => parseMetainfo(bytes));
  expect(err).toBeInstanceOf(MetainfoError);
  expect(err).toMatchObject({ code: 'ERR_METAINFO' });
  return err as MetainfoError;
}

describe('buildMetainfo -> parseMetainfo', () => {
  it('round-trips every field and the same info-hash', () => {
    const sha256 = createHash('sha256').update('whole file').digest();
    const input = {
      name: 'movie.mkv',
      length: 3 * DEFAULT_CHUNK_SIZE - 1,
      pieceHashes: [hash(0), hash(1), hash(2)],
      sha256,
      announce: 'http://10.0.0.1:7000/announce',
    };
    const { bytes, metainfo } = buildMetainfo(input);
    const parsed = parseMetainfo(bytes);
    expect(parsed.infoHash.equals(metainfo.infoHash)).toBe(true);
    expect(parsed.name).toBe('movie.mkv');
    expect(parsed.length).toBe(input.length);
    expect(parsed.pieceLength).toBe(DEFAULT_CHUNK_SIZE);
    expect([...parsed.pieceHashes].map((h) => h.toString('hex'))).toEqual(
      [...input.pieceHashes].map((h) => h.toString('hex')),
    );
    expect(parsed.sha256?.equals(sha256)).toBe(true);
    expect(parsed.announce).toBe(input.announce);
    expect(parsed.geometry.pieceCount).toBe(3);
    expect(parsed.geometry.pieceSize(2)).toBe(DEFAULT_CHUNK_SIZE - 1);
    // The info-hash is the SHA-1 of the bencoded info dictionary.
    const top = bencode.decode(bytes) as { info: unknown };
    expect(parsed.infoHash.equals(sha1(bencode.encode(top.info)))).toBe(true);
  });

  it('builds an empty file (no chunks) and a torrent without announce or sha256', () => {
    const { bytes } = buildMetainfo({ name: 'empty', length: 0, pieceHashes: [] });
    const parsed = parseMetainfo(bytes);
    expect(parsed.length).toBe(0);
    expect(parsed.geometry.pieceCount).toBe(0);
    expect(parsed.announce).toBeUndefined();
    expect(parsed.sha256).toBeUndefined();
  });

  it('a custom piece length is kept', () => {
    const { metainfo } = buildMetainfo({
      name: 'x',
      length: 1 << 17,
      pieceLength: 1 << 16,
      pieceHashes: [hash(0), hash(1)],
    });
    expect(metainfo.pieceLength).toBe(1 << 16);
  });

  it('the info-hash covers the info dictionary exactly as written, extra keys included', () => {
    const bytes = torrent({ private: 1, source: 'x' }, { comment: 'hi', 'creation date': 1 });
    const parsed = parseMetainfo(bytes);
    const top = bencode.decode(bytes) as { info: unknown };
    expect(parsed.infoHash.equals(sha1(bencode.encode(top.info)))).toBe(true);
    // A different info dictionary gives a different hash.
    expect(parseMetainfo(torrent({ private: 0 })).infoHash.equals(parsed.infoHash)).toBe(false);
  });

  it('the info-hash of a non-canonical info dictionary (unsorted keys) is over its raw bytes', () => {
    const pieces = Buffer.concat([hash(0)]);
    const rawInfo = Buffer.concat([
      Buffer.from('d4:name1:x6:lengthi5e12:piece lengthi10e6:pieces20:'),
      pieces,
      Buffer.from('e'),
    ]);
    const bytes = Buffer.concat([Buffer.from('d4:info'), rawInfo, Buffer.from('e')]);
    const parsed = parseMetainfo(bytes);
    expect(parsed.infoHash.toString('hex')).toBe(sha1(rawInfo).toString('hex'));
  });
});

describe('parseMetainfo refusals name the field', () => {
  it.each([
    ['a path separator /', 'dir/file'],
    ['a backslash', 'dir\\file'],
    ['..', '..'],
    ['.', '.'],
    ['an absolute path', '/etc/passwd'],
    ['a Windows drive', 'C:evil.exe'],
    ['an empty name', ''],
    ['a control character', 'a\nb'],
    ['a right-to-left override (U+202E)', 'invoice\u202efdp.exe'],
    ['a bidi isolate (U+2067)', 'a\u2067b'],
    ['a zero-width space', 'a\u200bb'],
    ['a C1 control', 'a\u009bb'],
    ['a name over 255 bytes', 'x'.repeat(256)],
  ])('info.name: %s', (_what, name) => {
    expect(refusal(torrent({ name })).field).toBe('info.name');
  });

  it('info.name: missing or not a string', () => {
    expect(refusal(torrent({ name: undefined })).field).toBe('info.name');
    expect(refusal(torrent({ name: 7 })).field).toBe('info.name');
  });

  it('info.name: bytes that are not UTF-8 (they would silently become U+FFFD on disk)', () => {
    const err = refusal(torrent({ name: Buffer.from([0x61, 0xff, 0x62]) }));
    expect(err.field).toBe('info.name');
    expect(err.message).toContain('not valid UTF-8');
  });

  it('the refusal shows a bidi override escaped, never raw', () => {
    const err = refusal(torrent({ name: 'invoice\u202efdp.exe' }));
    expect(err.message).toContain('invoice\\u202efdp.exe');
    expect(err.message).not.toContain('\u202e');
  });

  it('accepts ordinary names with dots and spaces', () => {
    for (const name of ['my file.tar.gz', '.hidden', 'a..b', 'ünïcödé.txt']) {
      expect(parseMetainfo(torrent({ name })).name).toBe(name);
    }
  });

  it('info.pieces: a hash count that does not match the length', () => {
    expect(refusal(torrent({ pieces: Buffer.concat([hash(0), hash(1)]) })).field).toBe(
      'info.pieces',
    );
    expect(
      refusal(torrent({ pieces: Buffer.concat([hash(0), hash(1), hash(2), hash(3)]) })).field,
    ).toBe('info.pieces');
    expect(refusal(torrent({ length: 3 * DEFAULT_CHUNK_SIZE + 1 })).field).toBe('info.pieces');
  });

  it('info.pieces: not a multiple of 20 bytes, or missing', () => {
    expect(refusal(torrent({ pieces: Buffer.alloc(59) })).field).toBe('info.pieces');
    expect(refusal(torrent({ pieces: undefined })).field).toBe('info.pieces');
    expect(refusal(torrent({ pieces: 60 })).field).toBe('info.pieces');
  });

  it('info.piece length: zero, negative, absurd or not an integer', () => {
    for (const pieceLength of [0, -1, MAX_PIECE_LENGTH + 1, 2 ** 40, 'big']) {
      expect(refusal(torrent({ 'piece length': pieceLength })).field, String(pieceLength)).toBe(
        'info.piece length',
      );
    }
    expect(refusal(torrent({ 'piece length': undefined })).field).toBe('info.piece length');
    // The largest allowed piece length is fine.
    const largest = parseMetainfo(
      torrent({ 'piece length': MAX_PIECE_LENGTH, length: 5, pieces: hash(0) }),
    );
    expect(largest.pieceLength).toBe(MAX_PIECE_LENGTH);
  });

  it('info.length: negative, not an integer, or missing', () => {
    expect(refusal(torrent({ length: -1 })).field).toBe('info.length');
    expect(refusal(torrent({ length: '10' })).field).toBe('info.length');
    expect(refusal(torrent({ length: undefined })).field).toBe('info.length');
  });

  it('info.files: multi-file torrents', () => {
    const files = [{ length: 10, path: [Buffer.from('a')] }];
    expect(refusal(torrent({ files, length: undefined })).field).toBe('info.files');
    expect(refusal(torrent({ files })).field).toBe('info.files');
  });

  it('info.sha256: not 32 bytes', () => {
    expect(refusal(torrent({ sha256: Buffer.alloc(31) })).field).toBe('info.sha256');
    expect(refusal(torrent({ sha256: 5 })).field).toBe('info.sha256');
    expect(parseMetainfo(torrent({ sha256: Buffer.alloc(32, 1) })).sha256?.length).toBe(32);
  });

  it('announce: not a string', () => {
    expect(refusal(torrent({}, { announce: 5 })).field).toBe('announce');
  });

  it('info: missing or not a dictionary', () => {
    expect(refusal(Buffer.from(bencode.encode({ announce: 'x' }))).field).toBe('info');
    expect(refusal(Buffer.from('de')).field).toBe('info');
    expect(refusal(Buffer.from(bencode.encode({ info: 5 }))).field).toBe('info');
    expect(refusal(Buffer.from(bencode.encode({ info: [1, 2] }))).field).toBe('info');
  });

  it('torrent: not bencode, or not a dictionary', () => {
    for (const text of [
      '',
      'hello world',
      '<html>',
      'i5e',
      'le',
      '4:spam',
      'd4:info',
      'di5ei6ee',
    ]) {
      expect(refusal(Buffer.from(text)).field, JSON.stringify(text)).toBe('torrent');
    }
  });

  it('torrent: every truncation of a valid torrent', () => {
    const bytes = torrent();
    for (let end = 0; end < bytes.length; end++) {
      expect(refusal(bytes.subarray(0, end)).field, `first ${end} bytes`).toBe('torrent');
    }
  });

  it('torrent: nesting past the depth limit', () => {
    const deep = Buffer.from(`d4:info${'l'.repeat(100_000)}${'e'.repeat(100_000)}e`);
    expect(refusal(deep).field).toBe('torrent');
  });

  it('torrent: larger than MAX_METAINFO_BYTES, refused before decoding', () => {
    expect(refusal(Buffer.allocUnsafe(MAX_METAINFO_BYTES + 1)).field).toBe('torrent');
  });

  it('property: random bytes are refused with a MetainfoError, nothing else', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }),
          // Mostly bencode-looking bytes, which reach deeper into the decoder.
          fc
            .array(fc.constantFrom('d', 'l', 'i', 'e', '-', ':', '0', '1', '3', '4', 'info', 'x'), {
              maxLength: 60,
            })
            .map((parts) => Buffer.from(parts.join(''))),
        ),
        (bytes) => {
          try {
            parseMetainfo(bytes);
          } catch (err) {
            expect(err).toBeInstanceOf(MetainfoError);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('property: a valid torrent with any one byte changed parses or is refused with a MetainfoError', () => {
    const bytes = torrent();
    fc.assert(
      fc.property(fc.nat(bytes.length - 1), fc.integer({ min: 0, max: 255 }), (at, value) => {
        const mutated = Buffer.from(bytes);
        mutated[at] = value;
        try {
          parseMetainfo(mutated);
        } catch (err) {
          expect(err).toBeInstanceOf(MetainfoError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

/*
 * Pins a bug: bencode 4's decoder takes a string length of "-3" at face
 * value and moves its read position backwards, so `d1:a-3:e` (8 bytes from a
 * hostile owner or a corrupt file) made parseMetainfo, withAnnounce and
 * bencodeDecode (which reads the owner's tracker responses) loop forever and
 * hang the whole process. They now check the bencode strictly before
 * decoding.
 *
 * A regression is a synchronous infinite loop, which no test timeout can
 * interrupt, so each input is parsed in a worker thread that is terminated
 * after a deadline: a hang fails the test instead of hanging the run. The
 * worker loads the built package (turbo builds protocol before its tests).
 */
const hostile = ['d1:a-3:e', 'd4:infod-1:ee', 'd4:infol-5:ee', 'd-0:e', 'd4:infoi1e+3:abce'];
const DIST = new URL('../dist/index.js', import.meta.url).href;
const DEADLINE_MS = 10_000;

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
import(workerData.dist).then((m) => {
  const bytes = Buffer.from(workerData.text);
  const outcome = (fn) => {
    try { fn(); return 'returned'; } catch (err) { return err.constructor.name + (err.field ? ':' + err.field : ''); }
  };
  parentPort.postMessage({
    parseMetainfo: outcome(() => m.parseMetainfo(bytes)),
    withAnnounce: outcome(() => m.withAnnounce(bytes, 'http://x/announce')),
    bencodeDecode: outcome(() => m.bencodeDecode(bytes)),
  });
});
`;

function parseInWorker(text: string): Promise<Record<string, string>> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER, { eval: true, workerData: { dist: DIST, text } });
    const timer = setTimeout(() => {
      void worker.terminate();
      reject(
        new Error(`parsing ${JSON.stringify(text)} did not finish within ${DEADLINE_MS} ms (hang)`),
      );
    }, DEADLINE_MS);
    worker.once('message', (result: Record<string, string>) => {
      clearTimeout(timer);
      void worker.terminate();
      resolve(result);
    });
    worker.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

describe('a negative or signed bencode string length', () => {
  it.each(hostile)('%j is refused by every parser, without hanging', async (text) => {
    expect(await parseInWorker(text)).toEqual({
      parseMetainfo: 'MetainfoError:torrent',
      withAnnounce: 'MetainfoError:torrent',
      bencodeDecode: 'Error',
    });
  });
});

/*
 * Pins a bug: withAnnounce decoded the whole torrent and encoded it again,
 * which sorts dictionary keys, so a torrent whose info dictionary was not in
 * canonical key order came back with a different info-hash: a different
 * torrent. It now splices the raw info bytes through untouched.
 */
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

describe('torrentFileName', () => {
  // A legal name of 244-255 bytes used to fail with ENAMETOOLONG on `<name>.torrent.tmp`.
  it('keeps `<name>.torrent.tmp` within 255 bytes, cutting on a character boundary', () => {
    for (const name of ['x'.repeat(255), 'é'.repeat(127), `${'x'.repeat(240)}😀😀`]) {
      const file = torrentFileName(name);
      expect(Buffer.byteLength(`${file}.tmp`)).toBeLessThanOrEqual(255);
      expect(file.endsWith('.torrent')).toBe(true);
      expect(name.startsWith(file.slice(0, -'.torrent'.length))).toBe(true);
      expect(file).not.toContain('\ufffd');
    }
  });

  it('leaves a short name as `<name>.torrent`', () => {
    expect(torrentFileName('movie.mkv')).toBe('movie.mkv.torrent');
    expect(torrentFileName('x'.repeat(243))).toBe(`${'x'.repeat(243)}.torrent`);
  });
});

describe('a hostile metainfo at the piece-count limit', () => {
  // A fake owner serving 8 Mi pieces (then within the limit) made a peer reach
  // 2.1 GB of RSS: every piece hash became its own Buffer.
  const torrentOf = (count: number) =>
    Buffer.from(
      bencode.encode({
        info: {
          length: count,
          name: 'many',
          'piece length': 1,
          pieces: Buffer.alloc(20 * count, 0xab),
        },
      }),
    );

  it('MAX_PIECE_COUNT pieces parse into one buffer of hashes, with little heap', () => {
    const bytes = torrentOf(MAX_PIECE_COUNT);
    expect(bytes.length).toBeLessThanOrEqual(MAX_METAINFO_BYTES);
    const before = process.memoryUsage().heapUsed;
    const parsed = parseMetainfo(bytes);
    const grown = process.memoryUsage().heapUsed - before;
    expect(parsed.pieceHashes.count).toBe(MAX_PIECE_COUNT);
    expect(parsed.pieceHashes.bytes.length).toBe(20 * MAX_PIECE_COUNT);
    expect(parsed.pieceHashes.get(MAX_PIECE_COUNT - 1)?.equals(Buffer.alloc(20, 0xab))).toBe(true);
    // Two million Buffer objects took hundreds of MB of heap; one buffer takes next to none.
    expect(grown).toBeLessThan(64 * 1024 * 1024);
  });

  it('one piece more is refused, naming info.pieces', () => {
    const err = refusal(torrentOf(MAX_PIECE_COUNT + 1));
    expect(err.field).toBe('info.pieces');
    expect(err.message).toContain(`more than ${MAX_PIECE_COUNT}`);
  });
});
