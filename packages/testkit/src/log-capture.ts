import { Writable } from 'node:stream';
import { createLogger, type Logger, parseTextLine } from '@swarmdrop/service';
import { HANG_MS } from './env.js';

/** One text log line, parsed (`event` is '' for a line that is not a log event). */
export interface LogLine {
  readonly line: string;
  readonly event: string;
  readonly port: number;
  readonly fields: Record<string, string>;
}

/** Which lines of an event count: exact field values, or any test on the fields. */
export type FieldMatch =
  | Readonly<Record<string, string>>
  | ((fields: Record<string, string>) => boolean);

export interface WaitOptions {
  /** Resolve on the `count`-th matching line (default 1). */
  readonly count?: number;
  /** Bounds a hang; the rejection carries the tail of the log. */
  readonly timeoutMs?: number;
}

interface Waiter {
  readonly test: (line: LogLine) => boolean;
  readonly count: number;
  readonly resolve: (line: LogLine) => void;
}

function matcher(event: string, fields: FieldMatch = {}): (line: LogLine) => boolean {
  if (typeof fields === 'function') return (l) => l.event === event && fields(l.fields);
  const entries = Object.entries(fields);
  return (l) => l.event === event && entries.every(([k, v]) => l.fields[k] === v);
}

/**
 * Collects text log lines, from an in-process logger (`logger()`) or a
 * child's stdout (`push()`), and lets a test wait for the ones it needs.
 * Every wait is bounded, and a wait that times out says what it waited for
 * and shows the log, so a failure explains itself.
 */
export class LogCapture {
  readonly lines: LogLine[] = [];
  /** A stream a logger can write to. */
  readonly stream: Writable;
  /** Called synchronously for every line as it arrives (for a test that reacts mid-run). */
  onLine: (line: LogLine) => void = () => {};
  private waiters: Waiter[] = [];
  private partial = '';

  constructor(readonly label = 'log') {
    this.stream = new Writable({
      write: (chunk: Buffer | string, _encoding, callback) => {
        this.push(chunk.toString());
        callback();
      },
    });
  }

  /** A text logger for `role` writing into this capture. */
  logger(role: string): Logger {
    return createLogger({ role, port: 0, format: 'text', stream: this.stream });
  }

  /** Feeds raw text (e.g. a child's stdout); complete lines are parsed. */
  push(text: string): void {
    this.partial += text;
    const parts = this.partial.split('\n');
    this.partial = parts.pop() ?? '';
    for (const raw of parts) {
      if (raw === '') continue;
      const parsed = parseTextLine(raw);
      const line: LogLine = parsed
        ? { line: raw, event: parsed.event, port: parsed.port, fields: parsed.fields }
        : { line: raw, event: '', port: 0, fields: {} };
      this.lines.push(line);
      this.onLine(line);
      this.waiters = this.waiters.filter((w) => {
        if (!w.test(line) || this.count(w.test) < w.count) return true;
        w.resolve(line);
        return false;
      });
    }
  }

  /** The lines of `event` whose fields match. */
  filter(event: string, fields?: FieldMatch): LogLine[] {
    return this.lines.filter(matcher(event, fields));
  }

  /** Chunk ids of the lines of `event` whose fields match. */
  chunks(event: string, fields?: FieldMatch): number[] {
    return this.filter(event, fields).map((l) => Number(l.fields.chunk));
  }

  count(test: (line: LogLine) => boolean): number {
    let n = 0;
    for (const line of this.lines) if (test(line)) n++;
    return n;
  }

  /** Resolves with the `count`-th line of `event` whose fields match (past or future). */
  waitFor(event: string, fields?: FieldMatch, options: WaitOptions = {}): Promise<LogLine> {
    const what = `${options.count ?? 1} "${event}" line(s)${fields && typeof fields !== 'function' ? ` with ${JSON.stringify(fields)}` : ''}`;
    return this.waitUntil(matcher(event, fields), what, options);
  }

  /** Resolves with the `count`-th line passing `test`; `what` names it in a timeout. */
  waitUntil(
    test: (line: LogLine) => boolean,
    what: string,
    options: WaitOptions = {},
  ): Promise<LogLine> {
    const count = options.count ?? 1;
    const seen = this.lines.filter(test);
    if (seen.length >= count) return Promise.resolve(seen[count - 1]!);
    const timeoutMs = options.timeoutMs ?? HANG_MS;
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        test,
        count,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(
          new Error(
            `${this.label}: no ${what} within ${timeoutMs} ms; the log ends:\n${this.tail()}`,
          ),
        );
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  text(): string {
    return this.lines.map((l) => l.line).join('\n');
  }

  /** The last lines of the log, for a failure message. */
  tail(lines = 40): string {
    return this.lines
      .slice(-lines)
      .map((l) => l.line)
      .join('\n');
  }
}
