/**
 * FrameDecoder unit tests: a fixture stream, and every limit with its error
 * code, checked on the header before the body is buffered.
 */

import { thrown } from '@swarmdrop/testkit';
import { describe, expect, it } from 'vitest';
import {
  Bitfield,
  encodeMessage,
  encodePieceHeader,
  FrameDecoder,
  Geometry,
  HANDSHAKE_LENGTH,
  MAX_BLOCK_LENGTH,
  MAX_EXTENDED_PAYLOAD,
  type Message,
  WireError,
} from '../src/index.js';
import { frame, normalize, splitAt, u32 } from './frames.js';

const CHUNK = 102_400;
/** Five full chunks and a last one of 1000 bytes: chunk 5 is the short one. */
const geometry = new Geometry(5 * CHUNK + 1000, CHUNK);
const INFO_HASH = Buffer.alloc(20, 0xab);
const PEER_ID = Buffer.from('-SD0100-07001-abcdef', 'latin1');
const handshake: Message = {
  type: 'handshake',
  reserved: new Uint8Array(8),
  infoHash: INFO_HASH,
  peerId: PEER_ID,
};
const HANDSHAKE_BYTES = encodeMessage(handshake);

function bitfieldOf(ids: number[], size = geometry.pieceCount): Uint8Array {
  const field = new Bitfield(size);
  for (const id of ids) field.set(id);
  return field.toBytes();
}

const fixture: Message[] = [
  handshake,
  { type: 'bitfield', bytes: bitfieldOf([0, 2, 5]) },
  { type: 'keepAlive' },
  { type: 'interested' },
  { type: 'unchoke' },
  { type: 'request', index: 0, begin: 0, length: 16_384 },
  { type: 'request', index: 5, begin: 0, length: 1000 },
  { type: 'piece', index: 5, begin: 984, block: Buffer.alloc(16, 7) },
  { type: 'cancel', index: 0, begin: 16_384, length: 16_384 },
  { type: 'have', index: 4 },
  { type: 'choke' },
  { type: 'notInterested' },
  // BEP 6: decoded whatever the handshakes said; Connection decides whether they are allowed.
  { type: 'haveAll' },
  { type: 'haveNone' },
  { type: 'suggest', index: 3 },
  { type: 'allowedFast', index: 5 },
  { type: 'reject', index: 5, begin: 0, length: 1000 },
];
const FIXTURE_BYTES = Buffer.concat(fixture.map(encodeMessage));

function decoder(options: Partial<ConstructorParameters<typeof FrameDecoder>[0]> = {}) {
  return new FrameDecoder({ geometry, ...options });
}

/** A decoder already past the handshake. */
function afterHandshake(options: Partial<ConstructorParameters<typeof FrameDecoder>[0]> = {}) {
  const d = decoder(options);
  expect(d.push(HANDSHAKE_BYTES).map(normalize)).toEqual([normalize(handshake)]);
  return d;
}

function codeOf(err: unknown): string | undefined {
  expect(err).toBeInstanceOf(WireError);
  return err instanceof WireError ? err.code : undefined;
}

describe('FrameDecoder: the fixture stream', () => {
  it('decodes a stream of every message type in one read', () => {
    const d = decoder();
    expect(d.push(FIXTURE_BYTES).map(normalize)).toEqual(fixture.map(normalize));
    expect(d.buffered).toBe(0);
  });

  it('decodes the fixture split into two reads at every byte offset', () => {
    const want = fixture.map(normalize);
    for (let cut = 0; cut <= FIXTURE_BYTES.length; cut++) {
      const d = decoder();
      const got = [
        ...d.push(FIXTURE_BYTES.subarray(0, cut)),
        ...d.push(FIXTURE_BYTES.subarray(cut)),
      ];
      expect(got.map(normalize), `cut at ${cut}`).toEqual(want);
    }
  });

  it('decodes the fixture fed one byte at a time, holding partial frames', () => {
    const d = decoder();
    const got: Message[] = [];
    for (const piece of splitAt(
      FIXTURE_BYTES,
      Array.from({ length: FIXTURE_BYTES.length }, (_, i) => i),
    )) {
      got.push(...d.push(piece));
    }
    expect(got.map(normalize)).toEqual(fixture.map(normalize));
    expect(d.buffered).toBe(0);
  });

  it('returns nothing for an incomplete frame and counts its bytes as buffered', () => {
    const d = afterHandshake();
    const have = encodeMessage({ type: 'have', index: 3 });
    expect(d.push(have.subarray(0, 7))).toEqual([]);
    expect(d.buffered).toBe(2);
    expect(d.push(have.subarray(7)).map(normalize)).toEqual([
      normalize({ type: 'have', index: 3 }),
    ]);
    expect(d.buffered).toBe(0);
  });

  it('decodes without a handshake when expectHandshake is false', () => {
    const d = decoder({ expectHandshake: false });
    const bytes = Buffer.concat([
      encodeMessage({ type: 'keepAlive' }),
      encodeMessage({ type: 'have', index: 1 }),
    ]);
    expect(d.push(bytes).map((m) => m.type)).toEqual(['keepAlive', 'have']);
  });

  it('accepts blocks of 16 KiB and of MAX_BLOCK_LENGTH, and the chunk tail exactly', () => {
    const big = new Geometry(4 * MAX_BLOCK_LENGTH, 2 * MAX_BLOCK_LENGTH);
    const d = new FrameDecoder({ geometry: big, expectHandshake: false });
    const blocks: Message[] = [
      { type: 'piece', index: 0, begin: 0, block: Buffer.alloc(16_384, 1) },
      {
        type: 'piece',
        index: 1,
        begin: MAX_BLOCK_LENGTH,
        block: Buffer.alloc(MAX_BLOCK_LENGTH, 2),
      },
      { type: 'request', index: 1, begin: MAX_BLOCK_LENGTH, length: MAX_BLOCK_LENGTH },
    ];
    expect(d.push(Buffer.concat(blocks.map(encodeMessage))).map(normalize)).toEqual(
      blocks.map(normalize),
    );
  });

  it('encodePieceHeader followed by the block equals encodeMessage of the piece', () => {
    const block = Buffer.from('some block bytes');
    expect(Buffer.concat([encodePieceHeader(3, 16_384, block.length), block])).toEqual(
      encodeMessage({ type: 'piece', index: 3, begin: 16_384, block }),
    );
  });

  it('refuses to encode a handshake whose fields have the wrong size', () => {
    expect(thrown(() => encodeMessage({ ...handshake, peerId: Buffer.alloc(19) }))).toBeInstanceOf(
      RangeError,
    );
    expect(
      thrown(() => encodeMessage({ ...handshake, infoHash: Buffer.alloc(21) })),
    ).toBeInstanceOf(RangeError);
  });
});

describe('FrameDecoder: unknown message ids', () => {
  it('decodes extended (20), skips port (9) and unknown messages, counts them, and goes on', () => {
    const d = afterHandshake();
    const handshake = Buffer.from('d1:md11:ut_metadatai1eee');
    const bytes = Buffer.concat([
      frame(20, [0, ...handshake]),
      frame(9, [0x1a, 0xe1]),
      frame(200),
      encodeMessage({ type: 'have', index: 2 }),
    ]);
    expect(d.push(bytes).map(normalize)).toEqual([
      normalize({ type: 'extended', id: 0, payload: handshake }),
      normalize({ type: 'have', index: 2 }),
    ]);
    expect(d.unknownSkipped).toBe(2);
  });

  it('skips an unknown body split across reads without buffering it', () => {
    const body = Buffer.alloc(50_000, 0x5a);
    const e = afterHandshake();
    const unknown = Buffer.concat([Buffer.from([...u32(1 + body.length), 21]), body]);
    for (let at = 0; at < unknown.length; at += 4096) {
      expect(e.push(unknown.subarray(at, at + 4096))).toEqual([]);
      expect(e.buffered).toBeLessThan(5);
    }
    expect(e.push(encodeMessage({ type: 'choke' })).map((m) => m.type)).toEqual(['choke']);
    expect(e.unknownSkipped).toBe(1);
  });

  it('still refuses an unknown id whose length is over the limit', () => {
    const d = afterHandshake();
    expect(codeOf(thrown(() => d.push(Buffer.from([...u32(0x7fff_ffff), 20]))))).toBe(
      'ERR_FRAME_TOO_LARGE',
    );
  });
});

describe('FrameDecoder: limits, each with its code', () => {
  it('ERR_FRAME_TOO_LARGE: a 0xFFFFFFFF length fails after only its 4 bytes', () => {
    const d = afterHandshake();
    expect(d.push(Buffer.from([0xff, 0xff, 0xff]))).toEqual([]);
    expect(codeOf(thrown(() => d.push(Buffer.from([0xff]))))).toBe('ERR_FRAME_TOO_LARGE');
    expect(d.buffered).toBe(0);
  });

  it('ERR_FRAME_TOO_LARGE: one byte over the largest legal frame, refused on the header', () => {
    const d = afterHandshake();
    const largest = 9 + MAX_BLOCK_LENGTH;
    expect(codeOf(thrown(() => d.push(Buffer.from(u32(largest + 1)))))).toBe('ERR_FRAME_TOO_LARGE');
  });

  it('ERR_FRAME_TOO_LARGE: honours a smaller maxBlockLength, down to what an extended message needs', () => {
    const d = afterHandshake({ maxBlockLength: 16_384 });
    expect(codeOf(thrown(() => d.push(Buffer.from(u32(2 + MAX_EXTENDED_PAYLOAD + 1)))))).toBe(
      'ERR_FRAME_TOO_LARGE',
    );
    const e = afterHandshake({ maxBlockLength: 16_384 });
    expect(codeOf(thrown(() => e.push(Buffer.from([...u32(9 + 16_384 + 1), 7]))))).toBe(
      'ERR_REQUEST_LENGTH',
    );
  });

  it.each([
    ['have with length 6', 4, 6],
    ['have with length 4', 4, 4],
    ['choke with length 2', 0, 2],
    ['interested with length 5', 2, 5],
    ['request with length 12', 6, 12],
    ['cancel with length 14', 8, 14],
    ['suggest with length 4', 13, 4],
    ['have all with length 2', 14, 2],
    ['have none with length 5', 15, 5],
    ['reject with length 12', 16, 12],
    ['allowed fast with length 6', 17, 6],
  ])('ERR_MESSAGE_LENGTH: %s, refused on the 5-byte header', (_name, id, length) => {
    const d = afterHandshake();
    expect(codeOf(thrown(() => d.push(Buffer.from([...u32(length), id]))))).toBe(
      'ERR_MESSAGE_LENGTH',
    );
  });

  it('ERR_PIECE_INDEX: have, request, cancel and piece with index == pieceCount', () => {
    const n = geometry.pieceCount;
    const bad: Message[] = [
      { type: 'have', index: n },
      { type: 'have', index: 0xffff_ffff },
      { type: 'request', index: n, begin: 0, length: 16 },
      { type: 'cancel', index: n, begin: 0, length: 16 },
      { type: 'piece', index: n, begin: 0, block: Buffer.alloc(16) },
      { type: 'suggest', index: n },
      { type: 'allowedFast', index: n },
      { type: 'reject', index: n, begin: 0, length: 16 },
    ];
    for (const message of bad) {
      const d = afterHandshake();
      expect(codeOf(thrown(() => d.push(encodeMessage(message)))), message.type).toBe(
        'ERR_PIECE_INDEX',
      );
    }
    // The last valid index is fine.
    expect(afterHandshake().push(encodeMessage({ type: 'have', index: n - 1 }))).toHaveLength(1);
  });

  it('ERR_REQUEST_LENGTH: request length 0 or over MAX_BLOCK_LENGTH, and an empty piece', () => {
    const big = new Geometry(4 * MAX_BLOCK_LENGTH, 4 * MAX_BLOCK_LENGTH);
    const bad: Buffer[] = [
      encodeMessage({ type: 'request', index: 0, begin: 0, length: 0 }),
      encodeMessage({ type: 'request', index: 0, begin: 0, length: MAX_BLOCK_LENGTH + 1 }),
      encodeMessage({ type: 'cancel', index: 0, begin: 0, length: 0 }),
      encodeMessage({ type: 'reject', index: 0, begin: 0, length: MAX_BLOCK_LENGTH + 1 }),
      encodeMessage({ type: 'piece', index: 0, begin: 0, block: Buffer.alloc(0) }),
    ];
    for (const bytes of bad) {
      const d = new FrameDecoder({ geometry: big, expectHandshake: false });
      expect(codeOf(thrown(() => d.push(bytes)))).toBe('ERR_REQUEST_LENGTH');
    }
    const small = new FrameDecoder({ geometry: big, expectHandshake: false, maxBlockLength: 1024 });
    expect(
      codeOf(
        thrown(() =>
          small.push(encodeMessage({ type: 'request', index: 0, begin: 0, length: 1025 })),
        ),
      ),
    ).toBe('ERR_REQUEST_LENGTH');
  });

  it('ERR_REQUEST_LENGTH: a piece longer than a block is refused on its header even when bitfields are bigger', () => {
    // 2 000 000 chunks: a bitfield frame (250 001 bytes) is larger than any piece frame may be.
    const many = new Geometry(2_000_000, 1);
    const d = new FrameDecoder({ geometry: many, expectHandshake: false });
    expect(codeOf(thrown(() => d.push(Buffer.from([...u32(9 + MAX_BLOCK_LENGTH + 1), 7]))))).toBe(
      'ERR_REQUEST_LENGTH',
    );
  });

  it('ERR_BLOCK_RANGE: a block running past the last, shorter chunk', () => {
    const bad: Message[] = [
      { type: 'request', index: 5, begin: 0, length: 1001 },
      { type: 'request', index: 5, begin: 1000, length: 1 },
      { type: 'cancel', index: 5, begin: 999, length: 2 },
      { type: 'reject', index: 5, begin: 999, length: 2 },
      { type: 'piece', index: 5, begin: 990, block: Buffer.alloc(11) },
      { type: 'request', index: 0, begin: CHUNK - 16_383, length: 16_384 },
      { type: 'request', index: 0, begin: 0xffff_ffff, length: 1 },
    ];
    for (const message of bad) {
      const d = afterHandshake();
      expect(
        codeOf(thrown(() => d.push(encodeMessage(message)))),
        JSON.stringify(normalize(message)),
      ).toBe('ERR_BLOCK_RANGE');
    }
    const ok: Message[] = [
      { type: 'request', index: 5, begin: 0, length: 1000 },
      { type: 'request', index: 0, begin: CHUNK - 16_384, length: 16_384 },
      { type: 'piece', index: 5, begin: 990, block: Buffer.alloc(10) },
    ];
    expect(afterHandshake().push(Buffer.concat(ok.map(encodeMessage)))).toHaveLength(3);
  });

  it('ERR_BITFIELD_LENGTH: one byte short or long, refused on the 5-byte header', () => {
    const expected = Bitfield.byteLength(geometry.pieceCount);
    for (const bytes of [expected - 1, expected + 1, 0, 1000]) {
      const d = afterHandshake();
      expect(codeOf(thrown(() => d.push(Buffer.from([...u32(1 + bytes), 5])))), `${bytes}`).toBe(
        'ERR_BITFIELD_LENGTH',
      );
    }
  });

  it('ERR_BITFIELD_SPARE_BITS: a bit set past the last chunk', () => {
    // 6 chunks: 1 byte, the low 2 bits are spare.
    for (const spare of [0b01, 0b10]) {
      const d = afterHandshake();
      expect(codeOf(thrown(() => d.push(frame(5, [0b1111_1100 | spare]))))).toBe(
        'ERR_BITFIELD_SPARE_BITS',
      );
    }
    expect(afterHandshake().push(frame(5, [0b1111_1100]))).toHaveLength(1);
  });

  it('ERR_HANDSHAKE: a wrong pstrlen fails on the first byte', () => {
    for (const first of [0, 18, 20, 0x47 /* G of an HTTP GET */]) {
      const d = decoder();
      expect(codeOf(thrown(() => d.push(Buffer.from([first]))))).toBe('ERR_HANDSHAKE');
    }
  });

  it('ERR_HANDSHAKE: a wrong protocol string fails at its first wrong byte, before 68 bytes', () => {
    for (let wrong = 1; wrong < 20; wrong++) {
      const bytes = Buffer.from(HANDSHAKE_BYTES);
      bytes[wrong] = bytes[wrong]! ^ 0x20;
      const d = decoder();
      // Everything before the wrong byte is accepted as "need more".
      expect(d.push(bytes.subarray(0, wrong))).toEqual([]);
      expect(codeOf(thrown(() => d.push(bytes.subarray(wrong, wrong + 1)))), `byte ${wrong}`).toBe(
        'ERR_HANDSHAKE',
      );
    }
  });

  it('ERR_INFO_HASH: a handshake for another torrent, when the decoder knows its info-hash', () => {
    const d = decoder({ infoHash: Buffer.alloc(20, 0xcd) });
    expect(d.push(HANDSHAKE_BYTES.subarray(0, HANDSHAKE_LENGTH - 1))).toEqual([]);
    expect(codeOf(thrown(() => d.push(HANDSHAKE_BYTES.subarray(HANDSHAKE_LENGTH - 1))))).toBe(
      'ERR_INFO_HASH',
    );
    expect(decoder({ infoHash: INFO_HASH }).push(HANDSHAKE_BYTES)).toHaveLength(1);
  });

  it('an empty file (no chunks): an empty bitfield is fine, any index is out of range', () => {
    const empty = new Geometry(0, CHUNK);
    const d = new FrameDecoder({ geometry: empty, expectHandshake: false });
    expect(d.push(frame(5)).map(normalize)).toEqual([
      normalize({ type: 'bitfield', bytes: new Uint8Array(0) }),
    ]);
    expect(codeOf(thrown(() => d.push(encodeMessage({ type: 'have', index: 0 }))))).toBe(
      'ERR_PIECE_INDEX',
    );
  });
});

describe('FrameDecoder: failure is final', () => {
  it('a failed decoder throws the same error again on the next push, even for good bytes', () => {
    const d = afterHandshake();
    const first = thrown(() => d.push(frame(4, [0, 0, 0, 99])));
    expect(codeOf(first)).toBe('ERR_PIECE_INDEX');
    expect(d.buffered).toBe(0);
    expect(thrown(() => d.push(encodeMessage({ type: 'have', index: 1 })))).toBe(first);
    expect(thrown(() => d.push(new Uint8Array(0)))).toBe(first);
  });

  it('messages before the violation in the same read are not returned', () => {
    const d = afterHandshake();
    const bytes = Buffer.concat([encodeMessage({ type: 'choke' }), frame(4, [], 6)]);
    expect(codeOf(thrown(() => d.push(bytes)))).toBe('ERR_MESSAGE_LENGTH');
  });
});

/*
 * Pins a bug: a message with an empty body (choke, unchoke, interested, not
 * interested, or the bitfield of a file with no chunks) at the very end of a
 * read made FrameDecoder.take(0) read `queue[0]` of an empty queue, and the
 * decoder failed the connection with ERR_MESSAGE_LENGTH. A lone `interested`
 * in its own TCP segment, the usual case, killed the connection.
 */
const bodiless: Message[] = [
  { type: 'choke' },
  { type: 'unchoke' },
  { type: 'interested' },
  { type: 'notInterested' },
];

describe('a message with an empty body ending a read', () => {
  it.each(bodiless.map((m) => [m.type, m] as const))('%s alone in a read decodes', (_t, m) => {
    const d = new FrameDecoder({ geometry: new Geometry(10, 5), expectHandshake: false });
    expect(d.push(encodeMessage(m))).toEqual([m]);
    expect(d.push(encodeMessage(m))).toEqual([m]);
  });

  it('the empty bitfield of a zero-chunk file alone in a read decodes', () => {
    const d = new FrameDecoder({ geometry: new Geometry(0, 5), expectHandshake: false });
    const [message] = d.push(encodeMessage({ type: 'bitfield', bytes: new Uint8Array(0) }));
    expect(message?.type).toBe('bitfield');
  });
});

describe('FrameDecoder with reuseBlockBuffer', () => {
  const pieceOf = (index: number, fill: number) =>
    encodeMessage({ type: 'piece', index, begin: 0, block: Buffer.alloc(CHUNK, fill) });

  it('puts a piece split over reads together in one buffer it reuses, with the right bytes each time', () => {
    const d = afterHandshake({ reuseBlockBuffer: true });
    const blocks: Uint8Array[] = [];
    for (const [index, fill] of [
      [0, 1],
      [1, 2],
    ] as const) {
      const bytes = pieceOf(index, fill);
      const got = splitAt(bytes, [70_000]).flatMap((part) => d.push(part));
      expect(got).toHaveLength(1);
      const block = (got[0] as Extract<Message, { type: 'piece' }>).block;
      // Checked before the next push: that is as long as the block is valid.
      expect(Buffer.from(block).equals(Buffer.alloc(CHUNK, fill))).toBe(true);
      blocks.push(block);
    }
    // The second piece was put together where the first was: no new buffer per piece.
    expect(blocks[1]!.buffer).toBe(blocks[0]!.buffer);
  });

  it('without it, each block is a buffer of its own that later pieces leave alone', () => {
    const d = afterHandshake();
    const first = splitAt(pieceOf(0, 1), [70_000]).flatMap((part) => d.push(part))[0] as Extract<
      Message,
      { type: 'piece' }
    >;
    splitAt(pieceOf(1, 2), [70_000]).flatMap((part) => d.push(part));
    expect(Buffer.from(first.block).equals(Buffer.alloc(CHUNK, 1))).toBe(true);
  });
});
