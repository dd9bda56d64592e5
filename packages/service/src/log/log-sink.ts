import type { Writable } from 'node:stream';

/**
 * Where a logger's formatted lines go. A sink may drop a line (a reader
 * that stopped reading must never hold up the data path); it then says
 * so through `write`'s result, and tells the logger when it has room again
 * so the logger can print how many it dropped.
 */
export interface LogSink {
  /**
   * Queues `text` (whole lines). False when it was dropped instead; with
   * `force` it is queued past any bound (a one-line drop count).
   */
  write(text: string, force?: boolean): boolean;
  /** True while every write would be dropped: a logger then skips formatting. */
  readonly dropping: boolean;
  /**
   * Calls `listener` when lines can be written again after some were
   * dropped, and once more before the sink flushes for exit: the moments to
   * say what was dropped (with `force`). Returns the unsubscribe.
   */
  onResume(listener: () => void): () => void;
  /**
   * Resolves once everything queued so far is written, or after
   * `timeoutMs` (a reader that never reads cannot hold an exit).
   */
  flush(timeoutMs?: number): Promise<void>;
}

/**
 * A caller's stream as a sink (tests, LogCapture): every line goes to the
 * stream, which buffers what it cannot write yet; nothing is dropped.
 */
export function streamSink(stream: Writable): LogSink {
  return {
    write(text) {
      stream.write(text);
      return true;
    },
    dropping: false,
    onResume: () => () => {},
    flush: () =>
      stream.writableNeedDrain
        ? new Promise<void>((resolve) => {
            stream.once('drain', resolve);
            stream.once('close', resolve);
          })
        : Promise.resolve(),
  };
}
