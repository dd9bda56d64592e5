/** Bitfield: the chunk ID list, and its BEP 3 wire form. */

import { thrown } from '@swarmdrop/testkit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Bitfield, WireError } from '../src/index.js';

describe('Bitfield', () => {
  it('set/has/clear/count/missing/heldIds track the held chunks', () => {
    const field = new Bitfield(10);
    expect(field.count()).toBe(0);
    expect(field.missing()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(field.set(3)).toBe(true);
    expect(field.set(3)).toBe(false);
    expect(field.set(9)).toBe(true);
    expect(field.set(0)).toBe(true);
    expect(field.has(3)).toBe(true);
    expect(field.has(4)).toBe(false);
    expect(field.count()).toBe(3);
    expect(field.heldIds()).toEqual([0, 3, 9]);
    expect(field.missing()).toEqual([1, 2, 4, 5, 6, 7, 8]);
    expect(field.clear(3)).toBe(true);
    expect(field.clear(3)).toBe(false);
    expect(field.count()).toBe(2);
    expect(field.heldIds()).toEqual([0, 9]);
    expect(field.isComplete()).toBe(false);
  });

  it('is complete once every chunk is set', () => {
    const field = new Bitfield(3);
    for (const i of [2, 0, 1]) field.set(i);
    expect(field.isComplete()).toBe(true);
    expect(field.missing()).toEqual([]);
  });

  it('puts chunk 0 in the high bit of byte 0, as BEP 3 says', () => {
    const field = new Bitfield(12);
    field.set(0);
    field.set(7);
    field.set(8);
    field.set(11);
    expect(Array.from(field.toBytes())).toEqual([0b1000_0001, 0b1001_0000]);
  });

  it('has() is false and set()/clear() throw RangeError for indexes out of range', () => {
    const field = new Bitfield(8);
    for (const bad of [-1, 8, 1.5, Number.NaN]) {
      expect(field.has(bad)).toBe(false);
      expect(thrown(() => field.set(bad))).toBeInstanceOf(RangeError);
      expect(thrown(() => field.clear(bad))).toBeInstanceOf(RangeError);
    }
    expect(thrown(() => new Bitfield(-1))).toBeInstanceOf(RangeError);
  });

  it('toBytes returns a copy', () => {
    const field = new Bitfield(8);
    const bytes = field.toBytes();
    bytes[0] = 0xff;
    expect(field.count()).toBe(0);
    expect(field.toBytes()[0]).toBe(0);
  });

  it('fromBytes rejects a wrong length with ERR_BITFIELD_LENGTH', () => {
    for (const [length, size] of [
      [1, 9],
      [3, 9],
      [1, 0],
      [0, 1],
    ] as const) {
      const err = thrown(() => Bitfield.fromBytes(new Uint8Array(length), size));
      expect(err).toBeInstanceOf(WireError);
      expect(err).toMatchObject({ code: 'ERR_BITFIELD_LENGTH' });
    }
  });

  it('fromBytes rejects any spare bit set with ERR_BITFIELD_SPARE_BITS', () => {
    // 13 chunks: 2 bytes, the low 3 bits of byte 1 are spare.
    for (const spare of [0b001, 0b010, 0b100]) {
      const err = thrown(() => Bitfield.fromBytes(Uint8Array.of(0xff, 0b1111_1000 | spare), 13));
      expect(err).toMatchObject({ code: 'ERR_BITFIELD_SPARE_BITS' });
    }
    expect(Bitfield.fromBytes(Uint8Array.of(0xff, 0b1111_1000), 13).count()).toBe(13);
  });

  it('byteLength is ceil(size / 8)', () => {
    expect([0, 1, 8, 9, 16, 17].map((n) => Bitfield.byteLength(n))).toEqual([0, 1, 1, 2, 2, 3]);
  });

  it('property: any set of IDs survives to/from bytes, with spare bits zero', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 500 }).chain((size) =>
          fc.record({
            size: fc.constant(size),
            ids: fc.uniqueArray(fc.integer({ min: 0, max: Math.max(0, size - 1) }), {
              maxLength: size,
            }),
          }),
        ),
        ({ size, ids }) => {
          const held = size === 0 ? [] : ids;
          const field = new Bitfield(size);
          for (const id of held) field.set(id);
          const sorted = [...held].sort((a, b) => a - b);
          expect(field.heldIds()).toEqual(sorted);
          expect(field.count()).toBe(sorted.length);
          expect(field.missing().length + field.count()).toBe(size);
          expect(field.missing().some((id) => field.has(id))).toBe(false);
          const bytes = field.toBytes();
          expect(bytes.length).toBe(Bitfield.byteLength(size));
          const back = Bitfield.fromBytes(bytes, size);
          expect(back.heldIds()).toEqual(sorted);
          expect(back.count()).toBe(sorted.length);
        },
      ),
      { numRuns: 300 },
    );
  });
});
