/**
 * FrameDecoder property tests (fast-check): every message round-trips, any
 * split of a stream into reads decodes the same, and garbage only ever
 * produces a WireError while the decoder buffers at most one frame.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  Bitfield,
  encodeMessage,
  FrameDecoder,
  Geometry,
  HANDSHAKE_LENGTH,
  MAX_BLOCK_LENGTH,
  type Message,
  WireError,
} from '../src/index.js';
import { normalize, splitAt, u32 } from './frames.js';

const RUNS = { numRuns: 300 };

/** A file of 1 byte to ~30 MB, in chunks of a few common and odd sizes. */
const geometryArb: fc.Arbitrary<Geometry> = fc
  .record({
    pieceLength: fc.oneof(
      fc.constantFrom(102_400, 16_384, 1 << 17, 1 << 20),
      fc.integer({ min: 1, max: 300_000 }),
    ),
    pieces: fc.integer({ min: 1, max: 300 }),
    tail: fc.nat(),
  })
  .map(({ pieceLength, pieces, tail }) => {
    const lastSize = (tail % pieceLength) + 1;
    return new Geometry((pieces - 1) * pieceLength + lastSize, pieceLength);
  });

const bytesArb = (length: number) => fc.uint8Array({ minLength: length, maxLength: length });

const handshakeArb: fc.Arbitrary<Message> = fc.record({
  type: fc.constant('handshake' as const),
  reserved: bytesArb(8),
  infoHash: bytesArb(20),
  peerId: bytesArb(20),
});

/** A block inside chunk bounds: index < pieceCount, begin + length <= pieceSize(index). */
function blockArb(g: Geometry, maxLength: number) {
  return fc.integer({ min: 0, max: g.pieceCount - 1 }).chain((index) => {
    const size = g.pieceSize(index);
    return fc.integer({ min: 1, max: Math.min(size, maxLength) }).chain((length) =>
      fc.record({
        index: fc.constant(index),
        begin: fc.integer({ min: 0, max: size - length }),
        length: fc.constant(length),
      }),
    );
  });
}

/** A bitfield of the right length with its spare bits zero. */
function bitfieldArb(g: Geometry): fc.Arbitrary<Message> {
  return fc
    .array(fc.boolean(), { minLength: g.pieceCount, maxLength: g.pieceCount })
    .map((bits) => {
      const field = new Bitfield(g.pieceCount);
      bits.forEach((held, i) => {
        if (held) field.set(i);
      });
      return { type: 'bitfield' as const, bytes: field.toBytes() };
    });
}

/** Any message after the handshake, valid for geometry `g`. */
function messageArb(g: Geometry): fc.Arbitrary<Message> {
  return fc.oneof(
    fc.constantFrom<Message>(
      { type: 'keepAlive' },
      { type: 'choke' },
      { type: 'unchoke' },
      { type: 'interested' },
      { type: 'notInterested' },
      { type: 'haveAll' },
      { type: 'haveNone' },
    ),
    fc
      .integer({ min: 0, max: g.pieceCount - 1 })
      .map((index) => ({ type: 'have' as const, index })),
    fc
      .integer({ min: 0, max: g.pieceCount - 1 })
      .chain((index) =>
        fc.constantFrom<Message>({ type: 'suggest', index }, { type: 'allowedFast', index }),
      ),
    bitfieldArb(g),
    blockArb(g, MAX_BLOCK_LENGTH).map((b) => ({ type: 'request' as const, ...b })),
    blockArb(g, MAX_BLOCK_LENGTH).map((b) => ({ type: 'cancel' as const, ...b })),
    // BEP 10: any extension id, any payload (MAX_EXTENDED_PAYLOAD is unit-tested).
    fc.record({
      type: fc.constant('extended' as const),
      id: fc.integer({ min: 0, max: 255 }),
      payload: fc.uint8Array({ maxLength: 300 }),
    }),
    blockArb(g, MAX_BLOCK_LENGTH).map((b) => ({ type: 'reject' as const, ...b })),
    // Blocks are kept small for speed; 16 KiB and MAX_BLOCK_LENGTH blocks are unit-tested.
    blockArb(g, 2048).chain((b) =>
      bytesArb(b.length).map((block) => ({
        type: 'piece' as const,
        index: b.index,
        begin: b.begin,
        block,
      })),
    ),
  );
}

/** A geometry, a handshake and up to 40 messages valid for it. */
const streamArb = geometryArb.chain((geometry) =>
  fc.record({
    geometry: fc.constant(geometry),
    handshake: handshakeArb,
    messages: fc.array(messageArb(geometry), { maxLength: 40 }),
  }),
);

/** The most a decoder may hold between pushes: one frame short of complete, or a handshake. */
function bufferBound(g: Geometry): number {
  const maxMessageLength = Math.max(9 + MAX_BLOCK_LENGTH, 1 + Bitfield.byteLength(g.pieceCount));
  return Math.max(HANDSHAKE_LENGTH, 4 + maxMessageLength);
}

/** Pushes every read; returns the messages, or the error (which must be a WireError). */
function feed(
  decoder: FrameDecoder,
  reads: readonly Uint8Array[],
  bound: number,
): { messages: Message[]; error: unknown } {
  const messages: Message[] = [];
  for (const read of reads) {
    try {
      messages.push(...decoder.push(read));
    } catch (error) {
      return { messages, error };
    }
    expect(decoder.buffered).toBeLessThanOrEqual(bound);
  }
  return { messages, error: undefined };
}

describe('FrameDecoder properties', () => {
  it('every message type round-trips encode -> decode, each in its own read', () => {
    fc.assert(
      fc.property(streamArb, ({ geometry, handshake, messages }) => {
        const decoder = new FrameDecoder({ geometry });
        expect(decoder.push(encodeMessage(handshake)).map(normalize)).toEqual([
          normalize(handshake),
        ]);
        for (const message of messages) {
          expect(decoder.push(encodeMessage(message)).map(normalize)).toEqual([normalize(message)]);
          expect(decoder.buffered).toBe(0);
        }
      }),
      RUNS,
    );
  });

  it('a stream split at arbitrary cut points decodes to the same messages', () => {
    fc.assert(
      fc.property(
        streamArb.chain((s) => {
          const bytes = Buffer.concat([s.handshake, ...s.messages].map(encodeMessage));
          return fc.record({
            s: fc.constant(s),
            bytes: fc.constant(bytes),
            cuts: fc.array(fc.nat(bytes.length), { maxLength: 60 }),
          });
        }),
        ({ s, bytes, cuts }) => {
          const decoder = new FrameDecoder({ geometry: s.geometry });
          const { messages, error } = feed(decoder, splitAt(bytes, cuts), bufferBound(s.geometry));
          expect(error).toBeUndefined();
          expect(messages.map(normalize)).toEqual([s.handshake, ...s.messages].map(normalize));
          expect(decoder.buffered).toBe(0);
        },
      ),
      RUNS,
    );
  });

  it('a stream fed one byte per read decodes to the same messages', () => {
    fc.assert(
      fc.property(streamArb, (s) => {
        const bytes = Buffer.concat([s.handshake, ...s.messages].map(encodeMessage));
        const reads = Array.from(bytes, (byte) => Uint8Array.of(byte));
        const decoder = new FrameDecoder({ geometry: s.geometry });
        const { messages, error } = feed(decoder, reads, bufferBound(s.geometry));
        expect(error).toBeUndefined();
        expect(messages.map(normalize)).toEqual([s.handshake, ...s.messages].map(normalize));
      }),
      { numRuns: 100 },
    );
  });

  it('random bytes only ever throw a WireError, and the buffer stays within one frame', () => {
    fc.assert(
      fc.property(
        geometryArb,
        fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }),
        fc.boolean(),
        (geometry, reads, expectHandshake) => {
          const decoder = new FrameDecoder({ geometry, expectHandshake });
          const { error } = feed(decoder, reads, bufferBound(geometry));
          if (error !== undefined) {
            expect(error).toBeInstanceOf(WireError);
            // Failed for good: the next push throws the same error.
            expect(() => decoder.push(Uint8Array.of(0))).toThrow(error as WireError);
          }
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('random bytes after a valid handshake only ever throw a WireError, buffer bounded', () => {
    fc.assert(
      fc.property(
        geometryArb,
        handshakeArb,
        fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }),
        (geometry, handshake, reads) => {
          const decoder = new FrameDecoder({ geometry });
          expect(decoder.push(encodeMessage(handshake))).toHaveLength(1);
          const { error } = feed(decoder, reads, bufferBound(geometry));
          if (error !== undefined) expect(error).toBeInstanceOf(WireError);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('framed garbage (right length prefix, any id and body) yields one result per frame or a WireError', () => {
    // Random bytes rarely form a plausible header; these frames reach every body check.
    const frameArb = fc
      .record({
        id: fc.oneof(fc.integer({ min: 0, max: 10 }), fc.integer({ min: 0, max: 255 })),
        body: fc.oneof(
          fc.uint8Array({ maxLength: 16 }),
          fc.uint8Array({ minLength: 12, maxLength: 12 }),
          fc.uint8Array({ maxLength: 2000 }),
        ),
      })
      .map(({ id, body }) => Buffer.concat([Buffer.from([...u32(1 + body.length), id]), body]));
    fc.assert(
      fc.property(
        geometryArb,
        fc.array(frameArb, { maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (geometry, frames, cuts) => {
          const decoder = new FrameDecoder({ geometry, expectHandshake: false });
          const bytes = Buffer.concat(frames);
          const { messages, error } = feed(
            decoder,
            splitAt(
              bytes,
              cuts.map((c) => c % (bytes.length + 1)),
            ),
            bufferBound(geometry),
          );
          if (error !== undefined) {
            expect(error).toBeInstanceOf(WireError);
          } else {
            expect(messages.length + decoder.unknownSkipped).toBe(frames.length);
          }
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('any length prefix over the limit fails as soon as its 4 bytes arrive', () => {
    fc.assert(
      fc.property(geometryArb, fc.nat(), fc.boolean(), (geometry, extra, withHandshake) => {
        const limit = bufferBound(geometry) - 4;
        const length = limit + 1 + (extra % (0xffff_ffff - limit));
        const decoder = new FrameDecoder({ geometry, expectHandshake: withHandshake });
        if (withHandshake) {
          decoder.push(
            encodeMessage({
              type: 'handshake',
              reserved: new Uint8Array(8),
              infoHash: new Uint8Array(20),
              peerId: new Uint8Array(20),
            }),
          );
        }
        const header = Buffer.from(u32(length));
        expect(decoder.push(header.subarray(0, 3))).toEqual([]);
        let error: unknown;
        try {
          decoder.push(header.subarray(3));
        } catch (err) {
          error = err;
        }
        expect(error).toBeInstanceOf(WireError);
        expect(error).toMatchObject({ code: 'ERR_FRAME_TOO_LARGE' });
        expect(decoder.buffered).toBe(0);
      }),
      RUNS,
    );
  });
});
