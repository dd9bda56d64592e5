/** Geometry: how a file divides into chunks and 16 KiB wire blocks. */

import { thrown } from '@swarmdrop/testkit';
import { describe, expect, it } from 'vitest';
import { BLOCK_SIZE, DEFAULT_CHUNK_SIZE, Geometry } from '../src/index.js';

describe('Geometry', () => {
  it('counts chunks and sizes the last, shorter one', () => {
    const g = new Geometry(5 * DEFAULT_CHUNK_SIZE + 1, DEFAULT_CHUNK_SIZE);
    expect(g.pieceCount).toBe(6);
    expect(g.pieceSize(0)).toBe(DEFAULT_CHUNK_SIZE);
    expect(g.pieceSize(4)).toBe(DEFAULT_CHUNK_SIZE);
    expect(g.pieceSize(5)).toBe(1);
    expect(g.pieceSize(6)).toBe(0);
    expect(g.pieceSize(-1)).toBe(0);
  });

  it('an exact multiple has no short chunk; an empty file has none at all', () => {
    const exact = new Geometry(5 * DEFAULT_CHUNK_SIZE, DEFAULT_CHUNK_SIZE);
    expect(exact.pieceCount).toBe(5);
    expect(exact.pieceSize(4)).toBe(DEFAULT_CHUNK_SIZE);
    expect(new Geometry(0, DEFAULT_CHUNK_SIZE).pieceCount).toBe(0);
  });

  it('splits a chunk into 16 KiB blocks covering it exactly', () => {
    const g = new Geometry(DEFAULT_CHUNK_SIZE + 1000, DEFAULT_CHUNK_SIZE);
    const blocks = g.blocks(0);
    expect(blocks).toHaveLength(7);
    expect(blocks[6]).toEqual({
      begin: 6 * BLOCK_SIZE,
      length: DEFAULT_CHUNK_SIZE - 6 * BLOCK_SIZE,
    });
    expect(blocks.reduce((sum, b) => sum + b.length, 0)).toBe(DEFAULT_CHUNK_SIZE);
    expect(g.blocks(1)).toEqual([{ begin: 0, length: 1000 }]);
    expect(g.blocks(2)).toEqual([]);
  });

  it('rejects negative or fractional lengths and a zero piece length', () => {
    for (const [total, piece] of [
      [-1, 10],
      [1.5, 10],
      [10, 0],
      [10, -5],
    ] as const) {
      expect(thrown(() => new Geometry(total, piece))).toBeInstanceOf(RangeError);
    }
  });
});
