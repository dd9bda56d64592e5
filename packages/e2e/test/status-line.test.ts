/**
 * The status line of a real peer process: on a terminal (a pty from
 * script(1)) it is drawn under the log; in CI and with --quiet the same
 * terminal gets log lines only. (In a pipe there is none: every other test
 * reads a pipe, and this file checks that too.)
 */
import { spawn } from 'node:child_process';
import {
  Cleanup,
  freePorts,
  HANG_MS,
  hasTool,
  IN_CI,
  MiB,
  PEER_BIN,
  runBin,
  startOwner,
  within,
} from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** Runs a peer bin on a fresh pty (script -q -e -c) and resolves with all it printed, once it exits. */
async function onTerminal(args: readonly string[], env: NodeJS.ProcessEnv): Promise<string> {
  const command = [process.execPath, PEER_BIN, ...args].map((a) => `'${a}'`).join(' ');
  const child = spawn('script', ['-q', '-e', '-c', command, '/dev/null'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SWARMDROP_DEBUG: '', ...env },
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (t: string) => {
    out += t;
  });
  child.stderr.setEncoding('utf8').on('data', (t: string) => {
    out += t;
  });
  const exited = new Promise<number | string>((resolve) =>
    child.once('close', (code, signal) => resolve(code ?? signal ?? -1)),
  );
  cleanup.add(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  const code = await within(exited, HANG_MS * 2, () => out.slice(-2000));
  expect(code, out.slice(-2000)).toBe(0);
  return out;
}

const ESC = '\u001b';

/** The text of a line without the CSI sequences (erase, cursor moves) before it. */
function withoutEscapes(line: string): string {
  return line
    .split(ESC)
    .map((part, i) => (i === 0 ? part : part.replace(/^\[[?0-9;]*[A-Za-z]/, '')))
    .join('');
}

// script(1) is in util-linux (Debian's bsdutils, an essential package): CI has it.
describe.runIf(IN_CI || hasTool('script'))('the status line on a terminal', () => {
  it('is drawn under the log, with chunks, rates, ETA and peers, and removed at exit', async () => {
    const { port: ownerPort } = await startOwner(cleanup, { size: 2 * MiB });
    const [port] = await freePorts(1);
    const dir = await cleanup.tempDir('swarmdrop-status-');
    // A download limit stretches the transfer over a few redraws.
    const out = await onTerminal(
      [
        String(ownerPort),
        String(port),
        '--dir',
        dir,
        '--exit-when-done',
        '--linger-ms',
        '0',
        '--download-limit',
        '1MiB',
      ],
      { CI: '' },
    );
    expect(out).toMatch(
      /peer \S+ │ \d+\/21 chunks \d+% │ ↓ [\d.]+ \S+\/s ↑ [\d.]+ \S+\/s │ (ETA [\d:-]+|merging|done) │ \d+ peers?/,
    );
    expect(out).toContain(`${ESC}[2K`); // erased before each log line
    // close() at exit erased the last one.
    expect(out.slice(out.lastIndexOf('│'))).toContain(`${ESC}[2K`);
    expect(out).toMatch(/peer:\d+ merged .*verified=true/);
    // Every log line arrived whole: none is split by a status line.
    const logLines = out.split(/\r?\n/).filter((l) => / peer:\d+ chunk-received /.test(l));
    expect(logLines).toHaveLength(21);
    for (const line of logLines)
      expect(withoutEscapes(line)).toMatch(
        /^\d\d:\d\d:\d\d\.\d{3} peer:\d+ chunk-received chunk=\d+ from=\S+ bytes=\d+ via=\w+$/,
      );
  });

  it.each([
    ['with CI=true', [], { CI: 'true' }],
    ['with --quiet', ['--quiet'], { CI: '' }],
  ])('is not drawn %s: log lines only, no escape sequence', async (_what, extra, env) => {
    const { port: ownerPort } = await startOwner(cleanup, { size: 300_000 });
    const [port] = await freePorts(1);
    const dir = await cleanup.tempDir('swarmdrop-status-');
    const out = await onTerminal(
      [
        String(ownerPort),
        String(port),
        '--dir',
        dir,
        '--exit-when-done',
        '--linger-ms',
        '0',
        ...extra,
      ],
      env,
    );
    expect(out).toMatch(/peer:\d+ merged .*verified=true/);
    expect(out).not.toContain(ESC);
    expect(out).not.toContain('│');
  });
});

describe('the status line in a pipe', () => {
  it('is not drawn', async () => {
    const { port: ownerPort } = await startOwner(cleanup, { size: 300_000 });
    const [port] = await freePorts(1);
    const dir = await cleanup.tempDir('swarmdrop-status-');
    const child = runBin(
      cleanup,
      PEER_BIN,
      [String(ownerPort), String(port), '--dir', dir, '--exit-when-done', '--linger-ms', '0'],
      { env: { CI: '' } },
    );
    expect(await within(child.exited, HANG_MS, () => child.stdout.tail())).toBe(0);
    expect(child.stdout.filter('merged')).toHaveLength(1);
    expect(child.stdout.text()).not.toContain(ESC);
    expect(child.stdout.text()).not.toContain('│');
  });
});
