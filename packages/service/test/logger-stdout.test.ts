/**
 * The console log on a real stdout: a child process logs into a socket
 * pair (what Node's child_process and journald give a service) or a FIFO
 * (a shell pipe), which this test reads, or leaves unread.
 *
 * The contract: lines are queued and written without blocking; everything
 * queued is written on a normal exit (flushed or not), on SIGTERM and on
 * SIGINT, waiting a bounded time for a reader that does not read; past the
 * queue's bound lines are dropped and one `log-dropped count=N` line says
 * so; a SIGKILL loses what was not written yet, never the order.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { constants, openSync, readFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Cleanup } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { parseTextLine } from '../src/index.js';

const LOGGER = fileURLToPath(new URL('../dist/log/logger.js', import.meta.url));
const CLI = fileURLToPath(new URL('../dist/options/cli.js', import.meta.url));

type After = 'exit' | 'flush-exit' | 'end' | 'signal' | 'idle';
type Via = 'socketpair' | 'fifo';

interface ChildSpec {
  readonly lines: number;
  readonly after: After;
  readonly via?: Via;
  readonly format?: 'text' | 'json';
  /** The queue's bound (SWARMDROP_LOG_BUFFER_BYTES). */
  readonly bufferBytes?: number;
  /** Read stdout from the start (default), or only once `read()` is called. */
  readonly reading?: boolean;
}

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/**
 * A child that logs `lines` lines (`have-sent chunk=i`), says `logged` on
 * stderr (not the log) in a later turn, then does `after`.
 */
async function child(spec: ChildSpec) {
  const script = `
    const { createLogger } = await import(${JSON.stringify(LOGGER)});
    const { onShutdownSignal } = await import(${JSON.stringify(CLI)});
    const log = createLogger({ role: 'peer', port: 7001, format: ${JSON.stringify(spec.format ?? 'text')}, limit: false });
    const after = ${JSON.stringify(spec.after)};
    // As the services do: stop (the log flushed last), then exit.
    if (after === 'signal') onShutdownSignal(() => log.flush());
    for (let i = 0; i < ${spec.lines}; i++) log.log('have-sent', { chunk: i, to: '127.0.0.1:7002' });
    if (after === 'exit') process.exit(0);
    else if (after === 'flush-exit') { await log.flush(); process.exit(0); }
    else if (after !== 'end') {
      setTimeout(() => process.stderr.write('logged\\n'), 10);
      setInterval(() => {}, 1000);
    }
  `;
  const env = {
    ...process.env,
    ...(spec.bufferBytes ? { SWARMDROP_LOG_BUFFER_BYTES: String(spec.bufferBytes) } : {}),
  };
  const args = ['--input-type=module', '-e', script];
  let proc: ChildProcess;
  let stdout: NodeJS.ReadableStream;
  /** The test's own descriptor of the FIFO's write end (shared with the child). */
  let sharedFd: number | undefined;
  if (spec.via === 'fifo') {
    const dir = await cleanup.tempDir('swarmdrop-fifo-');
    const path = join(dir, 'stdout');
    const mk = spawn('mkfifo', [path]);
    await new Promise((resolve) => mk.once('exit', resolve));
    const readFd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    sharedFd = openSync(path, constants.O_WRONLY);
    proc = spawn(process.execPath, args, { stdio: ['ignore', sharedFd, 'pipe'], env });
    const reader = new Socket({ fd: readFd, readable: true, writable: false });
    cleanup.add(() => void reader.destroy());
    stdout = reader;
  } else {
    proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    stdout = proc.stdout!;
  }
  cleanup.add(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await new Promise((resolve) => proc.once('exit', resolve));
    }
  });
  const logged = new Promise<void>((resolve) =>
    proc.stderr!.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('logged')) resolve();
    }),
  );
  const out: string[] = [];
  let partial = '';
  const waiters: Array<() => void> = [];
  const ended = new Promise<void>((resolve) => stdout.once('end', resolve));
  let reading = false;
  const read = () => {
    if (reading) return;
    reading = true;
    stdout.on('data', (chunk: Buffer) => {
      const parts = (partial + chunk.toString()).split('\n');
      partial = parts.pop() ?? '';
      out.push(...parts);
      for (const wake of waiters.splice(0)) wake();
    });
  };
  if (spec.reading !== false) read();
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    proc.once('exit', (code, signal) => {
      // Now or never: right after 'exit', child_process drains a stream nobody reads.
      read();
      resolve({ code, signal });
    }),
  );
  return {
    proc,
    out,
    exited,
    logged,
    read,
    /** Everything is read: the child and every copy of the write end are closed. */
    ended: async () => {
      await exited;
      if (sharedFd !== undefined) {
        const { closeSync } = await import('node:fs');
        closeSync(sharedFd);
        sharedFd = undefined;
      }
      await ended;
    },
    /** The flags of the test's own descriptor of the FIFO (O_NONBLOCK is 04000, octal). */
    sharedFlags: () =>
      sharedFd === undefined
        ? undefined
        : Number.parseInt(
            /flags:\s*(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${sharedFd}`, 'utf8'))![1]!,
            8,
          ),
    /** Resolves once a line passes `test` (bounded by the test's timeout). */
    line: async (test: (line: string) => boolean) => {
      for (;;) {
        const found = out.find(test);
        if (found !== undefined) return found;
        await new Promise<void>((wake) => waiters.push(wake));
      }
    },
  };
}

const chunkOf = (line: string) => Number(parseTextLine(line)?.fields.chunk);
const range = (n: number) => [...Array(n).keys()];

describe('the console log on stdout', () => {
  for (const format of ['text', 'json'] as const) {
    it(`${format}: every line of a burst arrives, in order, when the service flushes and exits`, async () => {
      const c = await child({ lines: 5000, format, after: 'flush-exit' });
      expect((await c.exited).code).toBe(0);
      await c.ended();
      expect(c.out).toHaveLength(5000);
      expect(c.out[0]).toContain('have-sent');
      expect(c.out[4999]).toContain('4999');
    });
  }

  for (const via of ['socketpair', 'fifo'] as const) {
    it(`${via}: a process that exits without flushing, or whose event loop just ends, still writes every line`, async () => {
      for (const after of ['exit', 'end'] as const) {
        const c = await child({ lines: 20_000, after, via });
        expect((await c.exited).code, after).toBe(0);
        await c.ended();
        expect(c.out.map(chunkOf), after).toEqual(range(20_000));
      }
    });
  }

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal}: everything queued for a reader that was behind is written before the process exits`, async () => {
      // The reader reads nothing until the signal is sent: 20,000 lines wait in the queue.
      const c = await child({ lines: 20_000, after: 'signal', reading: false });
      await c.logged;
      c.proc.kill(signal);
      c.read();
      expect(await c.exited).toEqual({ code: 0, signal: null });
      await c.ended();
      expect(c.out.map(chunkOf)).toEqual(range(20_000));
    });
  }

  for (const via of ['socketpair', 'fifo'] as const) {
    it(`${via}: past the bound lines are dropped, and once the reader reads again one log-dropped line says how many`, async () => {
      const c = await child({
        lines: 20_000,
        after: 'signal',
        via,
        bufferBytes: 64 * 1024,
        reading: false,
      });
      // Logged in full while nobody read: the child's event loop went on (it said so).
      await c.logged;
      c.read();
      const dropped = await c.line((l) => parseTextLine(l)?.event === 'log-dropped');
      const kept = c.out.filter((l) => parseTextLine(l)?.event === 'have-sent');
      // What was kept is the start of the log, in order; the count is the rest.
      expect(kept.map(chunkOf)).toEqual(range(kept.length));
      expect(kept.length).toBeLessThan(20_000);
      expect(Number(parseTextLine(dropped)!.fields.count)).toBe(20_000 - kept.length);
      expect(c.out.at(-1)).toBe(dropped);
      c.proc.kill('SIGTERM');
      expect((await c.exited).code).toBe(0);
    });
  }

  for (const after of ['exit', 'signal'] as const) {
    it(`a reader that never reads cannot hold the exit (${after === 'exit' ? 'process.exit' : 'SIGTERM'})`, async () => {
      const c = await child({ lines: 50_000, after, reading: false });
      if (after === 'signal') {
        await c.logged;
        c.proc.kill('SIGTERM');
      }
      // Nothing is read until the child is gone: the exit's flush gave up by itself.
      expect((await c.exited).code).toBe(0);
      await c.ended();
      expect(c.out.length).toBeLessThan(50_000);
      expect(c.out.map(chunkOf)).toEqual(range(c.out.length));
    });
  }

  it('fifo: the pipe that stdout shares with the parent is not made non-blocking', async () => {
    const c = await child({ lines: 10, after: 'idle', via: 'fifo' });
    await c.logged;
    await c.line((l) => chunkOf(l) === 9);
    expect(c.sharedFlags()! & constants.O_NONBLOCK).toBe(0);
  });

  it('SIGKILL: with a reader that keeps up, every line of the turns before the kill is out', async () => {
    const c = await child({ lines: 500, after: 'idle' });
    await c.logged;
    c.proc.kill('SIGKILL');
    await c.ended();
    expect(c.out.map(chunkOf)).toEqual(range(500));
  });

  it('SIGKILL: with a reader that is behind, the lines that arrive are the start of the log, in order', async () => {
    const c = await child({ lines: 20_000, after: 'idle', reading: false });
    await c.logged;
    c.proc.kill('SIGKILL');
    c.read();
    await c.ended();
    // The tail still queued is lost (the last line may be cut); nothing is reordered.
    expect(c.out.length).toBeLessThan(20_000);
    expect(c.out.map(chunkOf)).toEqual(range(c.out.length));
  });

  it('a few lines come out while the process idles', async () => {
    const c = await child({ lines: 3, after: 'idle' });
    await c.line((l) => chunkOf(l) === 2);
    expect(c.out.map((l) => l.split(' ')[2])).toEqual(['have-sent', 'have-sent', 'have-sent']);
  });
});
