import { resolve } from 'node:path';

/**
 * Resolves a path the user typed against the directory they ran `pnpm demo`
 * or `pnpm bench` from: pnpm runs the script inside packages/e2e and passes
 * the caller's directory as INIT_CWD.
 */
export function fromCaller(path: string): string {
  return resolve(process.env.INIT_CWD ?? process.cwd(), path);
}
