import { createWriteStream, type WriteStream } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { execa, type ResultPromise } from 'execa';

const require = createRequire(import.meta.url);

/** The bin of a service package, run with this Node (no shell, no PATH lookup). */
export function binPath(service: 'owner' | 'peer'): string {
  return join(
    dirname(require.resolve(`@swarmdrop/${service}/package.json`)),
    'bin',
    `swarmdrop-${service}.js`,
  );
}

export interface Exit {
  readonly code: number | undefined;
  readonly signal: string | undefined;
}

export interface LaunchOptions {
  readonly cwd: string;
  /** Every line (stdout and stderr) is appended here. */
  readonly logPath: string;
  readonly onLine?: (line: string) => void;
  readonly env?: Record<string, string>;
}

type Waiter = { test: (line: string) => boolean; resolve: (line: string) => void };

/**
 * A child process started by the harness: its lines are kept, copied to a log
 * file, and can be awaited. Stopped by PID only, never by name.
 */
export class ManagedProcess {
  readonly name: string;
  readonly lines: string[] = [];
  /** When each line arrived (ms since epoch), index for index with `lines`. */
  readonly lineTimes: number[] = [];
  readonly exited: Promise<Exit>;
  readonly startedAt = Date.now();
  /** When the process logged `merged` (ms since epoch); 0 until then. */
  completedAt = 0;
  private readonly child: ResultPromise;
  private readonly log: WriteStream;
  private waiters: Waiter[] = [];
  private exit: Exit | undefined;
  private readonly logClosed: Promise<void>;

  constructor(name: string, file: string, args: readonly string[], options: LaunchOptions) {
    this.name = name;
    this.log = createWriteStream(options.logPath, { flags: 'a' });
    this.logClosed = new Promise((resolve) => this.log.on('close', () => resolve()));
    this.log.write(`# ${file} ${args.join(' ')}\n`);
    this.child = execa(file, args, {
      cwd: options.cwd,
      buffer: false,
      reject: false,
      stdin: 'ignore',
      env: { ...options.env, FORCE_COLOR: '0' },
    });
    const onLine = (line: string) => {
      this.lines.push(line);
      this.lineTimes.push(Date.now());
      if (this.completedAt === 0 && line.includes(' merged ')) this.completedAt = Date.now();
      this.log.write(`${line}\n`);
      options.onLine?.(line);
      const still: Waiter[] = [];
      for (const w of this.waiters) {
        if (w.test(line)) w.resolve(line);
        else still.push(w);
      }
      this.waiters = still;
    };
    // Read as a terminal reads, all the time: a service's log drops lines (and says so) when
    // its reader falls far behind, and the checks want every line.
    createInterface({ input: this.child.stdout! }).on('line', onLine);
    createInterface({ input: this.child.stderr! }).on('line', onLine);
    this.exited = this.child.then((result) => {
      this.exit = { code: result.exitCode, signal: result.signal };
      return this.exit;
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get hasExited(): boolean {
    return this.exit !== undefined;
  }

  /** Arrival time of the first line that passes `test`, or undefined. */
  timeOf(test: (line: string) => boolean, last = false): number | undefined {
    const index = last ? this.lines.findLastIndex(test) : this.lines.findIndex(test);
    return index >= 0 ? this.lineTimes[index] : undefined;
  }

  /** Resolves with the first line (already seen or to come) that passes `test`; rejects on exit or timeout. */
  waitFor(test: (line: string) => boolean, what: string, timeoutMs: number): Promise<string> {
    const seen = this.lines.find(test);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`${this.name}: no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter: Waiter = {
        test,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      };
      this.waiters.push(waiter);
      void this.exited.then((exit) => {
        if (!this.waiters.includes(waiter)) return;
        this.waiters = this.waiters.filter((w) => w !== waiter);
        clearTimeout(timer);
        reject(
          new Error(
            `${this.name} exited (code ${exit.code}, signal ${exit.signal}) before ${what}`,
          ),
        );
      });
    });
  }

  /** Sends `signal` to this process only. */
  kill(signal: NodeJS.Signals): void {
    if (!this.hasExited) this.child.kill(signal);
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited and its log is flushed. */
  async stop(graceMs = 5_000): Promise<Exit> {
    if (!this.hasExited) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(timer);
    }
    const exit = await this.exited;
    this.log.end();
    await this.logClosed;
    return exit;
  }
}
