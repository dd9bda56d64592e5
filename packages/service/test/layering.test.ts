/**
 * The workspace's layering (issue 20): data and imports flow one way,
 *
 *   protocol  <-  service  <-  owner, peer
 *
 * protocol is framing and chunking and imports no other package of ours (nor
 * the log's or the metrics' libraries); service is the shell both services
 * run, built on protocol alone; owner and peer never import each other. Within
 * each package the relative imports form no cycle. The peer's own rooms have
 * their test beside the peer (packages/peer/test/layering.test.ts).
 */
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const PACKAGES = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Which of our packages each package's source may import. */
const ALLOWED: Record<string, readonly string[]> = {
  protocol: [],
  service: ['protocol'],
  owner: ['protocol', 'service'],
  peer: ['protocol', 'service'],
  // The simulator runs the engine through the public faces of peer and owner.
  sim: ['protocol', 'owner', 'peer'],
};

/** Packages nothing may import: the simulator is a tool on top, not a part. */
const LEAVES = ['sim'];

/** Libraries that belong to the shell, not to framing and chunking. */
const SHELL_LIBRARIES = ['pino', 'log-update', 'prom-client'];

/** Every import specifier of a module (static, side-effect, re-export and dynamic). */
function specifiers(source: string): string[] {
  const out: string[] = [];
  const patterns = [
    /^\s*(?:import|export)\b[^'"]*?\bfrom\s+['"]([^'"]+)['"]/gm,
    /^\s*import\s+['"]([^'"]+)['"]/gm,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const pattern of patterns) for (const m of source.matchAll(pattern)) out.push(m[1]!);
  return out;
}

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await sourceFiles(path)));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

/** `@swarmdrop/<name>` (any subpath) → `<name>`; anything else → undefined. */
function ourPackage(specifier: string): string | undefined {
  return /^@swarmdrop\/([^/]+)/.exec(specifier)?.[1];
}

/** The source file a relative specifier names (`./x.js` is written for `./x.ts`). */
function resolveRelative(from: string, specifier: string): string {
  const path = resolve(dirname(from), specifier);
  return path.endsWith('.js') ? `${path.slice(0, -3)}.ts` : path;
}

/** Each package's src modules and their imports. */
async function graph(pkg: string): Promise<Map<string, string[]>> {
  const files = await sourceFiles(join(PACKAGES, pkg, 'src'));
  const imports = new Map<string, string[]>();
  for (const file of files) imports.set(file, specifiers(await readFile(file, 'utf8')));
  return imports;
}

/** A cycle of relative imports in `imports`, as a chain of files, or undefined. */
function findCycle(imports: Map<string, string[]>): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string): string[] | undefined => {
    if (state.get(file) === 'done') return undefined;
    if (state.get(file) === 'open') return [...stack.slice(stack.indexOf(file)), file];
    state.set(file, 'open');
    stack.push(file);
    for (const s of imports.get(file) ?? []) {
      if (!s.startsWith('.')) continue;
      const found = visit(resolveRelative(file, s));
      if (found) return found;
    }
    stack.pop();
    state.set(file, 'done');
    return undefined;
  };
  for (const file of imports.keys()) {
    const found = visit(file);
    if (found) return found;
  }
  return undefined;
}

describe('layering: protocol <- service <- owner, peer', () => {
  it('finds the imports it checks (the scan itself works)', async () => {
    const owner = await graph('owner');
    const all = [...owner.values()].flat();
    expect(all).toContain('@swarmdrop/protocol');
    expect(all).toContain('@swarmdrop/service');
    const cyclic = new Map([
      ['/a.ts', ['./b.js']],
      ['/b.ts', ['./a.js']],
    ]);
    expect(findCycle(cyclic)).toEqual(['/a.ts', '/b.ts', '/a.ts']);
  });

  for (const [pkg, allowed] of Object.entries(ALLOWED)) {
    it(`${pkg} imports ${allowed.length ? `only ${allowed.join(' and ')}` : 'no package of ours'}`, async () => {
      const offenders: string[] = [];
      for (const [file, specs] of await graph(pkg)) {
        for (const s of specs) {
          const target = ourPackage(s);
          if (target !== undefined && !allowed.includes(target))
            offenders.push(`${relative(PACKAGES, file)} -> ${s}`);
        }
      }
      expect(offenders).toEqual([]);
    });

    it(`${pkg}'s modules import one another without a cycle`, async () => {
      const cycle = findCycle(await graph(pkg));
      expect(cycle?.map((f) => relative(PACKAGES, f)).join(' -> ')).toBeUndefined();
    });
  }

  it('no package imports the simulator', async () => {
    const offenders: string[] = [];
    const everyPackage = (await readdir(PACKAGES, { withFileTypes: true }))
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
    expect(everyPackage).toContain('sim');
    for (const pkg of everyPackage) {
      if (LEAVES.includes(pkg)) continue;
      for (const dir of ['src', 'test']) {
        let files: string[];
        try {
          files = await sourceFiles(join(PACKAGES, pkg, dir));
        } catch {
          continue; // a package without tests
        }
        for (const file of files)
          for (const s of specifiers(await readFile(file, 'utf8')))
            if (LEAVES.includes(ourPackage(s) ?? ''))
              offenders.push(`${relative(PACKAGES, file)} -> ${s}`);
      }
    }
    expect(offenders).toEqual([]);
  });

  it('protocol uses none of the shell libraries (logging, status line, metrics)', async () => {
    const offenders: string[] = [];
    for (const [file, specs] of await graph('protocol'))
      for (const s of specs)
        if (SHELL_LIBRARIES.includes(s)) offenders.push(`${relative(PACKAGES, file)} -> ${s}`);
    expect(offenders).toEqual([]);
    const manifest = JSON.parse(await readFile(join(PACKAGES, 'protocol', 'package.json'), 'utf8'));
    for (const lib of SHELL_LIBRARIES) expect(manifest.dependencies).not.toHaveProperty(lib);
  });
});
