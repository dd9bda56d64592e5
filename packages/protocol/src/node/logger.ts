import type { Writable } from 'node:stream';
import { formatRecord, type LogEventName, type LogFields, type LogFormat } from '../log.js';
import { LogLimiter } from '../log-limit.js';

export interface Logger {
  log(event: LogEventName, fields?: LogFields): void;
  /** Sets the port shown on each line, once the listener knows it. */
  setPort(port: number): void;
}

/** How often counts of suppressed lines are printed, at most. */
export const LOG_SUPPRESSED_EVERY_MS = 1_000;

export interface LoggerOptions {
  readonly role: string;
  readonly port: number;
  readonly format: LogFormat;
  readonly stream?: Writable;
  readonly clock?: () => Date;
  /**
   * Per-remote limits (see LogLimiter); `false` prints every line. The
   * default keeps any one remote address from flooding the log.
   */
  readonly limit?: false | { readonly burst?: number; readonly perSecond?: number };
}

/**
 * Writes one formatted line per event to `stream` (stdout by default). Lines
 * a remote causes are limited per remote address; what is held back is
 * printed as one `log-suppressed` line per address and second, at most.
 */
export function createLogger(options: LoggerOptions): Logger {
  const stream = options.stream ?? process.stdout;
  const clock = options.clock ?? (() => new Date());
  let port = options.port;
  const write = (event: LogEventName, fields: LogFields) =>
    stream.write(
      `${formatRecord({ time: clock(), role: options.role, port, event, fields }, options.format)}\n`,
    );
  const limiter =
    options.limit === false
      ? undefined
      : new LogLimiter({ now: () => clock().getTime(), ...options.limit });
  let _flushTimer: NodeJS.Timeout | undefined;
  const report = (s: { source: string; count: number; events: string }) =>
    write('log-suppressed', { from: s.source, count: s.count, events: s.events });
  const flush = () => {
    _flushTimer = undefined;
    for (const s of limiter?.flush() ?? []) report(s);
  };
  return {
    log(event, fields = {}) {
      if (limiter && !limiter.admit(event, fields, report)) {
        _flushTimer ??= setTimeout(flush, LOG_SUPPRESSED_EVERY_MS).unref();
        return;
      }
      write(event, fields);
    },
    setPort(next) {
      port = next;
    },
  };
}
