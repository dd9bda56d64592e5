/**
 * The merged file is on stable storage before `merged` is printed: the
 * peer's own system calls, seen with strace, are fsync of the file, the
 * rename into place, fsync of its folder, and only then the `merged` line
 * on stdout. A deploy script that goes on after `merged` cannot lose the
 * file to a power cut. (Before, a whole run made no fsync at all.)
 */
import { spawn, spawnSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CHUNK, Cleanup, freePort, IN_CI, PEER_BIN, startOwner } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const hasStrace = spawnSync('strace', ['-V'], { stdio: 'ignore' }).status === 0;

interface Call {
  readonly time: number;
  readonly line: string;
}

describe('a durable merge', () => {
  it.skipIf(!hasStrace && !IN_CI)(
    'fsyncs the file, renames it, fsyncs its folder, then prints merged (needs strace)',
    async () => {
      const { owner, data } = await startOwner(cleanup, {
        size: 12 * CHUNK,
        name: 'payload.bin',
        options: { expectedPeers: 1 },
      });
      const work = await cleanup.tempDir();
      const dir = join(work, 'peer');
      const trace = join(work, 'strace');
      const child = spawn(
        'strace',
        [
          // One file per thread: with -f into one file, a call another
          // thread interrupts is split into `<unfinished ...>` and
          // `<... resumed>` lines, and a busy machine does that often.
          '-ff',
          '-ttt',
          '-y',
          '-s',
          '100000',
          '-e',
          'trace=fsync,fdatasync,rename,renameat,renameat2,write,writev',
          '-o',
          trace,
          process.execPath,
          PEER_BIN,
          String(owner.port),
          String(await freePort()),
          String(await freePort()),
          '--dir',
          dir,
          '--exit-when-done',
          '--linger-ms',
          '0',
          '--quiet',
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      cleanup.add(() => {
        if (child.exitCode === null) child.kill('SIGKILL');
      });
      const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
      expect(code).toBe(0);
      const out = join(dir, 'payload.bin');
      expect((await readFile(out)).equals(data)).toBe(true);

      // `1712345.123456 call(...) = result`, from every thread's file, in time order.
      const files = (await readdir(work)).filter((f) => f.startsWith('strace.'));
      const texts = await Promise.all(files.map((f) => readFile(join(work, f), 'utf8')));
      const calls: Call[] = texts
        .join('\n')
        .split('\n')
        .map((line) => ({ time: Number(line.split(/\s+/)[0]), line }))
        .filter((c) => Number.isFinite(c.time))
        .sort((a, b) => a.time - b.time);
      const at = (what: string, test: (line: string) => boolean): number => {
        const found = calls.find((c) => test(c.line));
        expect(found, `${what} in the trace`).toBeDefined();
        return found!.time;
      };
      const fsyncFile = at('fsync of the part', (l) =>
        /\b(fsync|fdatasync)\(\d+<[^>]*payload\.bin\.part>\) = 0/.test(l),
      );
      const renamed = at('the rename into place', (l) =>
        /rename(at2?)?\(.*payload\.bin\.part".*payload\.bin"/.test(l),
      );
      const fsyncFolder = at('fsync of the folder', (l) =>
        new RegExp(`\\b(fsync|fdatasync)\\(\\d+<${dir.replace(/[/.]/g, '\\$&')}>\\) = 0`).test(l),
      );
      const printed = at('the merged line on stdout', (l) =>
        /\bwritev?\(1<[^>]*>, .*\bmerged path=/.test(l),
      );
      expect(fsyncFile).toBeLessThanOrEqual(renamed);
      expect(renamed).toBeLessThanOrEqual(fsyncFolder);
      expect(fsyncFolder).toBeLessThanOrEqual(printed);
    },
  );
});
