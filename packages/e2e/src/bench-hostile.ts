/**
 * `pnpm bench:hostile [-- --jobs utp-reorder,mse-churn --runs N]`: what the
 * hostile-traffic budgets cost and hold, measured against real owner
 * processes on loopback (attack traffic from 127.0.0.2 and up), each job
 * bounded in time and stopping by itself:
 *
 * - `utp-reorder`: µTP connections that fill the reorder buffer with data
 *   ahead of the cumulative ack; the owner's RSS before, after and at its
 *   peak, and the bytes it holds out of order (hostile/utp-reorder.ts).
 * - `mse-churn`: MSE handshakes opened and abandoned at a fixed rate while a
 *   real peer downloads; the owner's CPU, `/status` latency and the peer's
 *   time against a baseline peer in the same run (hostile/mse-churn.ts).
 *
 * Prints each run's figures and the median per figure; writes JSON to
 * bench-results/.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { run as mseChurn } from './hostile/mse-churn.js';
import { run as utpReorder } from './hostile/utp-reorder.js';
import { fromCaller } from './paths.js';
import { REPO_ROOT } from './release.js';

const JOBS = { 'utp-reorder': () => utpReorder(), 'mse-churn': () => mseChurn() } as const;
type Job = keyof typeof JOBS;

const USAGE = `Usage: pnpm bench:hostile [-- options]

  --jobs LIST   utp-reorder,mse-churn (default both)
  --runs N      runs of each job (default 3)
  --out DIR     where the JSON goes (default: bench-results/)
  -h, --help    show this help
`;

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2).filter((a) => a !== '--'),
    options: {
      jobs: { type: 'string', default: 'utp-reorder,mse-churn' },
      runs: { type: 'string', default: '3' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const jobs = values.jobs.split(',') as Job[];
  for (const job of jobs) if (!(job in JOBS)) throw new Error(`--jobs: unknown job "${job}"`);
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1 || runs > 20)
    throw new Error('--runs must be an integer from 1 to 20');
  const results: Record<string, Array<Record<string, number | string>>> = {};
  for (let r = 1; r <= runs; r++) {
    for (const job of jobs) {
      const result = await JOBS[job]();
      results[job] = [...(results[job] ?? []), result];
      process.stdout.write(`${job} run ${r}: ${JSON.stringify(result)}\n`);
    }
  }
  for (const job of jobs) {
    process.stdout.write(`\n${job}, median [min-max] of ${runs}:\n`);
    const list = results[job]!;
    for (const key of Object.keys(list[0]!)) {
      const xs = list.map((x) => x[key]).filter((v): v is number => typeof v === 'number');
      if (xs.length === list.length && xs.every(Number.isFinite))
        process.stdout.write(`  ${key}: ${median(xs)} [${Math.min(...xs)}-${Math.max(...xs)}]\n`);
    }
  }
  const outDir = values.out ? fromCaller(values.out) : join(REPO_ROOT, 'bench-results');
  await mkdir(outDir, { recursive: true });
  const outFile = join(
    outDir,
    `bench-hostile-${new Date().toISOString().replace(/[:.]/g, '-')}.json`,
  );
  await writeFile(
    outFile,
    `${JSON.stringify({ date: new Date().toISOString(), results }, null, 2)}\n`,
  );
  process.stdout.write(`\nJSON: ${outFile}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:hostile: error: ${(err as Error).message}\n`);
  process.exit(1);
});
