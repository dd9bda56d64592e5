import { BLOCK_SIZE } from './constants.js';

export interface Block {
  readonly begin: number;
  readonly length: number;
}

/** How a file of `totalLength` bytes divides into chunks (pieces) and wire blocks. */
export class Geometry {
  readonly totalLength: number;
  readonly pieceLength: number;
  readonly pieceCount: number;

  constructor(totalLength: number, pieceLength: number) {
    if (!Number.isSafeInteger(totalLength) || totalLength < 0) {
      throw new RangeError(`totalLength must be a non-negative integer, got ${totalLength}`);
    }
    if (!Number.isSafeInteger(pieceLength) || pieceLength <= 0) {
      throw new RangeError(`pieceLength must be a positive integer, got ${pieceLength}`);
    }
    this.totalLength = totalLength;
    this.pieceLength = pieceLength;
    this.pieceCount = Math.ceil(totalLength / pieceLength);
  }

  /** Size of chunk `index`: the last one may be shorter. */
  pieceSize(index: number): number {
    if (index < 0 || index >= this.pieceCount) return 0;
    if (index < this.pieceCount - 1) return this.pieceLength;
    return this.totalLength - this.pieceLength * (this.pieceCount - 1);
  }

  /** The 16 KiB blocks of chunk `index`, in order. */
  blocks(index: number, blockSize = BLOCK_SIZE): Block[] {
    const size = this.pieceSize(index);
    const out: Block[] = [];
    for (let begin = 0; begin < size; begin += blockSize) {
      out.push({ begin, length: Math.min(blockSize, size - begin) });
    }
    return out;
  }
}
