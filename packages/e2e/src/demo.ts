import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fromCaller } from './paths.js';
import { CHUNK_SIZE, runScenario, type ScenarioResult } from './scenario.js';
import { loadTopology, ringTopology, type Topology } from './topology.js';

const USAGE = `Usage: pnpm demo [-- options]

Runs the seed's scenario on this machine: makes a sample file (or uses
--file), starts a file owner and five peers one at a time in a ring, shows
their activity, and ends with a table per peer. Exits 0 when every peer's
merged file is byte-identical to the original, 1 otherwise.

Options:
  --file PATH        distribute this file instead of a random sample
  --size SIZE        sample size: bytes, or with KiB/MiB/GiB (default 10MiB)
  --peers N          peers in the ring (default 5; ignored with --topology)
  --topology FILE    a topology JSON file (see packages/e2e/topologies)
  --fallback-after-ms MS   passed to each peer (default 10000)
  --work-dir DIR     where chunks, merged files and logs go
                     (default: a new directory under ${tmpdir()})
  --quiet            print only the summary, not every log line
  --dashboard        keep the swarm up after completion, so the dashboard
                     (its URL is printed at the start) can be watched, until Ctrl-C
  -h, --help         show this help
`;

function parseSize(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(b|kib|mib|gib|k|m|g)?$/i.exec(text.trim());
  if (!match) throw new Error(`--size: "${text}" is not a size like 20MiB or 1048576`);
  const unit = (match[2] ?? 'b').toLowerCase()[0]!;
  const scale = { b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[unit as 'b' | 'k' | 'm' | 'g'];
  const size = Math.round(Number(match[1]) * scale);
  if (size < 1) throw new Error('--size must be at least 1 byte');
  return size;
}

const COLORS = [36, 33, 35, 32, 34, 91, 92, 93, 94, 95, 96];

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: process.argv.slice(2).filter((a) => a !== '--'),
    options: {
      file: { type: 'string' },
      size: { type: 'string' },
      peers: { type: 'string' },
      topology: { type: 'string' },
      'fallback-after-ms': { type: 'string' },
      'work-dir': { type: 'string' },
      quiet: { type: 'boolean' },
      dashboard: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  let topology: Topology;
  if (values.topology) {
    const loaded = await loadTopology(fromCaller(values.topology));
    topology = loaded.topology;
    for (const warning of loaded.warnings) process.stdout.write(`warning: ${warning}\n`);
  } else {
    const count = Number(values.peers ?? 5);
    if (!Number.isInteger(count) || count < 2 || count > 50)
      throw new Error('--peers must be a whole number from 2 to 50');
    topology = ringTopology(count);
  }
  const size = values.file ? undefined : parseSize(values.size ?? '10MiB');
  const workDir = fromCaller(values['work-dir'] ?? join(tmpdir(), `swarmdrop-demo-${Date.now()}`));
  const color = process.stdout.isTTY;
  const names = ['owner', ...topology.peers.map((p) => p.id)];
  const width = Math.max(...names.map((n) => n.length));
  const prefix = (name: string) => {
    const label = `[${name.padEnd(width)}]`;
    return color ? `\x1b[${COLORS[names.indexOf(name) % COLORS.length]}m${label}\x1b[0m` : label;
  };
  process.stdout.write(
    `swarmdrop demo: ${topology.description || 'custom topology'}; ` +
      `${values.file ? values.file : `a random ${size} byte sample`}; work dir ${workDir}\n`,
  );
  const started = Date.now();
  let printedUrl = false;
  let code = 0;
  await runScenario(
    {
      name: 'demo',
      topology,
      workDir,
      keep: true,
      ...(values.file ? { file: fromCaller(values.file) } : { size: size! }),
      ...(values['fallback-after-ms']
        ? { fallbackAfterMs: Number(values['fallback-after-ms']) }
        : {}),
      ...(values.quiet
        ? {}
        : {
            onLine: (name: string, line: string) =>
              process.stdout.write(`${prefix(name)} ${line}\n`),
          }),
      afterStart: async (swarm) => {
        if (printedUrl) return;
        printedUrl = true;
        process.stdout.write(
          `\ndashboard: http://${swarm.address('owner')}/ (open it in a browser)\n\n`,
        );
      },
    },
    async (result) => {
      code = printSummary(result, started, workDir);
      if (!values.dashboard) return;
      // The harness stops every process once this returns: hold it until Ctrl-C.
      process.stdout.write(
        `\nthe swarm stays up for the dashboard at http://${result.swarm.address('owner')}/; Ctrl-C to stop\n`,
      );
      await new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
      process.stdout.write('stopping the swarm\n');
    },
  );
  return code;
}

/** The table per peer, and whether every merged file matched (0) or not (1). */
function printSummary(result: ScenarioResult, started: number, workDir: string): number {
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  const rows = [
    [
      'peer',
      'port',
      'from owner',
      'from neighbours',
      'fallback',
      'time to complete',
      'SHA-256 match',
    ],
    ...result.summary.map((p) => [
      p.id + (p.client === 'swarmdrop' ? '' : ` (${p.client})`),
      String(p.port),
      p.client === 'swarmdrop' ? String(p.fromOwner) : '-',
      p.client === 'swarmdrop' ? String(p.fromNeighbours) : '-',
      p.client === 'swarmdrop' ? String(p.fromFallback) : '-',
      p.completeMs === undefined ? '-' : `${(p.completeMs / 1000).toFixed(2)} s`,
      p.sha256Match ? 'yes' : 'NO',
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  process.stdout.write(
    `\n${result.chunkCount} chunks of ${CHUNK_SIZE} bytes, SHA-256 ${result.sha256}; all done in ${seconds} s\n\n`,
  );
  for (const [i, row] of rows.entries()) {
    process.stdout.write(`  ${row.map((cell, j) => cell.padEnd(widths[j]!)).join('  ')}\n`);
    if (i === 0) process.stdout.write(`  ${widths.map((w) => '-'.repeat(w)).join('  ')}\n`);
  }
  const batches = result.swarm.events('owner').filter((e) => e.event === 'batch-assigned');
  if (batches.length > 0) {
    process.stdout.write(
      `\nowner batches: ${batches.map((e) => `${e.fields.peer} got ${e.fields.chunks}`).join('; ')}\n`,
    );
  }
  process.stdout.write(`\nchunk files, summaries, merged files and logs: ${workDir}\n`);
  if (result.problems.length > 0 || result.summary.some((p) => !p.sha256Match)) {
    process.stdout.write(`\nFAILED:\n${result.problems.map((p) => `  - ${p}`).join('\n')}\n`);
    return 1;
  }
  process.stdout.write('\nevery peer holds a byte-identical copy\n');
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`demo: error: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
