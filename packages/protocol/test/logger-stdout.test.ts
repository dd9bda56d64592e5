/**
 * The console log on a real stdout (a pipe to this test): no line is lost
 * when the service flushes and exits, when it exits without flushing,
 * while it idles, or when it is killed (SIGKILL) afterwards.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Cleanup } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';

const LOGGER = fileURLToPath(new URL('../dist/node/logger.js', import.meta.url));

/** A child that logs `lines` lines in `format`, then does `then`; its stdout lines as they come. */
function child(
  lines: number,
  format: 'text' | 'json',
  then: 'flush-exit' | 'exit' | 'idle' | 'signal-then-idle',
) {
  const script = `
    const { createLogger } = await import(${JSON.stringify(LOGGER)});
    const log = createLogger({ role: 'peer', port: 7001, format: ${JSON.stringify(format)}, limit: false });
    for (let i = 0; i < ${lines}; i++) log.log('have-sent', { chunk: i, to: '127.0.0.1:7002' });
    const then = ${JSON.stringify(then)};
    if (then === 'flush-exit') { await log.flush(); process.exit(0); }
    else if (then === 'exit') process.exit(0);
    else if (then === 'signal-then-idle') {
      // A later turn: tells the test it may kill us now (stderr is not the log).
      setTimeout(() => process.stderr.write('logged\\n'), 10);
      setInterval(() => {}, 1000);
    } else setInterval(() => {}, 1000);
  `;
  const proc = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const signalled = new Promise<void>((resolve) =>
    proc.stderr.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('logged')) resolve();
    }),
  );
  const out: string[] = [];
  let partial = '';
  const waiters: Array<() => void> = [];
  proc.stdout.on('data', (chunk: Buffer) => {
    const text = partial + chunk.toString();
    const parts = text.split('\n');
    partial = parts.pop() ?? '';
    out.push(...parts);
    for (const wake of waiters.splice(0)) wake();
  });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  /** Resolves once `n` lines have come (bounded by the test's timeout). */
  const lines_ = async (n: number) => {
    while (out.length < n) await new Promise<void>((wake) => waiters.push(wake));
    return out;
  };
  return { proc, out, exited, signalled, lines: lines_ };
}

describe('the console log on stdout', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  for (const format of ['text', 'json'] as const) {
    it(`${format}: every line of a burst arrives, in order, when the service flushes and exits`, async () => {
      const c = child(5000, format, 'flush-exit');
      cleanup.add(() => void c.proc.kill());
      expect(await c.exited).toBe(0);
      expect(c.out).toHaveLength(5000);
      expect(c.out[0]).toContain('have-sent');
      expect(c.out[4999]).toContain('4999');
    });
  }

  it('text: a process that exits without flushing still writes every line', async () => {
    const c = child(3000, 'text', 'exit');
    cleanup.add(() => void c.proc.kill());
    expect(await c.exited).toBe(0);
    expect(c.out).toHaveLength(3000);
  });

  it('text: every line logged before the process is killed (SIGKILL) is out', async () => {
    const c = child(500, 'text', 'signal-then-idle');
    cleanup.add(() => void c.proc.kill());
    await c.signalled;
    c.proc.kill('SIGKILL');
    await c.exited;
    expect(c.out).toHaveLength(500);
  });

  it('text: a few lines come out while the process idles', async () => {
    const c = child(3, 'text', 'idle');
    cleanup.add(() => void c.proc.kill());
    const got = await c.lines(3);
    expect(got.map((l) => l.split(' ')[2])).toEqual(['have-sent', 'have-sent', 'have-sent']);
  }, 20_000);
});
