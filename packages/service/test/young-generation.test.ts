/**
 * young-generation.ts keeps V8's young generation small in a service's
 * process (its socket reads, dead young, piled up in a large one: peak RSS
 * 103-111 MiB for a 256 MiB download, 75-77 MiB with it). Checked in a
 * child process that allocates like a download, with and without it; and
 * that both services' entry points import it before anything else.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const MODULE = fileURLToPath(new URL('../dist/young-generation.js', import.meta.url));

/** new_space's size in MiB after a burst of short-lived buffers and objects. */
function newSpaceMiB(preload: boolean): number {
  const script = `
    ${preload ? `await import(${JSON.stringify(MODULE)});` : ''}
    const v8 = await import('node:v8');
    let keep = [];
    for (let i = 0; i < 3000; i++) {
      Buffer.allocUnsafeSlow(65536)[0] = 1;
      for (let j = 0; j < 200; j++) keep.push({ i, j, s: 'x' + j });
      if (keep.length > 10000) keep = [];
    }
    const space = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
    console.log(space.space_size / 1048576);
  `;
  return Number(
    execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }),
  );
}

describe('young-generation', () => {
  it('keeps the new space at its first size where it would otherwise grow', () => {
    const grown = newSpaceMiB(false);
    const kept = newSpaceMiB(true);
    expect(grown).toBeGreaterThan(8);
    expect(kept).toBeLessThanOrEqual(4);
  });

  it('is the first import of both services entry points', () => {
    for (const service of ['owner', 'peer']) {
      const source = readFileSync(new URL(`../../${service}/src/cli.ts`, import.meta.url), 'utf8');
      const firstImport = source.split('\n').find((line) => line.startsWith('import '));
      expect(firstImport, service).toBe("import '@swarmdrop/service/young-generation';");
    }
  });
});
