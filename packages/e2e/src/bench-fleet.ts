/**
 * `pnpm bench:fleet [-- options]`: a real owner process under a fleet's
 * load on loopback (fleet-jobs.ts), a real peer completing meanwhile:
 *
 * - `announce`: 10,000 distinct peers announcing at 2,000 a second;
 * - `connections`: 1,000 BitTorrent connections held at once, downloading.
 *
 * Each job is bounded in count and time and stops by itself. Prints each
 * run's figures and the median [min-max] per figure; writes JSON to
 * bench-results/.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { hasTool } from '@swarmdrop/testkit';
import { announceJob, connectionsJob, openFileLimit } from './fleet-jobs.js';
import { fromCaller } from './paths.js';
import { REPO_ROOT } from './release.js';

const USAGE = `Usage: pnpm bench:fleet [-- options]

The owner under a fleet's load on loopback, a real peer completing meanwhile.

  --jobs LIST          announce,connections (default both)
  --runs N             runs of each job, 1-20 (default 3)
  --peers N            announce: distinct peers, 1-60000 (default 10000)
  --rate N             announce: announces per second, 1-20000 (default 2000)
  --announces N        announce: announces in all, up to 1000000
                       (default 4 x --peers; wrk runs announces / rate
                       seconds)
  --generator NAME     announce: wrk (Debian's wrk, paced, keep-alive,
                       peers by port; the default when installed) or
                       node (open loop, one connection and one loopback
                       address per peer; tops out near 700/s here)
  --connections N      connections: BitTorrent connections held,
                       1-10000 (default 1000)
  --hold-seconds S     connections: how long they are held and measured,
                       5-600 (default 30)
  --out DIR            where the JSON goes (default: bench-results/)
  -h, --help           show this help

The connections job needs about connections + 512 open files (ulimit -n).
`;

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

function integer(flag: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min || n > max)
    throw new Error(`--${flag}: "${text}" is not an integer from ${min} to ${max}`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2).filter((a) => a !== '--'),
    options: {
      jobs: { type: 'string', default: 'announce,connections' },
      runs: { type: 'string', default: '3' },
      peers: { type: 'string', default: '10000' },
      rate: { type: 'string', default: '2000' },
      announces: { type: 'string' },
      generator: { type: 'string' },
      connections: { type: 'string', default: '1000' },
      'hold-seconds': { type: 'string', default: '30' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const jobs = values.jobs.split(',');
  for (const job of jobs)
    if (job !== 'announce' && job !== 'connections')
      throw new Error(`--jobs: unknown job "${job}" (announce, connections)`);
  const runs = integer('runs', values.runs, 1, 20);
  const peers = integer('peers', values.peers, 1, 60_000);
  const perSecond = integer('rate', values.rate, 1, 20_000);
  const count = values.announces ? integer('announces', values.announces, 1, 1_000_000) : 4 * peers;
  const generator = values.generator ?? (hasTool('wrk') ? 'wrk' : 'node');
  if (generator !== 'wrk' && generator !== 'node')
    throw new Error(`--generator: "${generator}" is neither wrk nor node`);
  if (generator === 'wrk' && jobs.includes('announce') && !hasTool('wrk'))
    throw new Error(
      '--generator wrk: wrk is not installed (apt-get install wrk), or use --generator node',
    );
  const connections = integer('connections', values.connections, 1, 10_000);
  const holdSeconds = integer('hold-seconds', values['hold-seconds'], 5, 600);
  process.stdout.write(`open files limit (ulimit -n): ${await openFileLimit()}\n`);
  const results: Record<string, Array<Record<string, number | string>>> = {};
  for (let r = 1; r <= runs; r++) {
    for (const job of jobs) {
      const result =
        job === 'announce'
          ? await announceJob({ generator, peers, perSecond, count, fileBytes: 16 * 1024 * 1024 })
          : await connectionsJob({ connections, holdSeconds, fileBytes: 4 * 1024 * 1024 });
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
    `bench-fleet-${new Date().toISOString().replace(/[:.]/g, '-')}.json`,
  );
  await writeFile(
    outFile,
    `${JSON.stringify({ date: new Date().toISOString(), results }, null, 2)}\n`,
  );
  process.stdout.write(`\nJSON: ${outFile}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:fleet: error: ${(err as Error).message}\n`);
  process.exit(1);
});
