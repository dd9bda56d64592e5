import type { Writable } from 'node:stream';
import { formatRecord, type LogEventName, type LogFields, type LogFormat } from '../log.js';

export interface Logger {
  log(event: LogEventName, fields?: LogFields): void;
  /** Sets the port shown on each line, once the listener knows it. */
  setPort(port: number): void;
}

export interface LoggerOptions {
  readonly role: string;
  readonly port: number;
  readonly format: LogFormat;
  readonly stream?: Writable;
  readonly clock?: () => Date;
}

/** Writes one formatted line per event to `stream` (stdout by default). */
export function createLogger(options: LoggerOptions): Logger {
  const stream = options.stream ?? process.stdout;
  const clock = options.clock ?? (() => new Date());
  let port = options.port;
  return {
    log(event, fields = {}) {
      stream.write(
        `${formatRecord({ time: clock(), role: options.role, port, event, fields }, options.format)}\n`,
      );
    },
    setPort(next) {
      port = next;
    },
  };
}
