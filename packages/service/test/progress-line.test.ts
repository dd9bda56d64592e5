/**
 * The terminal's status line, without a terminal: a fake stream that says
 * it is a TTY, read back through a small model of the few escape sequences
 * log-update writes, and a ManualClock for the rates.
 */

import { ManualClock } from '@swarmdrop/protocol';
import { describe, expect, it } from 'vitest';
import {
  BoundedWriter,
  createLogger,
  DomainEvents,
  formatDuration,
  PROGRESS_RATE_WINDOW_MS,
  PROGRESS_REDRAW_MS,
  ProgressLine,
  wantsStatusLine,
} from '../src/index.js';

/** Enough of a terminal for log-update: text, newlines, erase line, cursor up, cursor to column 0. */
class FakeTerminal {
  readonly isTTY = true;
  constructor(
    readonly columns = 200,
    readonly rows = 40,
  ) {}
  readonly screen: string[] = [''];
  row = 0;
  writes = 0;
  raw = '';

  write(text: string): boolean {
    this.writes++;
    this.raw += text;
    // biome-ignore lint/suspicious/noControlCharactersInRegex: escape sequences are what we parse
    const tokens = text.match(/\u001b\[\??[0-9;]*[A-Za-z]|\n|[^\u001b\n]+/g) ?? [];
    for (const token of tokens) {
      if (token === '\n') {
        this.row++;
        if (this.screen.length <= this.row) this.screen.push('');
      } else if (token === '\u001b[2K') {
        this.screen[this.row] = '';
      } else if (token.startsWith('\u001b[') && token.endsWith('A')) {
        this.row = Math.max(0, this.row - Number(token.slice(2, -1) || 1));
      } else if (token.startsWith('\u001b')) {
        // cursor to column 0, synchronized output on/off: nothing to model
      } else {
        this.screen[this.row] += token;
      }
    }
    return true;
  }

  /** The lines on screen, without the empty line the cursor waits on. */
  lines(): string[] {
    const lines = this.screen.slice(0, this.row + 1);
    while (lines.length > 0 && lines.at(-1) === '') lines.pop();
    return lines;
  }
}

async function peerLine(clock = new ManualClock()) {
  const events = new DomainEvents();
  const terminal = new FakeTerminal();
  const progress = await ProgressLine.create({ role: 'peer', events, output: terminal, clock });
  const logger = createLogger({
    role: 'peer',
    port: 7001,
    format: 'text',
    stream: progress.stream,
    limit: false,
  });
  return { events, terminal, progress, logger, clock };
}

describe('ProgressLine', () => {
  it('prints log lines above the status line and redraws the status line below them', async () => {
    const { events, terminal, progress, logger } = await peerLine();
    events.publish('listening', { addr: '127.0.0.1:7001' });
    events.publish('metainfo', { name: 'f', size: 1000, chunks: 10, infohash: 'x', torrent: 't' });
    logger.log('metainfo', { name: 'f', chunks: 10 });
    events.publish('chunk-received', {
      chunk: 3,
      from: '127.0.0.1:7002',
      bytes: 100,
      via: 'neighbour',
    });
    logger.log('chunk-received', { chunk: 3, from: '127.0.0.1:7002' });
    const lines = terminal.lines();
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/ peer:7001 metainfo name=f chunks=10$/);
    expect(lines[1]).toMatch(/ peer:7001 chunk-received chunk=3 from=127\.0\.0\.1:7002$/);
    expect(lines[2]).toMatch(/^peer 127\.0\.0\.1:7001 │ 1\/10 chunks 10% │ ↓ /);
    // Each log line erased the status line before it was printed.
    expect(terminal.raw.split('\u001b[2K').length - 1).toBeGreaterThanOrEqual(2);
    progress.close();
  });

  it('shows chunks, rates, ETA and connections from the events, on the injected clock', async () => {
    const { events, terminal, progress, clock } = await peerLine();
    events.publish('metainfo', {
      name: 'f',
      size: 10 * 102_400,
      chunks: 10,
      infohash: 'x',
      torrent: 't',
    });
    events.publish('resumed', { verified: 2, discarded: 0, dir: '/d' });
    events.publish('connected', { peer: 'a', dir: 'out' });
    events.publish('connected', { peer: 'b', dir: 'in' });
    events.publish('connected', { peer: 'c', dir: 'in' });
    events.publish('disconnected', { peer: 'c', reason: 'gone' });
    // 4 chunks of 100 KiB over 2 s: 200 KiB/s down; 4 chunks left: 2 s.
    for (let i = 0; i < 4; i++) {
      events.publish('chunk-received', { chunk: i + 2, from: 'a', bytes: 102_400, via: 'swarm' });
      events.publish('chunk-sent', { chunk: i, to: 'b', bytes: 51_200 });
      clock.advance(500);
    }
    expect(progress.stats.held).toBe(6);
    expect(progress.stats.text()).toBe(
      'peer │ 6/10 chunks 60% │ ↓ 200 KiB/s ↑ 100 KiB/s │ ETA 0:02 │ 2 peers',
    );
    // The redraw timer put the new numbers on screen with no log line.
    expect(terminal.lines().at(-1)).toBe(progress.stats.text());
    events.publish('merged', {
      path: '/d/f',
      sha256: 'x',
      verified: true,
      owner: 0,
      neighbour: 0,
      fallback: 0,
    });
    clock.advance(500);
    expect(terminal.lines().at(-1)).toMatch(/10\/10 chunks 100% .* │ done │ 2 peers$/);
    progress.close();
  });

  it('stops redrawing once nothing moves, and starts again with the next event', async () => {
    // A finished, quiet service redrew its line twice a second for nothing.
    const { events, terminal, progress, clock } = await peerLine();
    events.publish('metainfo', { name: 'f', size: 1000, chunks: 10, infohash: 'x', torrent: 't' });
    events.publish('chunk-received', { chunk: 0, from: 'a', bytes: 100, via: 'swarm' });
    // The download rate falls to zero over its window; the line follows it, then rests.
    for (let t = 0; t < PROGRESS_RATE_WINDOW_MS + 2 * PROGRESS_REDRAW_MS; t += PROGRESS_REDRAW_MS)
      clock.advance(PROGRESS_REDRAW_MS);
    expect(progress.stats.down.bytesPerSecond()).toBe(0);
    expect(clock.timers).toBe(0);
    const writes = terminal.writes;
    clock.advance(60_000);
    expect(terminal.writes).toBe(writes);
    events.publish('connected', { peer: 'a', dir: 'out' });
    expect(clock.timers).toBe(1);
    clock.advance(PROGRESS_REDRAW_MS);
    expect(terminal.lines().at(-1)).toMatch(/│ 1 peer$/);
    clock.advance(PROGRESS_REDRAW_MS);
    expect(clock.timers).toBe(0);
    progress.close();
  });

  it('holds a partial line until its end, and close() removes the status line for good', async () => {
    const { terminal, progress, events } = await peerLine();
    progress.stream.write('12:00:00.000 peer:7001 waiting for=own');
    expect(terminal.lines()).toEqual(['peer │ starting │ 0 peers']);
    progress.stream.write('er addr=x\n');
    expect(terminal.lines()[0]).toBe('12:00:00.000 peer:7001 waiting for=owner addr=x');
    progress.close();
    expect(terminal.lines()).toEqual(['12:00:00.000 peer:7001 waiting for=owner addr=x']);
    // After close: events change nothing on screen, log lines go straight through.
    const writes = terminal.writes;
    events.publish('connected', { peer: 'a', dir: 'out' });
    progress.redraw();
    expect(terminal.writes).toBe(writes);
    progress.stream.write('last\n');
    expect(terminal.lines().at(-1)).toBe('last');
  });

  it('draws on a terminal that reports no size (a pty from script(1)) as on 80 by 24', async () => {
    const events = new DomainEvents();
    const terminal = new FakeTerminal(0, 0);
    const progress = await ProgressLine.create({
      role: 'peer',
      events,
      output: terminal,
      clock: new ManualClock(),
    });
    expect(terminal.lines()).toEqual(['peer │ starting │ 0 peers']);
    progress.close();
  });

  it('the owner shows its chunks, upload rate, chunks sent and peers', async () => {
    const clock = new ManualClock();
    const events = new DomainEvents();
    const terminal = new FakeTerminal();
    const progress = await ProgressLine.create({ role: 'owner', events, output: terminal, clock });
    events.publish('listening', { addr: '127.0.0.1:7000', chunks: 103, size: 10_485_760 });
    events.publish('connected', { peer: 'p', dir: 'in' });
    events.publish('chunk-sent', { chunk: 1, to: 'p', bytes: 102_400 });
    clock.advance(1_000);
    expect(terminal.lines().at(-1)).toBe(
      'owner 127.0.0.1:7000 │ 103 chunks (10.0 MiB) │ ↑ 100 KiB/s │ 1 sent │ 1 peer',
    );
    progress.close();
  });
});

describe("ProgressLine as the log's sink", () => {
  it('prints each log line and the redraw below it in one write, so nothing can come between them', async () => {
    const events = new DomainEvents();
    const terminal = new FakeTerminal();
    const progress = await ProgressLine.create({
      role: 'peer',
      events,
      output: terminal,
      clock: new ManualClock(),
    });
    const logger = createLogger({
      role: 'peer',
      port: 7001,
      format: 'text',
      sink: progress,
      limit: false,
    });
    const before = terminal.writes;
    logger.log('have-sent', { chunk: 1, to: 'a' });
    logger.log('have-sent', { chunk: 2, to: 'a' });
    expect(terminal.writes - before).toBe(2);
    expect(terminal.lines()).toHaveLength(3);
    progress.close();
  });

  it('on a terminal far behind: lines go with their redraws, the screen stays whole, and log-dropped is printed above the status line', async () => {
    const clock = new ManualClock();
    const events = new DomainEvents();
    const terminal = new FakeTerminal();
    let stalled = true;
    const turns: Array<() => void> = [];
    const writer = new BoundedWriter({
      maxBytes: 4096,
      clock,
      defer: (fn) => turns.push(fn),
      write: (data) => {
        if (stalled) throw Object.assign(new Error('EAGAIN'), { code: 'EAGAIN' });
        terminal.write(data.toString());
        return data.length;
      },
    });
    const output = {
      isTTY: true,
      columns: 200,
      rows: 40,
      write: (text: string, force?: boolean) => writer.write(text, force),
      get dropping() {
        return writer.dropping;
      },
      onResume: (listener: () => void) => writer.onResume(listener),
    };
    const progress = await ProgressLine.create({ role: 'peer', events, output, clock });
    const logger = createLogger({
      role: 'peer',
      port: 7001,
      format: 'text',
      sink: progress,
      limit: false,
    });
    for (let i = 0; i < 200; i++) logger.log('have-sent', { chunk: i, to: '127.0.0.1:7002' });
    expect(writer.dropping).toBe(true);
    stalled = false;
    for (const fn of turns.splice(0)) fn();
    clock.advance(1_000);
    const lines = terminal.lines();
    const kept = lines.filter((l) => l.includes(' have-sent '));
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.length).toBeLessThan(200);
    for (const [i, line] of kept.entries())
      expect(line).toMatch(
        new RegExp(`^\\S+ peer:7001 have-sent chunk=${i} to=127\\.0\\.0\\.1:7002$`),
      );
    expect(lines.at(-2)).toMatch(new RegExp(` peer:7001 log-dropped count=${200 - kept.length}$`));
    expect(lines.at(-1)).toBe('peer │ starting │ 0 peers');
    expect(lines).toHaveLength(kept.length + 2);
    progress.close();
  });
});

describe('wantsStatusLine', () => {
  const tty = { isTTY: true, write: () => true };
  it('is on for a terminal, outside CI, without --quiet', () => {
    expect(wantsStatusLine({ output: tty, env: {} })).toBe(true);
    expect(wantsStatusLine({ output: tty, env: { CI: 'false' } })).toBe(true);
    expect(wantsStatusLine({ output: tty, env: { CI: '0' } })).toBe(true);
  });
  it('is off in a pipe, in CI and with --quiet', () => {
    expect(wantsStatusLine({ output: { write: () => true }, env: {} })).toBe(false);
    expect(wantsStatusLine({ output: { isTTY: false, write: () => true }, env: {} })).toBe(false);
    expect(wantsStatusLine({ output: tty, env: { CI: 'true' } })).toBe(false);
    expect(wantsStatusLine({ output: tty, env: { CI: '1' } })).toBe(false);
    expect(wantsStatusLine({ output: tty, env: {}, quiet: true })).toBe(false);
  });
});

describe('formatDuration', () => {
  it('prints m:ss, h:mm:ss, and --:-- when unknown', () => {
    expect(formatDuration(46)).toBe('0:46');
    expect(formatDuration(725)).toBe('12:05');
    expect(formatDuration(3723)).toBe('1:02:03');
    expect(formatDuration(undefined)).toBe('--:--');
  });
});
