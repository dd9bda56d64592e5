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
   * Resolves once every line logged so far is written out (a stream of
   * the caller's may be behind). A service calls it last when it stops, so
   * that `process.exit` right after loses nothing.
   */
  flush(): Promise<void>;
}

/** How often counts of suppressed lines are printed, at most. */
export const LOG_SUPPRESSED_EVERY_MS = 1_000;

export interface LoggerOptions {
  readonly role: string;
  readonly port: number;
  readonly format: LogFormat;
  /**
   * Where lines go; stdout by default (sonic-boom on fd 1, a synchronous
   * write per line, for both formats).
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
 * pid or hostname). On stdout each line is written at once,
 * synchronously (see stdoutDestination).
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
 * Text lines on stdout through the same destination the JSON log uses
 * (sonic-boom on fd 1, see stdoutDestination).
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
    },
    flush: () => Promise.resolve(),
  };
}

/** The part of sonic-boom (pino.destination) the log needs. */
type Destination = ReturnType<typeof pino.destination>;

let stdout: Destination | undefined;

/**
 * The process's one destination on fd 1, shared by every logger (two
 * would interleave their buffers mid-line). Each line is written at once,
 * synchronously, as Node writes a pipe: a peer killed with SIGKILL has
 * written every line of what it did before. (Gathering the lines of a turn
 * of the event loop into one write was tried: under load a SIGKILL then
 * lost the `chunk-sent` lines of chunks the remote had received, and the
 * CPU it saved did not show beyond the run-to-run spread.)
 */
function stdoutDestination(): Destination {
  // Synchronous and without minLength, a write(2) per line, retried on
  // EAGAIN: nothing is ever left pending, so there is nothing to flush.
  stdout ??= pino.destination({ dest: 1, sync: true });
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
    },
    flush: () => Promise.resolve(),
  };
}
