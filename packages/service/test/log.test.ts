/** Log lines: text lines parse back into their fields; JSON lines are JSON. */
import { Writable } from 'node:stream';
import { ManualClock } from '@swarmdrop/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BoundedWriter,
  createLogger,
  formatJson,
  formatRanges,
  formatRecord,
  formatText,
  JSON_FIELD_RENAMES,
  LOG_EVENTS,
  type LogEventName,
  type LogFields,
  type LogRecord,
  parseRanges,
  parseTextLine,
} from '../src/index.js';

const TIME = new Date('2024-05-06T12:00:01.234Z');

function record(event: LogEventName, fields: LogRecord['fields']): LogRecord {
  return { time: TIME, role: 'peer', port: 7001, event, fields };
}

describe('formatText / parseTextLine', () => {
  it('writes the stable layout: time, role:port, event, key=value', () => {
    const line = formatText(
      record('chunk-received', { chunk: 17, from: '127.0.0.1:7002', bytes: 102_400 }),
    );
    expect(line).toBe(
      '12:00:01.234 peer:7001 chunk-received chunk=17 from=127.0.0.1:7002 bytes=102400',
    );
  });

  it('round-trips values with spaces, quotes, equals signs, backslashes and empty strings', () => {
    const fields = {
      reason: 'socket error: read ECONNRESET',
      quoted: 'say "hi"',
      eq: 'a=b',
      path: 'C:\\dir\\file name',
      empty: '',
      tab: 'a\tb',
      newline: 'line1\nline2',
      unicode: 'ünï cödé ✓',
      flag: true,
      n: 0,
    };
    const line = formatText(record('protocol-error', fields));
    expect(line).not.toContain('\n');
    const parsed = parseTextLine(line);
    expect(parsed).toEqual({
      role: 'peer',
      port: 7001,
      event: 'protocol-error',
      fields: Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, String(v)])),
    });
  });

  it('leaves out undefined fields', () => {
    const line = formatText(record('connected', { to: 'x:1', peer: undefined }));
    expect(parseTextLine(line)?.fields).toEqual({ to: 'x:1' });
  });

  it('returns undefined for a line that is not a log line', () => {
    for (const line of ['', 'hello', 'ready to go', '12:00:01.234 peer chunk-sent']) {
      expect(parseTextLine(line)).toBeUndefined();
    }
  });

  it('property: any event and any field values round-trip through one line', () => {
    const key = fc.stringMatching(/^[a-z][a-zA-Z0-9_]{0,12}$/);
    const value = fc.oneof(
      fc.string(),
      fc.string({ unit: 'grapheme' }),
      fc.string({ unit: 'binary' }),
      fc.integer(),
      fc.boolean(),
    );
    fc.assert(
      fc.property(
        fc.constantFrom(...LOG_EVENTS),
        fc.constantFrom('owner', 'peer'),
        fc.integer({ min: 0, max: 65_535 }),
        fc.dictionary(key, value, { maxKeys: 6 }),
        (event, role, port, fields) => {
          const line = formatText({ time: TIME, role, port, event, fields });
          expect(line).not.toMatch(/[\n\r]/);
          const parsed = parseTextLine(line);
          expect(parsed).toEqual({
            role,
            port,
            event,
            fields: Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, String(v)])),
          });
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('formatJson', () => {
  it('is one line of JSON with time, role, port, event and the fields', () => {
    const line = formatJson(record('chunk-sent', { chunk: 3, to: 'h:1', note: 'a "b"\nc' }));
    expect(line).not.toContain('\n');
    expect(JSON.parse(line)).toEqual({
      time: TIME.toISOString(),
      role: 'peer',
      port: 7001,
      event: 'chunk-sent',
      chunk: 3,
      to: 'h:1',
      note: 'a "b"\nc',
    });
  });

  // A peer's `connected role=owner` (the link's role) used to overwrite the
  // record's `role` (the service), so the line claimed to come from an owner.
  it("keeps the record's role, port, time and event; an event field of the same name is renamed", () => {
    const fields = { peer: 'h:1', role: 'owner', port: 9, time: 'x', event: 'y', dir: 'out' };
    const parsed = JSON.parse(formatJson(record('connected', fields)));
    expect(parsed).toEqual({
      time: TIME.toISOString(),
      role: 'peer',
      port: 7001,
      event: 'connected',
      peer: 'h:1',
      [JSON_FIELD_RENAMES.role]: 'owner',
      [JSON_FIELD_RENAMES.port]: 9,
      [JSON_FIELD_RENAMES.time]: 'x',
      [JSON_FIELD_RENAMES.event]: 'y',
      dir: 'out',
    });
    expect(parsed.linkRole).toBe('owner');
    // The text line keeps the field's own name: the service is its `peer:7001`.
    expect(formatText(record('connected', { role: 'owner' }))).toBe(
      '12:00:01.234 peer:7001 connected role=owner',
    );
  });

  it('formatRecord picks the format', () => {
    const r = record('ready', { chunks: 5 });
    expect(formatRecord(r, 'json')).toBe(formatJson(r));
    expect(formatRecord(r, 'text')).toBe(formatText(r));
  });
});

describe('createLogger', () => {
  function collect() {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    });
    return { lines, stream };
  }

  it('writes one line per event with the injected clock and the current port', () => {
    const { lines, stream } = collect();
    const logger = createLogger({
      role: 'owner',
      port: 0,
      format: 'text',
      stream,
      clock: () => TIME,
    });
    logger.log('listening', { host: '0.0.0.0' });
    logger.setPort(7000);
    logger.log('chunk-sent', { chunk: 1, to: '127.0.0.1:7001' });
    expect(lines).toEqual([
      '12:00:01.234 owner:0 listening host=0.0.0.0',
      '12:00:01.234 owner:7000 chunk-sent chunk=1 to=127.0.0.1:7001',
    ]);
  });

  it('writes JSON lines when asked', () => {
    const { lines, stream } = collect();
    const logger = createLogger({
      role: 'peer',
      port: 7003,
      format: 'json',
      stream,
      clock: () => TIME,
    });
    logger.log('done');
    expect(lines.map((l) => JSON.parse(l))).toEqual([
      { time: TIME.toISOString(), role: 'peer', port: 7003, event: 'done' },
    ]);
  });
});

describe('createLogger on a bounded sink (a reader far behind)', () => {
  /** A logger on a BoundedWriter of `maxBytes` whose reader takes nothing until `read()`. */
  function stalled(format: 'text' | 'json', maxBytes: number) {
    const clock = new ManualClock();
    let reading = false;
    let text = '';
    const turns: Array<() => void> = [];
    const sink = new BoundedWriter({
      maxBytes,
      clock,
      defer: (fn) => turns.push(fn),
      write: (data) => {
        if (!reading) throw Object.assign(new Error('EAGAIN'), { code: 'EAGAIN' });
        text += data.toString();
        return data.length;
      },
    });
    const logger = createLogger({
      role: 'peer',
      port: 7001,
      format,
      sink,
      clock: () => TIME,
      limit: false,
    });
    const endTurn = () => {
      for (const fn of turns.splice(0)) fn();
    };
    /** The reader reads again; returns every line it got. */
    const read = () => {
      reading = true;
      endTurn();
      clock.advance(1_000);
      return text.split('\n').filter(Boolean);
    };
    return { logger, sink, endTurn, read };
  }

  for (const format of ['text', 'json'] as const) {
    it(`${format}: drops the lines past the bound, and says how many in one log-dropped line once writing resumes`, () => {
      const { logger, endTurn, read } = stalled(format, 4096);
      for (let i = 0; i < 200; i++) logger.log('have-sent', { chunk: i, to: '127.0.0.1:7002' });
      endTurn();
      const lines = read();
      const kept = lines.filter((l) => l.includes('have-sent'));
      expect(kept.length).toBeGreaterThan(10);
      expect(kept.length).toBeLessThan(200);
      // The lines that were kept are the first ones, in order.
      expect(
        kept.map((l) => (format === 'json' ? JSON.parse(l).chunk : parseTextLine(l)!.fields.chunk)),
      ).toEqual([...Array(kept.length).keys()].map((i) => (format === 'json' ? i : String(i))));
      const notices = lines.filter((l) => l.includes('log-dropped'));
      expect(notices).toHaveLength(1);
      const count =
        format === 'json' ? JSON.parse(notices[0]!) : parseTextLine(notices[0]!)!.fields;
      if (format === 'json')
        expect(count).toEqual({
          time: TIME.toISOString(),
          role: 'peer',
          port: 7001,
          event: 'log-dropped',
          count: 200 - kept.length,
        });
      else expect(count).toEqual({ count: String(200 - kept.length) });
      // It comes after the kept lines: where the gap is.
      expect(lines.at(-1)).toBe(notices[0]);
    });
  }

  it('logs normally after the drop count, and drops again (and counts afresh) if the reader stops again', () => {
    const { logger, sink, endTurn, read } = stalled('text', 2048);
    for (let i = 0; i < 100; i++) logger.log('have-sent', { chunk: i, to: '127.0.0.1:7002' });
    endTurn();
    read();
    logger.log('merged', { path: '/d/f' });
    expect(sink.dropping).toBe(false);
    const lines = read();
    expect(lines.at(-1)).toMatch(/ peer:7001 merged path=\/d\/f$/);
    expect(lines.filter((l) => l.includes('log-dropped'))).toHaveLength(1);
  });

  it('says how many were dropped when flushed (the service stopping) even if the reader has not read since', async () => {
    const { logger, sink, endTurn, read } = stalled('text', 1024);
    for (let i = 0; i < 100; i++) logger.log('have-sent', { chunk: i, to: '127.0.0.1:7002' });
    endTurn();
    expect(sink.dropping).toBe(true);
    const flushed = logger.flush();
    const lines = read();
    await flushed;
    const dropped = lines.filter((l) => l.includes('log-dropped'));
    expect(dropped).toHaveLength(1);
    const kept = lines.filter((l) => l.includes('have-sent')).length;
    expect(parseTextLine(dropped[0]!)!.fields.count).toBe(String(100 - kept));
  });
});

describe('the JSON log through pino', () => {
  function jsonLines(fields: LogFields, event: LogEventName = 'metainfo') {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    });
    const logger = createLogger({
      role: 'peer',
      port: 7001,
      format: 'json',
      stream,
      clock: () => TIME,
      limit: false,
    });
    logger.log(event, fields);
    return lines;
  }

  it("writes exactly the line formatJson writes: same keys, same order, nothing of pino's own", () => {
    const fields = { chunk: 17, from: '127.0.0.1:7002', bytes: 102400, via: 'neighbour', ok: true };
    const lines = jsonLines(fields, 'chunk-received');
    expect(lines).toEqual([
      formatJson({ time: TIME, role: 'peer', port: 7001, event: 'chunk-received', fields }),
    ]);
    expect(Object.keys(JSON.parse(lines[0]!))).toEqual([
      'time',
      'role',
      'port',
      'event',
      'chunk',
      'from',
      'bytes',
      'via',
      'ok',
    ]);
  });

  it("keeps the service's role beside a `connected` line's role, as formatJson does", () => {
    const fields = { peer: '127.0.0.1:6881', dir: 'out', role: 'owner', port: 6881 };
    const lines = jsonLines(fields, 'connected');
    expect(lines).toEqual([
      formatJson({ time: TIME, role: 'peer', port: 7001, event: 'connected', fields }),
    ]);
    expect(JSON.parse(lines[0]!)).toMatchObject({
      role: 'peer',
      port: 7001,
      linkRole: 'owner',
      fieldPort: 6881,
    });
  });

  it("property: values of tricky characters give formatJson's line, printable, that parses back", () => {
    const tricky = fc
      .array(
        fc.constantFrom(
          'a',
          ' ',
          '"',
          '\\',
          '\n',
          '\u2028',
          '\u0085',
          '\u001b',
          '\u007f',
          'é',
          '😀',
          '\u202e',
        ),
        { maxLength: 12 },
      )
      .map((parts) => parts.join(''));
    fc.assert(
      fc.property(tricky, fc.integer(), (value, n) => {
        const fields = { name: value, n, skipped: undefined };
        const [line] = jsonLines(fields);
        expect(line).toBe(
          formatJson({ time: TIME, role: 'peer', port: 7001, event: 'metainfo', fields }),
        );
        expect(line).not.toMatch(UNPRINTABLE);
        expect(JSON.parse(line!)).toMatchObject({ name: value, n });
      }),
      { numRuns: 500 },
    );
  });
});

describe('formatRanges / parseRanges', () => {
  it('writes runs as ranges, sorted', () => {
    expect(formatRanges([8, 0, 1, 2, 5, 7])).toBe('0-2,5,7-8');
    expect(formatRanges([])).toBe('');
    expect(formatRanges([4])).toBe('4');
    expect(parseRanges('0-2,5,7-8')).toEqual([0, 1, 2, 5, 7, 8]);
    expect(parseRanges('')).toEqual([]);
  });

  it('property: parseRanges(formatRanges(ids)) is the sorted IDs', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.nat(300), { maxLength: 60 }), (ids) => {
        const text = formatRanges(ids);
        expect(text).not.toMatch(/\s/);
        expect(parseRanges(text)).toEqual([...ids].sort((a, b) => a - b));
      }),
      { numRuns: 500 },
    );
  });
});

/*
 * Pins a bug: formatText quoted only values with whitespace, `"` or `=`. A
 * value holding U+2028 or U+2029 (quoted, but JSON.stringify leaves them raw)
 * made parseTextLine return undefined, since they end a line for JavaScript
 * regexes; and control characters such as ESC went out raw, so a value from
 * the remote (a peer id, an error message) could send terminal escapes.
 */
const UNPRINTABLE =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: looking for control characters is the point
  /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f]/;

function roundTrip(fields: LogFields) {
  const line = formatText({
    time: TIME,
    role: 'peer',
    port: 7001,
    event: 'protocol-error',
    fields,
  });
  return { line, parsed: parseTextLine(line) };
}

describe('unprintable characters in log values', () => {
  it.each([
    ['U+2028', 'a\u2028b'],
    ['U+2029', 'a\u2029b'],
    ['ESC', '\u001b[31mred\u001b[0m'],
    ['NUL', 'a\u0000b'],
    ['DEL', 'a\u007fb'],
    ['C1 CSI', 'a\u009b2J'],
    ['NEL', '\u0085'],
    // A name like "invoice\u202Efdp.exe" reads as "invoiceexe.pdf" when printed raw.
    ['U+202E right-to-left override', 'invoice\u202efdp.exe'],
    ['U+2066 left-to-right isolate', 'a\u2066b\u2069c'],
    ['U+200F right-to-left mark', 'a\u200fb'],
  ])('%s is escaped on the line and parsed back', (_name, value) => {
    const { line, parsed } = roundTrip({ peer: value });
    expect(line).not.toMatch(UNPRINTABLE);
    expect(parsed?.fields).toEqual({ peer: value });
  });

  it('JSON lines escape bidi controls and separators too, and still parse', () => {
    const value = 'invoice\u202efdp.exe\u2028\u0085';
    const line = formatJson({
      time: TIME,
      role: 'peer',
      port: 7001,
      event: 'metainfo',
      fields: { name: value },
    });
    expect(line).not.toMatch(UNPRINTABLE);
    expect(line).toContain('\\u202e');
    expect((JSON.parse(line) as { name: string }).name).toBe(value);
  });

  it('property: strings of tricky characters round-trip and leave the line printable', () => {
    const tricky = fc
      .array(
        fc.constantFrom(
          'a',
          'Z',
          '0',
          ' ',
          '"',
          '=',
          '\\',
          "'",
          '\t',
          '\n',
          '\r',
          '\u2028',
          '\u2029',
          '\u0085',
          '\u001b',
          '\u0000',
          '\u007f',
          '\u009b',
          '\u00a0',
          'é',
          '✓',
          '😀',
          '\ufeff',
          '\u202e',
          '\u2067',
        ),
        { maxLength: 12 },
      )
      .map((parts) => parts.join(''));
    fc.assert(
      fc.property(fc.array(tricky, { minLength: 1, maxLength: 4 }), (values) => {
        const fields = Object.fromEntries(values.map((v, i) => [`k${i}`, v]));
        const { line, parsed } = roundTrip(fields);
        expect(line).not.toMatch(UNPRINTABLE);
        expect(parsed?.fields).toEqual(fields);
      }),
      { numRuns: 1000 },
    );
  });
});
