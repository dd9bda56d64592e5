/**
 * The peer's layering (issues 9 and 20): ring/, swarm/, engine/,
 * completion, bootstrap, the torrent and its session never import peer.ts,
 * directly or through another module; anything going up is an event. The
 * engine (engine/) is below both modes: it reaches neither ring/ nor
 * swarm/, and the two modes never reach each other.
 */
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../src');
const PEER = join(SRC, 'peer.ts');

/** The modules below the peer: every file in these folders, and these files. */
const BELOW_DIRS = ['ring', 'swarm', 'engine'];
const BELOW_FILES = ['completion.ts', 'bootstrap.ts', 'torrent.ts', 'session.ts'];

/** Each folder, and the folders none of its modules may reach. */
const APART: Record<string, readonly string[]> = {
  engine: ['ring', 'swarm'],
  ring: ['swarm'],
  swarm: ['ring'],
};

/** The relative import specifiers of a module (static, side-effect, re-export and dynamic). */
function specifiers(source: string): string[] {
  const out: string[] = [];
  const patterns = [
    /\bfrom\s+['"]([^'"]+)['"]/g,
    /\bimport\s+['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const pattern of patterns) for (const m of source.matchAll(pattern)) out.push(m[1]!);
  return out.filter((s) => s.startsWith('.'));
}

/** The source file a relative specifier names (`./x.js` is written for `./x.ts`). */
function resolveSpecifier(from: string, specifier: string): string {
  const path = resolve(dirname(from), specifier);
  return path.endsWith('.js') ? `${path.slice(0, -3)}.ts` : path;
}

/** Every module `entry` reaches through relative imports, each with the chain that led to it. */
async function reachable(entry: string): Promise<Map<string, string[]>> {
  const seen = new Map<string, string[]>([[entry, [entry]]]);
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.shift()!;
    const source = await readFile(file, 'utf8');
    for (const specifier of specifiers(source)) {
      const target = resolveSpecifier(file, specifier);
      if (seen.has(target)) continue;
      seen.set(target, [...seen.get(file)!, target]);
      if (target.endsWith('.ts')) queue.push(target);
    }
  }
  return seen;
}

async function filesIn(dir: string): Promise<string[]> {
  return (await readdir(join(SRC, dir)))
    .filter((n) => n.endsWith('.ts'))
    .map((n) => join(SRC, dir, n));
}

async function belowThePeer(): Promise<string[]> {
  const files = BELOW_FILES.map((f) => join(SRC, f));
  for (const dir of BELOW_DIRS) {
    for (const name of await readdir(join(SRC, dir))) {
      if (name.endsWith('.ts')) files.push(join(SRC, dir, name));
    }
  }
  return files;
}

describe('layering: nothing below the peer imports peer.ts', () => {
  it('finds peer.ts when it is imported (the scan itself works)', async () => {
    // index.ts re-exports the Peer: the scan must see it, or the check below proves nothing.
    expect((await reachable(join(SRC, 'index.ts'))).has(PEER)).toBe(true);
  });

  it('ring/, swarm/, engine/, completion, bootstrap, torrent and session never reach peer.ts', async () => {
    const files = await belowThePeer();
    expect(files.length).toBeGreaterThan(BELOW_FILES.length);
    const offenders: string[] = [];
    for (const file of files) {
      const chain = (await reachable(file)).get(PEER);
      if (chain) offenders.push(chain.map((f) => relative(SRC, f)).join(' -> '));
    }
    expect(offenders).toEqual([]);
  });
});

describe('layering: the engine below both modes, the modes apart', () => {
  it('finds a folder it must not reach when it is imported (the scan itself works)', async () => {
    // ring-session runs on the engine: the scan must see engine/ from ring/.
    const reached = [...(await reachable(join(SRC, 'ring', 'ring-session.ts'))).keys()];
    expect(reached.some((f) => f.startsWith(join(SRC, 'engine') + '/'))).toBe(true);
  });

  for (const [dir, apart] of Object.entries(APART)) {
    it(`${dir}/ never reaches ${apart.map((d) => `${d}/`).join(' or ')}`, async () => {
      const offenders: string[] = [];
      for (const file of await filesIn(dir)) {
        for (const [target, chain] of await reachable(file)) {
          if (apart.some((d) => target.startsWith(join(SRC, d) + '/')))
            offenders.push(chain.map((f) => relative(SRC, f)).join(' -> '));
        }
      }
      expect(offenders).toEqual([]);
    });
  }
});
