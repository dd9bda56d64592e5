import { type Rng, randomBelow } from '@swarmdrop/protocol';

/**
 * The pieces we still lack, kept sorted by how many connected peers have
 * each (availability), with a random order among pieces of equal
 * availability. A `have` moves one piece up one level in O(1); a bitfield or
 * a disconnect moves each of its pieces by one level. Reading the order from
 * the front gives rarest-first with random tie-breaks, without sorting.
 *
 * Layout (libtorrent's piece_picker does the same): `order` holds the piece
 * ids; level k (availability k) is `order[starts[k] .. starts[k+1])`, the last
 * level ends at `activeEnd`; pieces we hold ("retired") sit in
 * `order[activeEnd ..]` and are never looked at.
 */
export class RarityOrder {
  readonly pieceCount: number;
  /** How many connected peers have each piece (for every piece, held or not). */
  private readonly counts: Uint32Array;
  private readonly order: Int32Array;
  private readonly pos: Int32Array;
  /** Level of each piece while it is active (equals its count). */
  private readonly starts: number[] = [0];
  private activeEnd: number;
  private readonly retired: Uint8Array;
  private readonly rng: Rng;

  constructor(pieceCount: number, rng: Rng) {
    this.pieceCount = pieceCount;
    this.rng = rng;
    this.counts = new Uint32Array(pieceCount);
    this.order = new Int32Array(pieceCount);
    this.pos = new Int32Array(pieceCount);
    this.retired = new Uint8Array(pieceCount);
    for (let i = 0; i < pieceCount; i++) this.order[i] = i;
    // Fisher-Yates: level 0 starts in random order, so ties are random from the first pick.
    for (let i = pieceCount - 1; i > 0; i--) this.swapAt(i, randomBelow(rng, i + 1));
    for (let i = 0; i < pieceCount; i++) this.pos[this.order[i]!] = i;
    this.activeEnd = pieceCount;
  }

  availability(index: number): number {
    return this.counts[index] ?? 0;
  }

  /** Pieces not retired, rarest first; ties in random order. */
  *rarestFirst(): Generator<number> {
    for (let i = 0; i < this.activeEnd; i++) yield this.order[i]!;
  }

  /**
   * Where `index` stands in rarestFirst() (smaller: rarer); retired pieces
   * stand past every active one. Sorting a few pieces by it gives them in
   * rarest-first order without walking the whole order.
   */
  position(index: number): number {
    return this.pos[index]!;
  }

  /** Pieces not retired, starting at a random position: for the first few random picks. */
  *randomOrder(): Generator<number> {
    const n = this.activeEnd;
    if (n === 0) return;
    const start = randomBelow(this.rng, n);
    for (let k = 0; k < n; k++) yield this.order[(start + k) % n]!;
  }

  get activeCount(): number {
    return this.activeEnd;
  }

  increment(index: number): void {
    this.counts[index]!++;
    if (this.retired[index]) return;
    this.bump(index);
    this.shuffleIntoLevel(index, this.counts[index]!);
  }

  decrement(index: number): void {
    if (this.counts[index] === 0)
      throw new RangeError(`availability of piece ${index} is already 0`);
    this.counts[index]!--;
    if (this.retired[index]) return;
    this.drop(index);
    this.shuffleIntoLevel(index, this.counts[index]!);
  }

  /** We hold `index` now: it leaves the order for good (unless `restore`d). */
  retire(index: number): void {
    if (this.retired[index]) return;
    // Walk it up to the top level, then swap it just past the active region.
    let level = this.counts[index]!;
    while (level < this.starts.length - 1) this.bumpFrom(index, level++);
    const last = this.activeEnd - 1;
    this.swapPieces(index, this.order[last]!);
    this.activeEnd--;
    this.retired[index] = 1;
  }

  /** We lost `index` (its stored copy failed a re-check): it is wanted again. */
  restore(index: number): void {
    if (!this.retired[index]) return;
    this.swapPieces(index, this.order[this.activeEnd]!);
    this.activeEnd++;
    this.retired[index] = 0;
    let level = this.starts.length - 1;
    const target = this.counts[index]!;
    while (level > target) this.dropFrom(index, level--);
    while (level < target) this.bumpFrom(index, level++);
    this.shuffleIntoLevel(index, target);
  }

  private bump(index: number): void {
    this.bumpFrom(index, this.counts[index]! - 1);
  }

  private drop(index: number): void {
    this.dropFrom(index, this.counts[index]! + 1);
  }

  /** Moves `index` from level `level` to level `level + 1`: it becomes that level's first piece. */
  private bumpFrom(index: number, level: number): void {
    if (level + 1 >= this.starts.length) this.starts.push(this.activeEnd);
    const last = this.starts[level + 1]! - 1;
    this.swapPieces(index, this.order[last]!);
    this.starts[level + 1]!--;
  }

  /** Moves `index` from level `level` to level `level - 1`: it becomes that level's last piece. */
  private dropFrom(index: number, level: number): void {
    const first = this.starts[level]!;
    this.swapPieces(index, this.order[first]!);
    this.starts[level]!++;
  }

  /** Swaps `index` with a random piece of its level, so pieces of equal availability stay in random order. */
  private shuffleIntoLevel(index: number, level: number): void {
    const from = this.starts[level]!;
    const to = level + 1 < this.starts.length ? this.starts[level + 1]! : this.activeEnd;
    if (to - from < 2) return;
    this.swapPieces(index, this.order[from + randomBelow(this.rng, to - from)]!);
  }

  private swapPieces(a: number, b: number): void {
    const pa = this.pos[a]!;
    const pb = this.pos[b]!;
    this.order[pa] = b;
    this.order[pb] = a;
    this.pos[a] = pb;
    this.pos[b] = pa;
  }

  private swapAt(i: number, j: number): void {
    const t = this.order[i]!;
    this.order[i] = this.order[j]!;
    this.order[j] = t;
  }
}
