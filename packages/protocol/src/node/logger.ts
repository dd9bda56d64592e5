import type { Writable } from 'node:stream';
import { pino } from 'pino';
import {
  escapeUnsafe,
  formatText,
  jsonBody,
  type LogEventName,
  type LogFields,
  type LogFormat,
} from '../log.js';
import { LogLimiter } from '../log-limit.js';

export interface Logger {
  log(event: LogEventName, fields?: LogFields): void;
  /** Sets the port shown on each line, once the listener knows it. */
  setPort(port: number): void;
  /**
   * Resolves once every line logged so far is written out (the JSON log
   * writes asynchronously). A service calls it last when it stops, so that
   * `process.exit` right after loses nothing.
   */
  flush(): Promise<void>;
}

/** How often counts of suppressed lines are printed, at most. */
export const LOG_SUPPRESSED_EVERY_MS = 1_000;
/**
 * Lines on stdout gather up to this many bytes, or for LOG_BUFFER_MS,
 * before one write: a write per line was 14% of a swarm peer's CPU in
 * bench:net (a write(2) through the thread pool each, thousands of lines).
 */
export const LOG_BUFFER_BYTES = 4096;
/** Longest a line waits on stdout's buffer before it is written. */
export const LOG_BUFFER_MS = 25;
/** How long `flush()` waits for the JSON log's pending writes before writing the rest synchronously. */
export const LOG_FLUSH_TIMEOUT_MS = 5_000;

export interface LoggerOptions {
  readonly role: string;
  readonly port: number;
  readonly format: LogFormat;
  /**
   * Where lines go; stdout by default. For `json` on stdout, pino writes
   * through its own asynchronous destination (sonic-boom on fd 1).
   */
  readonly stream?: Writable;
  readonly clock?: () => Date;
  /**
   * Per-remote limits (see LogLimiter); `false` prints every line. The
   * default keeps any one remote address from flooding the log.
   */
  readonly limit?: false | { readonly burst?: number; readonly perSecond?: number };
}

type Write = (event: LogEventName, fields: LogFields) => void;

/**
 * Writes one formatted line per event to `stream` (stdout by default). Lines
 * a remote causes are limited per remote address; what is held back is
 * printed as one `log-suppressed` line per address and second, at most.
 *
 * `text` lines are written as before (formatText). `json` lines go through
 * pino, with the same fields as formatJson (`time`, `role`, `port`,
 * `event`, then the event's fields, those named like one of these renamed:
 * jsonBody) and nothing of pino's own (no level,
 * pid or hostname). On stdout pino's destination writes asynchronously:
 * logging a chunk costs a string append, not a write(2) on the event loop.
 * Pending lines are written out by `flush()` and, should the process exit
 * without it, by pino's exit handler (flushSync).
 */
export function createLogger(options: LoggerOptions): Logger {
  const clock = options.clock ?? (() => new Date());
  let port = options.port;
  const out =
    options.format === 'json'
      ? jsonWriter(options, clock, () => port)
      : options.stream
        ? textWriter(options.stream, options.role, clock, () => port)
        : stdoutTextWriter(options.role, clock, () => port);
  const limiter =
    options.limit === false
      ? undefined
      : new LogLimiter({ now: () => clock().getTime(), ...options.limit });
  let _flushTimer: NodeJS.Timeout | undefined;
  const report = (s: { source: string; count: number; events: string }) =>
    out.write('log-suppressed', { from: s.source, count: s.count, events: s.events });
  const flushSuppressed = () => {
    _flushTimer = undefined;
    for (const s of limiter?.flush() ?? []) report(s);
  };
  return {
    log(event, fields = {}) {
      if (limiter && !limiter.admit(event, fields, report)) {
        _flushTimer ??= setTimeout(flushSuppressed, LOG_SUPPRESSED_EVERY_MS).unref();
        return;
      }
      out.write(event, fields);
    },
    setPort(next) {
      port = next;
    },
    flush: out.flush,
  };
}

function textWriter(
  stream: Writable,
  role: string,
  clock: () => Date,
  port: () => number,
): { write: Write; flush: () => Promise<void> } {
  return {
    write: (event, fields) =>
      stream.write(`${formatText({ time: clock(), role, port: port(), event, fields })}\n`),
    // stdout on a pipe or file is written synchronously on Linux; a stream of
    // the caller's that is behind says so with writableNeedDrain.
    flush: () =>
      stream.writableNeedDrain
        ? new Promise<void>((resolve) => {
            stream.once('drain', resolve);
            stream.once('close', resolve);
          })
        : Promise.resolve(),
  };
}

/**
 * Text lines on stdout through pino's asynchronous destination (sonic-boom on
 * fd 1), as the JSON log does. Node writes a pipe synchronously, one
 * write(2) per line on the event loop; a swarm peer logs thousands of lines
 * (every request, chunk and `have`), so lines now gather in a buffer
 * (LOG_BUFFER_BYTES, LOG_BUFFER_MS) and go out together. An exit without `flush()` (a
 * crash, `process.exit` elsewhere) still writes what is pending.
 */
function stdoutTextWriter(
  role: string,
  clock: () => Date,
  port: () => number,
): { write: Write; flush: () => Promise<void> } {
  const destination = stdoutDestination();
  return {
    write: (event, fields) => {
      destination.write(`${formatText({ time: clock(), role, port: port(), event, fields })}\n`);
      flushSoon(destination);
    },
    flush: () => drain(destination),
  };
}

/** The part of sonic-boom (pino.destination) that `flush()` needs. */
type Destination = ReturnType<typeof pino.destination>;

let stdout: Destination | undefined;
let flushTimer: NodeJS.Timeout | undefined;

/**
 * Writes what stdout's buffer holds within LOG_BUFFER_MS of the first line
 * that did not fill it (sonic-boom writes by itself only past
 * LOG_BUFFER_BYTES). Not a periodic flush: that would write nothing 40
 * times a second in a quiet process.
 */
function flushSoon(destination: Destination): void {
  if (flushTimer) return;
  flushTimer = setTimeout(() => {
    flushTimer = undefined;
    const state = destination as unknown as { _writing?: boolean; _len?: number };
    if (!state._len) return;
    // A write under way takes only what fills the buffer: look again after it.
    if (state._writing) flushSoon(destination);
    else destination.flush();
  }, LOG_BUFFER_MS);
  flushTimer.unref();
}

/**
 * The process's one asynchronous destination on fd 1, shared by every
 * logger (two would interleave their buffers mid-line).
 */
function stdoutDestination(): Destination {
  // pino.destination registers its own exit hook (flushSync) for an
  // asynchronous destination: what is buffered is written on any exit.
  stdout ??= pino.destination({ dest: 1, sync: false, minLength: LOG_BUFFER_BYTES });
  return stdout;
}

function jsonWriter(
  options: LoggerOptions,
  clock: () => Date,
  port: () => number,
): { write: Write; flush: () => Promise<void> } {
  // No transport: pino's transports run in a worker thread that a
  // single-file bundle cannot start. A plain destination is all we need.
  const destination: Destination | undefined = options.stream ? undefined : stdoutDestination();
  const logger = pino(
    {
      base: null,
      // The level key would be the same on every line; formatJson has none.
      // Without it pino's line starts as a bare `{`, so the time, which pino
      // writes next, comes without the leading comma pino's own timestamps have.
      formatters: { level: () => ({}) },
      timestamp: () => `"time":"${clock().toISOString()}"`,
      // pino escapes what JSON must; the rest of UNSAFE_CHARS (bidi
      // controls, separators, C1) is escaped here, as formatJson does. The
      // line pino hands over ends in its newline, which must stay one.
      hooks: { streamWrite: (line) => `${escapeUnsafe(line.slice(0, -1))}\n` },
    },
    options.stream ?? destination!,
  );
  return {
    write: (event, fields) => {
      logger.info(jsonBody({ role: options.role, port: port(), event, fields }));
      if (destination) flushSoon(destination);
    },
    flush: () => (destination ? drain(destination) : Promise.resolve()),
  };
}

/**
 * Resolves when the destination has written everything handed to it:
 * starts the write of what is buffered (`flush()`), then waits for its
 * `drain`, which an asynchronous destination emits each time its buffer
 * empties; after LOG_FLUSH_TIMEOUT_MS it writes what is left synchronously.
 */
function drain(destination: Destination): Promise<void> {
  const state = destination as unknown as { _writing?: boolean; _len?: number };
  if (!state._writing && !state._len) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      destination.off('drain', onDrain);
      resolve();
    };
    // A write takes what was buffered when it began; lines logged meanwhile wait for the next.
    const onDrain = () => {
      if (!state._len) done();
      else if (!state._writing) destination.flush();
    };
    const timer = setTimeout(() => {
      try {
        destination.flushSync();
      } catch {
        // Destroyed, or not open yet: nothing more can be written.
      }
      done();
    }, LOG_FLUSH_TIMEOUT_MS);
    timer.unref();
    // Registered before flush(): a write that completes at once must still be seen.
    destination.on('drain', onDrain);
    if (!state._writing) destination.flush();
  });
}
