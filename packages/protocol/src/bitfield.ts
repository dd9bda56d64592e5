import { WireError } from './errors.js';

/**
 * The set of chunk IDs a process holds: the seed's "chunk ID list", which on
 * the wire is a BEP 3 bitfield (high bit of byte 0 is chunk 0).
 */
export class Bitfield {
  readonly size: number;
  private readonly bits: Uint8Array;
  private held = 0;

  constructor(size: number) {
    if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`bad bitfield size ${size}`);
    this.size = size;
    this.bits = new Uint8Array(Math.ceil(size / 8));
  }

  /** Bytes a bitfield message must carry for `size` chunks. */
  static byteLength(size: number): number {
    return Math.ceil(size / 8);
  }

  /** Reads wire bytes; rejects a wrong length or set spare bits with a WireError. */
  static fromBytes(bytes: Uint8Array, size: number): Bitfield {
    const expected = Bitfield.byteLength(size);
    if (bytes.length !== expected) {
      throw new WireError(
        'ERR_BITFIELD_LENGTH',
        `bitfield is ${bytes.length} bytes, expected ${expected} for ${size} chunks`,
      );
    }
    const spare = expected * 8 - size;
    if (spare > 0 && (bytes[expected - 1]! & ((1 << spare) - 1)) !== 0) {
      throw new WireError(
        'ERR_BITFIELD_SPARE_BITS',
        'bitfield has spare bits set past the last chunk',
      );
    }
    const field = new Bitfield(size);
    field.bits.set(bytes);
    for (const byte of bytes) field.held += popcount(byte);
    return field;
  }

  has(index: number): boolean {
    if (!Number.isInteger(index) || index < 0 || index >= this.size) return false;
    return (this.bits[index >> 3]! & (0x80 >> (index & 7))) !== 0;
  }

  /** Marks `index` held; returns false when it already was. */
  set(index: number): boolean {
    this.check(index);
    if (this.has(index)) return false;
    this.bits[index >> 3]! |= 0x80 >> (index & 7);
    this.held++;
    return true;
  }

  /** Marks `index` not held; returns false when it was not. */
  clear(index: number): boolean {
    this.check(index);
    if (!this.has(index)) return false;
    this.bits[index >> 3]! &= ~(0x80 >> (index & 7));
    this.held--;
    return true;
  }

  count(): number {
    return this.held;
  }

  isComplete(): boolean {
    return this.held === this.size;
  }

  /** IDs not held here, ascending. */
  missing(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.size; i++) if (!this.has(i)) out.push(i);
    return out;
  }

  /** IDs held here, ascending. */
  heldIds(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.size; i++) if (this.has(i)) out.push(i);
    return out;
  }

  /** A copy of the wire bytes. */
  toBytes(): Uint8Array {
    return this.bits.slice();
  }

  private check(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.size) {
      throw new RangeError(`chunk ${index} out of range 0..${this.size - 1}`);
    }
  }
}

function popcount(byte: number): number {
  let n = byte - ((byte >> 1) & 0x55);
  n = (n & 0x33) + ((n >> 2) & 0x33);
  return (n + (n >> 4)) & 0x0f;
}
