import type { Writable } from 'node:stream';
import { escapeUnsafe } from '@swarmdrop/protocol';
import { pino } from 'pino';
import { formatText, jsonBody, type LogEventName, type LogFields, type LogFormat } from './log.js';
import { LogLimiter } from './log-limit.js';
import { type LogSink, streamSink } from './log-sink.js';
import { stdoutWriter } from './stdout.js';

export interface Logger {
  log(event: LogEventName, fields?: LogFields): void;
  /** Sets the port shown on each line, once the listener knows it. */
  setPort(port: number): void;
  /**
   * Resolves once every line logged so far is written out, or after the
   * sink's flush bound (LOG_FLUSH_TIMEOUT_MS on stdout) for a reader that
   * does not read. A service calls it last when it stops.
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
   * Where lines go: a sink (the status line's), or a caller's `stream`
   * (which buffers, nothing is dropped); by default stdout, through the
   * process's one StdoutWriter (bounded in bytes, never blocking).
   */
  readonly sink?: LogSink;
  readonly stream?: Writable;
  readonly clock?: () => Date;
  /**
   * Per-remote limits (see LogLimiter); `false` prints every line. The
   * default keeps any one remote address from flooding the log.
   */
  readonly limit?: false | { readonly burst?: number; readonly perSecond?: number };
}

/** Formats and writes one line; false when the sink dropped it. */
type Write = (event: LogEventName, fields: LogFields, force?: boolean) => boolean;

/**
 * Writes one formatted line per event to the sink (stdout by default).
 * Lines a remote causes are limited per remote address; what is held back
 * is printed as one `log-suppressed` line per address and second, at most.
 *
 * A line the sink cannot take (a reader far behind) is dropped and counted;
 * while the sink is dropping, lines are counted without being formatted.
 * Once it has room again, and before a flush, one `log-dropped count=N`
 * line says how many went.
 *
 * `text` lines are formatText's. `json` lines go through pino, with the
 * same fields as formatJson (`time`, `role`, `port`, `event`, then the
 * event's fields, those named like one of these renamed: jsonBody) and
 * nothing of pino's own (no level, pid or hostname).
 */
export function createLogger(options: LoggerOptions): Logger {
  const clock = options.clock ?? (() => new Date());
  let port = options.port;
  const sink = options.sink ?? (options.stream ? streamSink(options.stream) : stdoutWriter());
  const out =
    options.format === 'json'
      ? jsonWriter(sink, options.role, clock, () => port)
      : textWriter(sink, options.role, clock, () => port);
  let dropped = 0;
  const emit = (event: LogEventName, fields: LogFields) => {
    if (sink.dropping || !out(event, fields)) dropped++;
  };
  sink.onResume(() => {
    if (dropped === 0) return;
    const count = dropped;
    dropped = 0;
    out('log-dropped', { count }, true);
  });
  const limiter =
    options.limit === false
      ? undefined
      : new LogLimiter({ now: () => clock().getTime(), ...options.limit });
  let _flushTimer: NodeJS.Timeout | undefined;
  const report = (s: { source: string; count: number; events: string }) =>
    emit('log-suppressed', { from: s.source, count: s.count, events: s.events });
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
      emit(event, fields);
    },
    setPort(next) {
      port = next;
    },
    flush: () => sink.flush(),
  };
}

function textWriter(sink: LogSink, role: string, clock: () => Date, port: () => number): Write {
  return (event, fields, force) =>
    sink.write(`${formatText({ time: clock(), role, port: port(), event, fields })}\n`, force);
}

function jsonWriter(sink: LogSink, role: string, clock: () => Date, port: () => number): Write {
  // pino writes each line to `destination` within logger.info, which
  // returns nothing: the sink's answer is passed out through these two.
  let force = false;
  let accepted = true;
  const destination = {
    write(line: string) {
      accepted = sink.write(line, force);
    },
  };
  // No transport: pino's transports run in a worker thread that a
  // single-file bundle cannot start. A plain destination is all we need.
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
    destination,
  );
  return (event, fields, forced = false) => {
    force = forced;
    accepted = false;
    logger.info(jsonBody({ role, port: port(), event, fields }));
    return accepted;
  };
}
