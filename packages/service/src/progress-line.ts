import { Writable } from 'node:stream';
import type { Timer, TimerClock } from '@swarmdrop/protocol';
import { formatRate, RateEstimator } from '@swarmdrop/protocol';
import { formatBytes, systemClock } from '@swarmdrop/protocol/node';
import type { createLogUpdate } from 'log-update';
import type { DomainEvents, EventFields } from './events.js';
import type { LogSink } from './log/log-sink.js';

/** How often the status line is redrawn when no log line comes (rates and ETA move with time). */
export const PROGRESS_REDRAW_MS = 500;
/** The rates shown look back this far: long enough to be steady, short enough to follow a change. */
export const PROGRESS_RATE_WINDOW_MS = 5_000;

/**
 * What the status line is drawn on: the process's StdoutWriter on a
 * terminal, or a fake one in tests. What the writer can do beyond `write`
 * (drop when the terminal is far behind, flush) the status line passes on.
 */
export interface StatusOutput extends Partial<Pick<LogSink, 'dropping' | 'onResume' | 'flush'>> {
  write(text: string, force?: boolean): boolean;
  readonly isTTY?: boolean;
  readonly columns?: number;
  readonly rows?: number;
}

/**
 * Whether to show a status line: only on a terminal, never in CI (CI set to
 * anything but `0` or `false`) or with `--quiet`.
 */
export function wantsStatusLine(options: {
  readonly output: StatusOutput;
  readonly env?: NodeJS.ProcessEnv;
  readonly quiet?: boolean;
}): boolean {
  const ci = (options.env ?? process.env).CI;
  const inCi = ci !== undefined && !['', '0', 'false'].includes(ci.toLowerCase());
  return options.output.isTTY === true && !inCi && options.quiet !== true;
}

/**
 * The numbers on the status line, kept from a service's domain events: the
 * line is a subscriber like the log, and reads no log line.
 */
export class ProgressStats {
  /** Chunks in the file (0 until the metainfo is known). */
  total = 0;
  /** Chunks held (the owner holds them all). */
  held = 0;
  /** Bytes of the whole file. */
  size = 0;
  /** Connections open now. */
  connections = 0;
  chunksSent = 0;
  chunksReceived = 0;
  /** The listening address, once known. */
  addr: string | undefined;
  merged = false;
  readonly down: RateEstimator;
  readonly up: RateEstimator;
  private readonly offs: Array<() => void>;

  constructor(
    readonly role: 'owner' | 'peer',
    events: DomainEvents,
    clock: TimerClock,
    onChange?: () => void,
  ) {
    this.down = new RateEstimator({ clock, windowMs: PROGRESS_RATE_WINDOW_MS });
    this.up = new RateEstimator({ clock, windowMs: PROGRESS_RATE_WINDOW_MS });
    const handlers: { [E in keyof EventFields]?: (fields: EventFields[E]) => void } = {
      listening: (f) => {
        this.addr = f.addr;
        // The owner's `listening` carries the file; it holds every chunk.
        if (role === 'owner' && typeof f.chunks === 'number') {
          this.total = f.chunks;
          this.held = f.chunks;
          if (typeof f.size === 'number') this.size = f.size;
        }
      },
      metainfo: (f) => {
        this.total = f.chunks;
        this.size = f.size;
      },
      resumed: (f) => {
        this.held = f.verified;
      },
      'chunk-received': (f) => {
        this.chunksReceived++;
        this.held = Math.min(this.total || Number.POSITIVE_INFINITY, this.held + 1);
        this.down.record(f.bytes);
      },
      'chunk-sent': (f) => {
        this.chunksSent++;
        this.up.record(f.bytes);
      },
      'chunk-corrupt': (f) => {
        // A held chunk that rotted and was dropped (the owner restores its own at once).
        if (role === 'peer' && f.chunk !== undefined && f.restored !== true)
          this.held = Math.max(0, this.held - 1);
      },
      merged: () => {
        this.merged = true;
        this.held = this.total;
      },
      connected: () => {
        this.connections++;
      },
      disconnected: () => {
        this.connections = Math.max(0, this.connections - 1);
      },
    };
    // Whoever draws the numbers hears of each change after it (the status line wakes its timer).
    this.offs = Object.entries(handlers).map(([event, handler]) =>
      events.on(
        event as keyof EventFields,
        ((fields: never) => {
          (handler as (f: never) => void)(fields);
          onChange?.();
        }) as never,
      ),
    );
  }

  /** Seconds until every chunk is held at the current download rate; undefined when unknown. */
  etaSeconds(): number | undefined {
    if (this.total === 0 || this.held >= this.total) return 0;
    const rate = this.down.bytesPerSecond();
    if (rate <= 0) return undefined;
    const remaining = ((this.total - this.held) * this.size) / this.total;
    return remaining / rate;
  }

  /** The status line's text, one line. */
  text(): string {
    const who = `${this.role}${this.addr ? ` ${this.addr}` : ''}`;
    const peers = `${this.connections} ${this.connections === 1 ? 'peer' : 'peers'}`;
    const up = `↑ ${formatRate(this.up.bytesPerSecond())}`;
    if (this.total === 0) return `${who} │ starting │ ${peers}`;
    if (this.role === 'owner') {
      return `${who} │ ${this.total} chunks (${formatBytes(this.size)}) │ ${up} │ ${this.chunksSent} sent │ ${peers}`;
    }
    const pct = Math.floor((this.held * 100) / this.total);
    const down = `↓ ${formatRate(this.down.bytesPerSecond())}`;
    const eta = this.merged
      ? 'done'
      : this.held >= this.total
        ? 'merging'
        : `ETA ${formatDuration(this.etaSeconds())}`;
    return `${who} │ ${this.held}/${this.total} chunks ${pct}% │ ${down} ${up} │ ${eta} │ ${peers}`;
  }

  close(): void {
    for (const off of this.offs.splice(0)) off();
  }
}

/** `0:46`, `12:05`, `1:02:03`; `--:--` when unknown. */
export function formatDuration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '--:--';
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

export interface ProgressLineOptions {
  readonly role: 'owner' | 'peer';
  /** The service's domain events (pass the same DomainEvents as its `events` component). */
  readonly events: DomainEvents;
  /** The terminal: the status line is drawn here, and log lines written to `stream` go here above it. */
  readonly output: StatusOutput;
  readonly clock?: TimerClock;
  /** Redraws at least this often (default PROGRESS_REDRAW_MS). */
  readonly redrawMs?: number;
}

/**
 * A live status line at the bottom of the terminal (chunks held, rates
 * down and up, ETA, connections), redrawn with `log-update`. It is the
 * logger's sink (or `stream`, for text that may end mid-line): each
 * complete line is printed above the status line, which is then drawn again
 * below it, in one write to the output, so log lines scroll as always and
 * none is cut, and a line the output drops takes its redraw with it.
 * Only for a terminal: see `wantsStatusLine`.
 */
export class ProgressLine implements LogSink {
  /** Where text that may end mid-line goes: complete lines are printed above the status line. */
  readonly stream: Writable;
  readonly stats: ProgressStats;
  private readonly output: StatusOutput;
  private readonly render: ReturnType<typeof createLogUpdate>;
  private readonly clock: TimerClock;
  private readonly redrawMs: number;
  /** Redraws while the numbers move with time; stopped while nothing does (`tick`, `wake`). */
  private timer: Timer | undefined;
  /** The text last drawn. */
  private drawn: string | undefined;
  private partial = '';
  private closed = false;
  /** While print() builds its one write: what log-update writes goes here. */
  private unit: string | undefined;

  /**
   * Loads log-update (and string-width under it) only here: a service that
   * logs to a pipe, as every peer of a swarm does, never pays for parsing
   * them at start-up (about 60 ms of CPU per process).
   */
  static async create(options: ProgressLineOptions): Promise<ProgressLine> {
    const { createLogUpdate } = await import('log-update');
    return new ProgressLine(options, createLogUpdate);
  }

  private constructor(options: ProgressLineOptions, logUpdate: typeof createLogUpdate) {
    const clock = options.clock ?? systemClock;
    this.clock = clock;
    this.redrawMs = options.redrawMs ?? PROGRESS_REDRAW_MS;
    this.output = options.output;
    this.stats = new ProgressStats(options.role, options.events, clock, () => this.wake());
    // A terminal that reports no size (a pty that script(1) made, a serial console) says 0
    // rows, and log-update would draw nothing: take it as 80 by 24.
    const output = options.output;
    const sized = {
      isTTY: true,
      write: (text: string) => {
        if (this.unit === undefined) return output.write(text);
        this.unit += text;
        return true;
      },
      get columns() {
        return output.columns || 80;
      },
      get rows() {
        return output.rows || 24;
      },
    };
    // The cursor stays visible: hiding it would need an exit hook to bring it back after a crash.
    this.render = logUpdate(sized as unknown as NodeJS.WriteStream, { showCursor: true });
    this.stream = new Writable({
      decodeStrings: false,
      write: (chunk: Buffer | string, _encoding, callback) => {
        this.print(chunk.toString());
        callback();
      },
    });
    this.wake();
    this.redraw();
  }

  get dropping(): boolean {
    return this.output.dropping ?? false;
  }

  onResume(listener: () => void): () => void {
    return this.output.onResume?.(listener) ?? (() => {});
  }

  flush(timeoutMs?: number): Promise<void> {
    return this.output.flush?.(timeoutMs) ?? Promise.resolve();
  }

  /** LogSink: `text` (whole lines) above the status line; false if the output dropped it. */
  write(text: string, force = false): boolean {
    return this.print(text, force);
  }

  /** Draws the status line again with the current numbers (not while the terminal is far behind). */
  redraw(): void {
    if (this.closed || this.dropping) return;
    this.drawn = this.stats.text();
    this.render(this.drawn);
  }

  /** An event changed the numbers: redraw on time again, if stopped. */
  private wake(): void {
    if (!this.closed) this.timer ??= this.clock.setInterval(() => this.tick(), this.redrawMs);
  }

  /**
   * The timed redraw. With both rates at zero the line changes only with an
   * event (which wakes it), so once a redraw changes nothing the timer
   * stops: a finished, quiet service redrew twice a second for nothing.
   */
  private tick(): void {
    const still =
      this.stats.text() === this.drawn &&
      this.stats.up.bytesPerSecond() === 0 &&
      this.stats.down.bytesPerSecond() === 0;
    if (still) {
      this.timer?.cancel();
      this.timer = undefined;
      return;
    }
    this.redraw();
  }

  /**
   * Prints text above the status line. Whole lines only: a partial line
   * waits for its end, so the status line never splits one. False if the
   * output dropped the lines (and their redraw).
   */
  print(text: string, force = false): boolean {
    if (this.closed) return this.output.write(text, force);
    const all = this.partial + text;
    const end = all.lastIndexOf('\n');
    if (end < 0) {
      this.partial = all;
      return true;
    }
    this.partial = all.slice(end + 1);
    this.unit = '';
    this.render.clear();
    this.unit += all.slice(0, end + 1);
    this.render(this.stats.text());
    const unit = this.unit;
    this.unit = undefined;
    return this.output.write(unit, force);
  }

  /** Removes the status line for good (before exit); later writes go straight through. */
  close(): void {
    if (this.closed) return;
    this.timer?.cancel();
    this.timer = undefined;
    this.stats.close();
    this.render.clear();
    this.render.done();
    this.closed = true;
    if (this.partial !== '') this.output.write(this.partial, true);
    this.partial = '';
  }
}
