/**
 * Bytes that µTP connections hold out of order (packets that arrived ahead
 * of a hole), counted across every connection that shares the budget. A
 * remote chooses both how many such packets it sends and how large they are,
 * so this is memory a remote can make us spend: each connection has its own
 * bound too (UtpConnectionOptions.reorderMaxBytes), and this one caps their
 * sum. A packet that does not fit is dropped unacknowledged; its sender
 * resends it.
 */

/**
 * Bytes held out of order by all of a process's µTP connections together.
 * 32 connections each holding a full per-connection reorder buffer (512 KiB).
 */
export const UTP_REORDER_PROCESS_MAX_BYTES = 16 * 1024 * 1024;

export class ReorderBudget {
  readonly maxBytes: number;
  private heldBytes = 0;

  constructor(maxBytes: number) {
    if (!(maxBytes >= 0) || !Number.isFinite(maxBytes))
      throw new RangeError(`maxBytes must be 0 or more, not ${maxBytes}`);
    this.maxBytes = maxBytes;
  }

  /** Bytes held now by every connection on this budget. */
  get held(): number {
    return this.heldBytes;
  }

  /** Reserves `bytes`: false, reserving nothing, when they would pass the bound. */
  take(bytes: number): boolean {
    if (this.heldBytes + bytes > this.maxBytes) return false;
    this.heldBytes += bytes;
    return true;
  }

  release(bytes: number): void {
    this.heldBytes = Math.max(0, this.heldBytes - bytes);
  }
}

/** The one budget every µTP connection of this process shares unless given its own. */
export const PROCESS_REORDER_BUDGET = new ReorderBudget(UTP_REORDER_PROCESS_MAX_BYTES);
