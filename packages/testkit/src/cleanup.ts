import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Teardown steps registered by a test as it opens things, run in reverse
 * order by `run()` in `afterEach`. One failing step does not skip the others;
 * their errors are reported together.
 */
export class Cleanup {
  private steps: Array<() => unknown> = [];

  add(step: () => unknown): void {
    this.steps.push(step);
  }

  /** A fresh directory under os.tmpdir(), removed by `run()`. */
  async tempDir(prefix = 'swarmdrop-test-'): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), prefix));
    this.add(() => rm(dir, { recursive: true, force: true, maxRetries: 3 }));
    return dir;
  }

  async run(): Promise<void> {
    const steps = this.steps.reverse();
    this.steps = [];
    const errors: unknown[] = [];
    for (const step of steps) {
      try {
        await step();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, 'cleanup failed');
  }
}
