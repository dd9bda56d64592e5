import { chmod, copyFile, mkdir, mkdtemp, readFile, symlink } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import type { Command } from './swarm.js';

const require = createRequire(import.meta.url);

export type Service = 'owner' | 'peer';

/** The repository root (packages/e2e/src/../../..). */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** The service package's directory in the workspace. */
export function serviceDir(service: Service): string {
  return dirname(require.resolve(`@swarmdrop/${service}/package.json`));
}

/** The version in the service's package.json. */
export async function serviceVersion(service: Service): Promise<string> {
  const pkg = JSON.parse(await readFile(join(serviceDir(service), 'package.json'), 'utf8'));
  return pkg.version as string;
}

/** Where `turbo run bundle` (scripts/bundle.mjs) leaves the single-file bundle. */
export function bundlePath(service: Service): string {
  return join(serviceDir(service), 'bundle', `swarmdrop-${service}.mjs`);
}

/**
 * Builds the service's bundle from the current source (esbuild takes well
 * under a second), so a test never runs a stale one. Needs the service's
 * workspace dependencies built (`pnpm build`), as every e2e test does.
 */
export async function buildBundle(service: Service): Promise<string> {
  await execa(process.execPath, [join(REPO_ROOT, 'scripts', 'bundle.mjs')], {
    cwd: serviceDir(service),
  });
  return bundlePath(service);
}

/** A new empty directory outside the workspace, as on a machine that has never seen it. */
export function makeOutsideDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `swarmdrop-${prefix}-`));
}

/**
 * A host's folder: `dir/bin/node` (a link to this Node, the only program on
 * the PATH we give) and a copy of each bundle. Returns the bundles' paths.
 */
export async function prepareHostDir(
  dir: string,
  bundles: readonly string[],
): Promise<{ binDir: string; bundles: string[] }> {
  const binDir = join(dir, 'bin');
  await mkdir(binDir, { recursive: true });
  await symlink(process.execPath, join(binDir, 'node'));
  const copies: string[] = [];
  for (const bundle of bundles) {
    const copy = join(dir, basename(bundle));
    await copyFile(bundle, copy);
    await chmod(copy, 0o755);
    copies.push(copy);
  }
  return { binDir, bundles: copies };
}

/**
 * Runs `bundle` through its `#!/usr/bin/env node` line with an empty
 * environment whose PATH holds only node: `env -i PATH=<binDir> <bundle>`.
 * `prefix` goes in front (e.g. `ip netns exec NS`); each step execs the next,
 * so the PID the harness holds is the service's own.
 */
export function isolatedCommand(
  bundle: string,
  binDir: string,
  cwd: string,
  prefix: readonly string[] = [],
): Command {
  const env = ['/usr/bin/env', '-i', `PATH=${binDir}`, bundle];
  return prefix.length === 0
    ? { file: env[0]!, args: env.slice(1), cwd }
    : { file: prefix[0]!, args: [...prefix.slice(1), ...env], cwd };
}

/**
 * The module specifiers a bundle imports. A self-contained bundle imports
 * Node built-ins only.
 */
export async function bundleImports(bundle: string): Promise<string[]> {
  const text = await readFile(bundle, 'utf8');
  const specifiers = new Set<string>();
  for (const m of text.matchAll(
    /(?:^|[;\s])(?:import\s*(?:[\w*{}\s,$]+\s*from\s*)?|import\s*\(\s*|require\s*\(\s*)["']([^"']+)["']/g,
  ))
    specifiers.add(m[1]!);
  return [...specifiers].sort();
}
