/**
 * The `swarmdrop-owner` bin as a user runs it: bad input is one line on
 * stderr naming the problem and a non-zero exit, never a stack trace; a
 * running owner stops cleanly on SIGTERM and SIGINT.
 */
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MAX_PIECE_COUNT } from '@swarmdrop/protocol';
import {
  type Child,
  Cleanup,
  HANG_MS,
  httpGet,
  OWNER_BIN,
  randomFile,
  runBin,
  within,
} from '@swarmdrop/testkit';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';

const packageDir = fileURLToPath(new URL('..', import.meta.url));
const isRoot = process.getuid?.() === 0;

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The bin, with its raw stdout and a promise of its exit once stdout and stderr have drained. */
function spawnOwner(
  cleanup: Cleanup,
  args: readonly string[],
  cwd: string,
  launcher?: readonly string[],
): { child: Child; stdout: () => string; closed: Promise<[number | null, string | null]> } {
  const child = runBin(cleanup, OWNER_BIN, args, { cwd, ...(launcher ? { launcher } : {}) });
  // Attached in the same tick as the spawn, so no output and no close is missed.
  const closed = once(child.process, 'close') as Promise<[number | null, string | null]>;
  let stdout = '';
  child.process.stdout?.on('data', (text: string) => {
    stdout += text;
  });
  return { child, stdout: () => stdout, closed };
}

/** Runs the bin to its end; the bound only stops a hang. */
async function run(
  cleanup: Cleanup,
  args: readonly string[],
  cwd: string,
  launcher?: readonly string[],
): Promise<Run> {
  const { child, stdout, closed } = spawnOwner(cleanup, args, cwd, launcher);
  const [code] = await within(
    closed,
    HANG_MS,
    () => `swarmdrop-owner ${args.join(' ')} is still running; stderr: ${child.stderr}`,
  );
  return { code, stdout: stdout(), stderr: child.stderr };
}

beforeAll(() => {
  if (!existsSync(join(packageDir, 'dist', 'cli.js')))
    throw new Error(
      'packages/owner/dist is missing: run `pnpm build` first (turbo does it for `pnpm test`)',
    );
});

describe('command line: bad input', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());
  let dir: string;
  let file: string;

  async function prepare(): Promise<void> {
    dir = await cleanup.tempDir();
    file = join(dir, 'data.bin');
    await randomFile(file, 10_000);
  }

  function runBin(
    args: readonly string[],
    cwd: string,
    launcher?: readonly string[],
  ): Promise<Run> {
    return run(cleanup, args, cwd, launcher);
  }

  /** One line on stderr that matches `problem`, non-zero exit, nothing on stdout, no stack. */
  function expectRefusal(run: Run, problem: RegExp): void {
    expect(run.code, run.stderr).not.toBe(0);
    expect(run.code).not.toBeNull();
    expect(run.stdout).toBe('');
    const lines = run.stderr.split('\n').filter((l) => l !== '');
    expect(lines, run.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^swarmdrop-owner: error: /);
    expect(lines[0]).toMatch(problem);
    expect(run.stderr).not.toContain('    at ');
  }

  it('refuses a rate limit that is not a rate, naming the flag', async () => {
    await prepare();
    expectRefusal(
      await runBin(['0', file, '--upload-limit', '2X'], dir),
      /--upload-limit: "2X" is not a rate in bytes per second \(examples: 500k, 2M, 10MiB, 0 for no limit\)/,
    );
    expectRefusal(
      await runBin(['0', file, '--download-limit=-1M'], dir),
      /--download-limit: "-1M" is not a rate/,
    );
  });

  it('refuses missing arguments', async () => {
    await prepare();
    expectRefusal(await runBin([], dir), /expected <port> <file>/);
    expectRefusal(await runBin(['7000'], dir), /expected <port> <file>/);
    expectRefusal(await runBin(['7000', file, 'extra'], dir), /unexpected extra argument "extra"/);
  });

  it('refuses a file that does not exist, a directory and an empty file', async () => {
    await prepare();
    expectRefusal(await runBin(['0', join(dir, 'nope.bin')], dir), /nope\.bin does not exist/);
    const sub = join(dir, 'a-directory');
    await mkdir(sub);
    expectRefusal(await runBin(['0', sub], dir), /a-directory is a directory/);
    const empty = join(dir, 'empty.bin');
    await writeFile(empty, '');
    expectRefusal(await runBin(['0', empty], dir), /empty\.bin is empty/);
  });

  it('refuses an unreadable file', async () => {
    await prepare();
    await chmod(file, 0o000);
    // Root reads a file whatever its mode; without these two capabilities
    // it obeys the mode as any user does (CI runs as root).
    const launcher = isRoot
      ? ['setpriv', '--bounding-set', '-dac_override,-dac_read_search']
      : undefined;
    expectRefusal(
      await runBin(['0', file], dir, launcher),
      /data\.bin.*(permission denied|cannot be read)/,
    );
  });

  it('refuses a port that is not a number, out of range, or negative', async () => {
    await prepare();
    expectRefusal(await runBin(['http', file], dir), /"http" is not a port number/);
    expectRefusal(await runBin(['70000', file], dir), /port 70000 is out of range/);
    expectRefusal(await runBin(['127.0.0.1:99999', file], dir), /out of range/);
    expectRefusal(await runBin(['-5', file], dir), /"-5" is not a port number/);
    expectRefusal(await runBin(['bad host!:7000', file], dir), /invalid host/);
  });

  it('refuses a port already in use', async () => {
    await prepare();
    const blocker = createServer();
    cleanup.add(() => new Promise((resolve) => blocker.close(resolve)));
    blocker.listen(0, '127.0.0.1');
    await once(blocker, 'listening');
    const address = blocker.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    expectRefusal(
      await runBin([`127.0.0.1:${address.port}`, file], dir),
      new RegExp(`127\\.0\\.0\\.1:${address.port} is already in use`),
    );
  });

  // Starting used to delete, recursively, everything under <dir>/chunks/ that was not a chunk file.
  it('refuses a --dir whose chunks/ holds files it did not write, deleting nothing', async () => {
    await prepare();
    const work = join(dir, 'work');
    await mkdir(join(work, 'chunks', 'album'), { recursive: true });
    await writeFile(join(work, 'chunks', 'album', 'song.flac'), 'precious');
    expectRefusal(
      await runBin(['0', file, '--dir', work], dir),
      /--dir: .*chunks holds 1 entry swarmdrop did not write \("album"\)/,
    );
    expect(await readFile(join(work, 'chunks', 'album', 'song.flac'), 'utf8')).toBe('precious');
  });

  // Peers would refuse (or, before, print raw and create) a file named with a bidi override.
  it('refuses a file whose name holds a bidi override, showing it escaped', async () => {
    await prepare();
    const evil = join(dir, 'invoice\u202efdp.exe');
    await randomFile(evil, 1000);
    const run = await runBin(['0', evil, '--dir', join(dir, 'w')], dir);
    expectRefusal(run, /invoice\\u202efdp\.exe.* contains control or bidi characters/);
    expect(run.stderr).not.toContain('\u202e');
  });

  it('refuses a file that needs more than MAX_PIECE_COUNT chunks, naming the --chunk-size that works', async () => {
    await prepare();
    const big = join(dir, 'many.bin');
    await randomFile(big, MAX_PIECE_COUNT + 1);
    const run = await runBin(['0', big, '--chunk-size', '1', '--dir', join(dir, 'w')], dir);
    expectRefusal(
      run,
      new RegExp(
        `--chunk-size: .*${MAX_PIECE_COUNT + 1} chunks of 1 bytes, more than ${MAX_PIECE_COUNT}; use --chunk-size 2 or more`,
      ),
    );
    expect(existsSync(join(dir, 'w'))).toBe(false);
  });

  it('refuses bad option values and unknown options', async () => {
    await prepare();
    expectRefusal(await runBin(['0', file, '--chunk-size', 'big'], dir), /--chunk-size: "big"/);
    expectRefusal(
      await runBin(['0', file, '--chunk-size', '0'], dir),
      /--chunk-size: 0 is out of range/,
    );
    expectRefusal(await runBin(['0', file, '--log-format', 'xml'], dir), /--log-format: "xml"/);
    expectRefusal(await runBin(['0', file, '--max-connections', '-1'], dir), /max-connections/);
    expectRefusal(await runBin(['0', file, '--expected-peers', '0'], dir), /--expected-peers/);
    expectRefusal(
      await runBin(['0', file, '--handshake-timeout-ms', '5'], dir),
      /--handshake-timeout-ms: 5 is out of range/,
    );
    expectRefusal(await runBin(['0', file, '--bogus'], dir), /unknown option --bogus/);
  });

  it('prints help and version, exit 0', async () => {
    await prepare();
    const help = await runBin(['--help'], dir);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: swarmdrop-owner <port> <file>/);
    for (const option of [
      '--dir',
      '--chunk-size',
      '--expected-peers',
      '--tracker-max-peers',
      '--tracker-max-per-address',
      '--max-connections',
      '--handshake-timeout-ms',
      '--public-host',
      '--log-format',
    ])
      expect(help.stdout).toContain(option);
    const version = await runBin(['--version'], dir);
    expect(version.code).toBe(0);
    const pkg = JSON.parse(await readFile(join(packageDir, 'package.json'), 'utf8')) as {
      version: string;
    };
    expect(version.stdout).toBe(`${pkg.version}\n`);
  });
});

describe('command line: stopping on a signal', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  /** Starts the bin and resolves once it logs `ready` (in either log format). */
  async function startBin(extra: string[]) {
    const dir = await cleanup.tempDir();
    const path = join(dir, 'data.bin');
    await randomFile(path, 300_000);
    const started = spawnOwner(
      cleanup,
      ['127.0.0.1:0', path, '--dir', join(dir, 'o'), ...extra],
      dir,
    );
    const { child, closed } = started;
    const ready = child.stdout.waitUntil(
      (l) => l.event === 'ready' || /"event":"ready"/.test(l.line),
      'ready line',
    );
    const exitedEarly = closed.then(([code]) => {
      throw new Error(`exited with ${code} before ready; stderr: ${child.stderr}`);
    });
    await Promise.race([ready, exitedEarly]);
    return started;
  }

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`exits 0 on ${signal}, having logged "stopping"`, async () => {
      const { child, closed } = await startBin([]);
      const addr = child.stdout.filter('listening')[0]?.fields.addr ?? '';
      const port = Number(/^127\.0\.0\.1:(\d+)$/.exec(addr)?.[1]);
      expect(port).toBeGreaterThan(0);
      // It really serves before it is told to stop.
      expect((await httpGet(port, '/status')).status).toBe(200);
      child.process.kill(signal);
      const [code, signalCode] = await within(closed, HANG_MS, () => child.stdout.tail());
      expect(signalCode).toBeNull();
      expect(code).toBe(0);
      expect(child.stdout.filter('stopping').map((l) => l.port)).toEqual([port]);
      await expect(httpGet(port, '/status')).rejects.toThrow();
    });
  }

  it('logs JSON lines with --log-format json', async () => {
    const { child, closed, stdout } = await startBin(['--log-format', 'json']);
    child.process.kill('SIGTERM');
    await within(closed, HANG_MS, () => stdout());
    const records = stdout()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records.map((r) => r.event)).toEqual(['listening', 'ready', 'stopping']);
    const listening = records[0]!;
    expect(listening).toMatchObject({
      role: 'owner',
      chunks: 3,
      size: 300_000,
      written: 3,
      reused: 0,
    });
    expect(listening.port).toBe(records[2]!.port);
    expect(typeof listening.time).toBe('string');
  });
});
