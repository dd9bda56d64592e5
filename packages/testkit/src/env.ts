import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/**
 * Bounds a wait that should end promptly. Only a hang ever reaches it: a
 * test's verdict comes from the event it waits for, never from this clock.
 */
export const HANG_MS = 30_000;

/** True when the environment variable CI says this is a CI run. */
export const IN_CI = !['', '0', 'false', undefined].includes(process.env.CI?.toLowerCase());

/** Where the executable `name` is on PATH, or undefined. */
export function toolPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/** True when `name` is an executable on PATH. */
export function hasTool(name: string): boolean {
  return toolPath(name) !== undefined;
}

/**
 * Whether a test that needs the stock client `tool` should run: always in CI
 * (where a missing tool must fail the run), elsewhere only if it is installed.
 */
export function toolAvailable(tool: string): boolean {
  return IN_CI || hasTool(tool);
}
