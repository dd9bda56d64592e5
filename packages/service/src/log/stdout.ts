import { constants, fstatSync, openSync, writeSync } from 'node:fs';
import { isatty } from 'node:tty';
import { parseIntegerOption } from '../options/options.js';
import {
  BoundedWriter,
  LOG_BUFFER_BYTES,
  LOG_COALESCE_MS,
  LOG_FLUSH_TIMEOUT_MS,
} from './bounded-writer.js';

/** Sets the stdout log's bound in bytes (default LOG_BUFFER_BYTES). */
export const LOG_BUFFER_ENV = 'SWARMDROP_LOG_BUFFER_BYTES';

/** What stdout is, as far as writing to it goes. */
export type StdoutKind = 'file' | 'pipe' | 'socket' | 'tty' | 'closed';

/**
 * The process's stdout as the log writes it: a BoundedWriter that never
 * blocks the event loop, and what the terminal's status line needs to know.
 */
export class StdoutWriter extends BoundedWriter {
  constructor(
    readonly kind: StdoutKind,
    write: (data: Buffer) => number,
    maxBytes: number,
  ) {
    super({ write, maxBytes, coalesceMs: LOG_COALESCE_MS });
  }

  get isTTY(): boolean {
    return this.kind === 'tty';
  }

  // Read only on a terminal (the status line), where process.stdout is a
  // tty.WriteStream that follows resizes.
  get columns(): number {
    return process.stdout.columns ?? 0;
  }

  get rows(): number {
    return process.stdout.rows ?? 0;
  }
}

let stdout: StdoutWriter | undefined;

/**
 * The one writer on stdout, shared by every logger and the status line of
 * the process (two would interleave mid-line). Made on first use; from
 * then on, whatever is queued is also written when the process exits (the
 * 'exit' event: process.exit, the end of the event loop, a crash), waiting
 * at most LOG_FLUSH_TIMEOUT_MS for a reader that is behind. A SIGKILL loses
 * what was not written yet.
 */
export function stdoutWriter(env: NodeJS.ProcessEnv = process.env): StdoutWriter {
  if (stdout) return stdout;
  const text = env[LOG_BUFFER_ENV];
  const maxBytes =
    text === undefined || text === ''
      ? LOG_BUFFER_BYTES
      : parseIntegerOption(text, LOG_BUFFER_ENV, 1, Number.MAX_SAFE_INTEGER);
  const { kind, fd } = openStdout();
  const writer = new StdoutWriter(
    kind,
    kind === 'closed'
      ? () => {
          throw Object.assign(new Error('stdout is closed'), { code: 'EBADF' });
        }
      : (data) => writeSync(fd, data),
    maxBytes,
  );
  process.once('exit', () => writer.flushSync(LOG_FLUSH_TIMEOUT_MS));
  stdout = writer;
  return writer;
}

/**
 * A descriptor for stdout on which a write never waits for the reader.
 *
 * A file (or /dev/null, or another device that is not a terminal) is fd 1
 * itself: the kernel never makes a write to it wait for a reader. It is
 * written with write(2) from the event loop, one write a turn.
 *
 * A pipe or a terminal is opened again, through /proc/self/fd/1, as a new
 * open file description of our own with O_NONBLOCK. O_NONBLOCK is a flag of
 * the description, which fd 1 shares with the parent and with whatever else
 * inherited it: set on fd 1 itself, as libuv does for process.stdout, it
 * makes a parent's own writes to that pipe fail with EAGAIN when the pipe is
 * full, and it stays set after a SIGKILL (Node puts the flags back only on
 * a normal exit). Tried on Node 20 (`sh -c 'node … ; head -c 1000000
 * /dev/zero' | (sleep 1; wc -c)`: after the node process was SIGKILLed,
 * head failed "Resource temporarily unavailable").
 *
 * A socket (Node's child_process pipes, journald) cannot be opened again:
 * there libuv's process.stdout sets O_NONBLOCK on fd 1 itself, as any Node
 * program that touches process.stdout does; the other end of the socket is
 * a description of its own, so only processes that inherited the same end
 * see the flag. The same goes for a pipe or terminal when /proc is missing.
 */
function openStdout(): { kind: StdoutKind; fd: number } {
  let stat: ReturnType<typeof fstatSync>;
  try {
    stat = fstatSync(1);
  } catch {
    return { kind: 'closed', fd: -1 };
  }
  const tty = isatty(1);
  if (!tty && !stat.isFIFO() && !stat.isSocket()) return { kind: 'file', fd: 1 };
  const kind: StdoutKind = tty ? 'tty' : stat.isFIFO() ? 'pipe' : 'socket';
  if (kind !== 'socket') {
    try {
      const flags = constants.O_WRONLY | constants.O_NONBLOCK | constants.O_NOCTTY;
      return { kind, fd: openSync('/proc/self/fd/1', flags) };
    } catch {
      // No /proc, or a pipe whose reader is gone (ENXIO): fd 1 itself, below.
    }
  }
  const out = process.stdout as NodeJS.WriteStream & {
    _handle?: { setBlocking?: (blocking: boolean) => number };
  };
  // libuv opened fd 1 non-blocking for a pipe or socket; a terminal Node keeps blocking.
  if (tty) out._handle?.setBlocking?.(false);
  return { kind, fd: 1 };
}
