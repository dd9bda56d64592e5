import type { SwarmStore } from '@swarmdrop/peer';
import { Bitfield, buildMetainfo, type Metainfo } from '@swarmdrop/protocol';

/**
 * A torrent of `length` bytes in `pieceLength` pieces whose hashes are all
 * zero: the simulator never hashes (its store accepts what arrives), so
 * only the geometry matters.
 */
export function simMetainfo(length: number, pieceLength: number): Metainfo {
  const count = Math.ceil(length / pieceLength);
  const zero = new Uint8Array(20);
  return buildMetainfo({
    name: 'sim.bin',
    length,
    pieceLength,
    pieceHashes: Array.from({ length: count }, () => zero),
  }).metainfo;
}

/**
 * The store of a simulated peer, without data: what it holds is a bitfield,
 * a read is a shared zero buffer of the piece's size (always "cached", so a
 * BlockServer never waits for a disk), and `put` marks the piece held.
 */
export class SimStore implements SwarmStore {
  readonly metainfo: Metainfo;
  readonly held: Bitfield;
  /** Called when a piece is stored (the simulator's records). */
  onStored: (index: number) => void = () => {};
  private readonly zeros: Buffer;

  constructor(metainfo: Metainfo, full = false) {
    this.metainfo = metainfo;
    this.held = new Bitfield(metainfo.geometry.pieceCount);
    if (full) for (let i = 0; i < this.held.size; i++) this.held.set(i);
    this.zeros = Buffer.alloc(metainfo.pieceLength);
  }

  get pieceCount(): number {
    return this.held.size;
  }

  has(index: number): boolean {
    return this.held.has(index);
  }

  isComplete(): boolean {
    return this.held.isComplete();
  }

  put(index: number): Promise<boolean> {
    const fresh = this.held.set(index);
    if (fresh) this.onStored(index);
    return Promise.resolve(fresh);
  }

  cached(index: number): Buffer | undefined {
    if (!this.held.has(index)) return undefined;
    return this.zeros.subarray(0, this.metainfo.geometry.pieceSize(index));
  }

  readVerified(index: number): Promise<Buffer> {
    const chunk = this.cached(index);
    return chunk ? Promise.resolve(chunk) : Promise.reject(new Error(`chunk ${index} not held`));
  }
}
