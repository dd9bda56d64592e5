import { sourceKey } from '@swarmdrop/protocol';
import type { LogEventName, LogFields } from './log.js';

/** Lines one remote address may cause at once before its lines are counted instead of printed. */
export const DEFAULT_LOG_BURST = 1_000;
/** Lines per second one remote address earns back after its burst. */
export const DEFAULT_LOG_PER_SECOND = 200;
/** Remote addresses tracked at once; past it the least recently logged is forgotten. */
export const DEFAULT_LOG_MAX_SOURCES = 4_096;

/**
 * The events a remote can cause cheaply, by connecting, announcing or
 * sending small messages: only these are limited. The lines of our own
 * transfers and decisions (chunk-sent, chunk-received, request-sent,
 * fallback, …) never are: the logs of both ends must agree on every chunk,
 * and a line there costs a remote a whole chunk.
 */
export const LIMITED_LOG_EVENTS: ReadonlySet<LogEventName> = new Set<LogEventName>([
  'connection-refused',
  'connected',
  'disconnected',
  'protocol-error',
  'announce',
  'batch-assigned',
  'idlist-sent',
  'idlist-received',
  'have-sent',
  'have-received',
  'pex-sent',
  'pex-received',
  'request-received',
  'extended-handshake',
  'metadata-requested',
  'metadata-sent',
  'metadata-rejected',
  'reject-sent',
  'reject-received',
  'error',
]);

export interface LogLimiterOptions {
  /** Milliseconds since the epoch; tests pass a fake one. */
  readonly now: () => number;
  readonly burst?: number;
  readonly perSecond?: number;
  readonly maxSources?: number;
}

interface Bucket {
  tokens: number;
  at: number;
  /** Lines not printed since the last summary, by event. */
  suppressed: Map<string, number>;
}

export interface Suppressed {
  readonly source: string;
  readonly count: number;
  /** `event:count` pairs, most first. */
  readonly events: string;
}

/**
 * Keeps one remote from flooding the log: every line an address causes
 * (LIMITED_LOG_EVENTS: connections, announces, chunk ID lists, `have`s,
 * requests, refusals, protocol errors) takes a token from that address's bucket (`burst`
 * tokens, refilled at `perSecond`); with none left the line is only
 * counted, and `flush()` turns the counts into one summary per address.
 * Addresses are keyed as connection caps key them (IPv6 by /64), and at
 * most `maxSources` are tracked, so the limiter's own memory is bounded.
 * Pure: time comes from `now`.
 */
export class LogLimiter {
  private readonly now: () => number;
  private readonly burst: number;
  private readonly perSecond: number;
  private readonly maxSources: number;
  /** Least recently used first. */
  private readonly buckets = new Map<string, Bucket>();
  private readonly pending = new Set<string>();

  constructor(options: LogLimiterOptions) {
    this.now = options.now;
    this.burst = options.burst ?? DEFAULT_LOG_BURST;
    this.perSecond = options.perSecond ?? DEFAULT_LOG_PER_SECOND;
    this.maxSources = options.maxSources ?? DEFAULT_LOG_MAX_SOURCES;
  }

  /** True when there are counts waiting for `flush()`. */
  get hasPending(): boolean {
    return this.pending.size > 0;
  }

  /**
   * Whether to print a line of `event` with `fields`. Events not in
   * LIMITED_LOG_EVENTS, and lines that name no remote (`peer`, `from` or
   * `to`), always pass.
   * `evicted` receives the summary of an address forgotten to make room.
   */
  admit(event: LogEventName, fields: LogFields, evicted?: (s: Suppressed) => void): boolean {
    if (!LIMITED_LOG_EVENTS.has(event)) return true;
    const source = remoteSource(fields);
    if (source === undefined) return true;
    const now = this.now();
    let bucket = this.buckets.get(source);
    if (bucket) {
      this.buckets.delete(source);
      bucket.tokens = Math.min(
        this.burst,
        bucket.tokens + (Math.max(0, now - bucket.at) / 1000) * this.perSecond,
      );
      bucket.at = now;
    } else {
      if (this.buckets.size >= this.maxSources) {
        const [oldest, old] = this.buckets.entries().next().value as [string, Bucket];
        this.buckets.delete(oldest);
        if (this.pending.delete(oldest)) evicted?.(summary(oldest, old));
      }
      bucket = { tokens: this.burst, at: now, suppressed: new Map() };
    }
    this.buckets.set(source, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return true;
    }
    bucket.suppressed.set(event, (bucket.suppressed.get(event) ?? 0) + 1);
    this.pending.add(source);
    return false;
  }

  /** The counts of lines not printed since the last flush, one per address, and resets them. */
  flush(): Suppressed[] {
    const out: Suppressed[] = [];
    for (const source of this.pending) {
      const bucket = this.buckets.get(source);
      if (bucket) {
        out.push(summary(source, bucket));
        bucket.suppressed.clear();
      }
    }
    this.pending.clear();
    return out;
  }
}

function summary(source: string, bucket: Bucket): Suppressed {
  const entries = [...bucket.suppressed].sort((a, b) => b[1] - a[1]);
  return {
    source,
    count: entries.reduce((sum, [, n]) => sum + n, 0),
    events: entries.map(([event, n]) => `${event}:${n}`).join(','),
  };
}

/** The source key of the remote a line names (`peer`, `from` or `to`: `host:port` or `[v6]:port`). */
function remoteSource(fields: LogFields): string | undefined {
  const value = fields.peer ?? fields.from ?? fields.to;
  if (typeof value !== 'string' || value === '') return undefined;
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(value);
  if (bracketed) return sourceKey(bracketed[1]);
  const at = value.lastIndexOf(':');
  // `host:port`; a bare IPv6 address has more than one colon and no port.
  const host = at > 0 && value.indexOf(':') === at ? value.slice(0, at) : value;
  return sourceKey(host);
}
