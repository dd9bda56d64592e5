import { UNSAFE_CHARS, unicodeEscape } from '@swarmdrop/protocol';

/**
 * The console log vocabulary both services print: one event per line, a
 * stable event word, then `key=value` fields (or one JSON object per line).
 */
export const LOG_EVENTS = [
  // life cycle
  'listening',
  'ready',
  'stopping',
  'error',
  // connections
  'connected',
  'disconnected',
  'connection-refused',
  'protocol-error',
  // lines one remote caused past its share, counted instead of printed
  'log-suppressed',
  // lines a reader that fell far behind never got (the log's buffer was full)
  'log-dropped',
  // the seed's six activities
  'idlist-sent',
  'idlist-received',
  'request-sent',
  'request-received',
  'chunk-sent',
  'chunk-received',
  // keeping a chunk ID list current (BEP 3 `have`)
  'have-sent',
  'have-received',
  // extensions (BEP 10) and metadata from peers (BEP 9)
  'extended-handshake',
  'metadata-requested',
  'metadata-sent',
  'metadata-rejected',
  'metadata-received',
  'metadata-dropped',
  'metadata-fetched',
  // peer exchange (BEP 11, swarm mode)
  'pex-sent',
  'pex-received',
  // the fast extension (BEP 6): requests refused
  'reject-sent',
  'reject-received',
  'rejects-missing',
  // integrity
  'chunk-rejected',
  'chunk-corrupt',
  // owner
  'batch-assigned',
  'announce',
  // peer
  'metainfo',
  'batch-received',
  'resumed',
  'waiting',
  'fallback',
  'merged',
  'chunks-removed',
  'done',
] as const;

export type LogEventName = (typeof LOG_EVENTS)[number];
export type LogFormat = 'text' | 'json';
export type LogValue = string | number | boolean | undefined;
export type LogFields = Readonly<Record<string, LogValue>>;

export interface LogRecord {
  readonly time: Date;
  /** `owner` or `peer`. */
  readonly role: string;
  /** The process's own listening port, so interleaved logs stay attributable. */
  readonly port: number;
  readonly event: LogEventName;
  readonly fields: LogFields;
}

/**
 * `12:00:01.234 peer:7001 chunk-received chunk=17 from=127.0.0.1:7002 bytes=102400`
 * Values with spaces or quotes are JSON-quoted so a line splits on spaces.
 */
export function formatText(record: LogRecord): string {
  let line = `${record.time.toISOString().slice(11, 23)} ${record.role}:${record.port} ${record.event}`;
  for (const [key, value] of Object.entries(record.fields)) {
    if (value === undefined) continue;
    const text = String(value);
    line += ` ${key}=${text === '' || NEEDS_QUOTES.test(text) ? quote(text) : text}`;
  }
  return line;
}

// Values can come from the remote: anything unprintable is quoted and escaped (unsafe-text.ts).
const UNSAFE_CHARS_G = new RegExp(UNSAFE_CHARS.source, 'g');
const NEEDS_QUOTES = new RegExp(`[\\s"=]|${UNSAFE_CHARS.source}`);

/** JSON.stringify, also escaping what it leaves raw: DEL, C1 controls, separators, bidi controls. */
function quote(text: string): string {
  return JSON.stringify(text).replace(UNSAFE_CHARS_G, unicodeEscape);
}

/**
 * The names a JSON line gives event fields that share a name with the
 * record's own keys (`time`, `role`, `port`, `event`). The record's keys
 * keep their meaning on every line, so `role` is always the service (`owner`
 * or `peer`); the peer's `connected role=owner` (the link's role) is written
 * as `"linkRole":"owner"`. The text line needs no renaming: there the
 * service is the `peer:7001` before the event word.
 */
export const JSON_FIELD_RENAMES: Readonly<Record<'time' | 'role' | 'port' | 'event', string>> = {
  time: 'fieldTime',
  role: 'linkRole',
  port: 'fieldPort',
  event: 'fieldEvent',
};

/**
 * A JSON line's keys after `time`: `role`, `port`, `event`, then the event's
 * fields, those named like a record key renamed (JSON_FIELD_RENAMES).
 * formatJson and the pino logger (node/logger.ts) both write this.
 */
export function jsonBody(record: Omit<LogRecord, 'time'>): Record<string, LogValue> {
  const body: Record<string, LogValue> = {
    role: record.role,
    port: record.port,
    event: record.event,
  };
  for (const [key, value] of Object.entries(record.fields)) {
    body[Object.hasOwn(JSON_FIELD_RENAMES, key) ? JSON_FIELD_RENAMES[key as 'role'] : key] = value;
  }
  return body;
}

/** `{"time":"…","role":"peer","port":7001,"event":"chunk-received","chunk":17,…}` */
export function formatJson(record: LogRecord): string {
  // JSON.stringify escapes C0 controls only; the rest of UNSAFE_CHARS is escaped here (still valid JSON).
  return JSON.stringify({ time: record.time.toISOString(), ...jsonBody(record) }).replace(
    UNSAFE_CHARS_G,
    unicodeEscape,
  );
}

export function formatRecord(record: LogRecord, format: LogFormat): string {
  return format === 'json' ? formatJson(record) : formatText(record);
}

/** Parses a text line back into its parts (for tests and the e2e harness). */
export function parseTextLine(
  line: string,
): { role: string; port: number; event: string; fields: Record<string, string> } | undefined {
  const match = /^\S+ (\w+):(\d+) ([a-z-]+)(.*)$/.exec(line);
  if (!match) return undefined;
  const fields: Record<string, string> = {};
  const re = /(\w+)=("(?:[^"\\]|\\.)*"|\S*)/g;
  for (let m = re.exec(match[4]!); m; m = re.exec(match[4]!)) {
    fields[m[1]!] = m[2]!.startsWith('"') ? (JSON.parse(m[2]!) as string) : m[2]!;
  }
  return { role: match[1]!, port: Number(match[2]), event: match[3]!, fields };
}

/** `[0,1,2,5,7,8]` -> `0-2,5,7-8`: chunk ID lists that stay one short field. */
export function formatRanges(ids: readonly number[]): string {
  const sorted = [...ids].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/** Inverse of formatRanges. */
export function parseRanges(text: string): number[] {
  if (text === '') return [];
  return text.split(',').flatMap((part) => {
    const [from, to] = part.split('-').map(Number) as [number, number | undefined];
    if (to === undefined) return [from];
    return Array.from({ length: to - from + 1 }, (_, k) => from + k);
  });
}
