import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { completionSvg, summary, toJson } from './report.js';
import { DEFAULT_SCENARIO, MBIT, parseScenario } from './scenario.js';
import { simulate } from './sim.js';

export const USAGE = `usage: pnpm sim -- [options]

Simulates one swarm: the real engine of owner and peers over a modelled network.

  --scenario FILE       a JSON scenario (fields as in docs/simulation.md); flags override it
  --peers N             peers (default ${DEFAULT_SCENARIO.peers})
  --file-size SIZE      file size, e.g. 1GiB, 256MiB (default 100 pieces)
  --piece-size SIZE     piece size (default 100KiB)
  --rate RATE           every peer's upload and download, e.g. 100Mbit (default 100Mbit)
  --up RATE, --down RATE  peers' upload, download (asymmetric links)
  --owner-up RATE       the owner's upload (default: as --up)
  --latency-ms MS       one-way access latency of every host (default 5)
  --mixed               20% of peers at 1Gbit, 80% at 100Mbit
  --arrivals-over-s S   peers arrive evenly over S seconds (default 0: a flash crowd)
  --leave               peers leave as soon as they complete (default: they stay)
  --crash SHARE         share of peers killed at --crash-at-s (e.g. 0.1)
  --crash-at-s S        when they are killed
  --return SHARE        share of the killed that come back with what they had
  --return-after-s S    how long after their crash
  --stock SHARE         share of peers that look like stock clients (no initial seeding, 16 KiB requests)
  --max-peers N         connections per peer (default ${DEFAULT_SCENARIO.maxPeers})
  --owner-max-connections N  (default ${DEFAULT_SCENARIO.ownerMaxConnections})
  --seed N              the run's seed (default 1): same seed, same numbers
  --time-limit-s S      stop after S simulated seconds
  --svg FILE            writes completion over time as an SVG
  --json FILE           writes every number of the run (per peer too) as JSON
  -h, --help`;

const UNITS: Record<string, number> = {
  '': 1,
  k: 1e3,
  m: 1e6,
  g: 1e9,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};

export function parseSize(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new Error(`${flag}: not a size: ${JSON.stringify(text)}`);
  return Math.round(Number(m[1]) * unit);
}

/** Bytes per second from `100Mbit`, `1Gbit`, `12.5MB` (bytes), `500kbit`. */
export function parseRate(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kKmMgG])?(bit|b|B)?(?:\/s|ps)?$/.exec(text.trim());
  if (!m) throw new Error(`${flag}: not a rate (e.g. 100Mbit): ${JSON.stringify(text)}`);
  const scale =
    ({ k: 1e3, m: 1e6, g: 1e9 } as Record<string, number>)[m[2]?.toLowerCase() ?? ''] ?? 1;
  const bits = m[3] === 'bit' || m[3] === 'b';
  const value = Number(m[1]) * scale * (bits ? 1 / 8 : 1);
  if (!(value > 0)) throw new Error(`${flag}: must be above 0: ${JSON.stringify(text)}`);
  return value;
}

function seconds(text: string, flag: string): number {
  const v = Number(text);
  if (!Number.isFinite(v) || v < 0)
    throw new Error(`${flag}: not a number of seconds: ${JSON.stringify(text)}`);
  return v;
}

/** Builds the scenario from the command line (over --scenario's file, over the defaults). */
export function scenarioFromArgs(args: readonly string[]): {
  scenario: ReturnType<typeof parseScenario>;
  svg?: string;
  json?: string;
  help: boolean;
} {
  const { values } = parseArgs({
    args: [...args],
    strict: true,
    allowPositionals: false,
    options: {
      scenario: { type: 'string' },
      peers: { type: 'string' },
      'file-size': { type: 'string' },
      'piece-size': { type: 'string' },
      rate: { type: 'string' },
      up: { type: 'string' },
      down: { type: 'string' },
      'owner-up': { type: 'string' },
      'latency-ms': { type: 'string' },
      mixed: { type: 'boolean' },
      'arrivals-over-s': { type: 'string' },
      leave: { type: 'boolean' },
      crash: { type: 'string' },
      'crash-at-s': { type: 'string' },
      return: { type: 'string' },
      'return-after-s': { type: 'string' },
      stock: { type: 'string' },
      'max-peers': { type: 'string' },
      'owner-max-connections': { type: 'string' },
      seed: { type: 'string' },
      'time-limit-s': { type: 'string' },
      svg: { type: 'string' },
      json: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return { scenario: DEFAULT_SCENARIO, help: true };
  let base: Record<string, unknown> = {};
  if (values.scenario !== undefined) {
    try {
      base = JSON.parse(readFileSync(values.scenario, 'utf8'));
    } catch (err) {
      throw new Error(`--scenario: cannot read ${values.scenario}: ${(err as Error).message}`);
    }
  }
  const v: Record<string, unknown> = { ...base };
  const int = (text: string, flag: string) => {
    const n = Number(text);
    if (!Number.isInteger(n))
      throw new Error(`${flag}: not a whole number: ${JSON.stringify(text)}`);
    return n;
  };
  const share = (text: string, flag: string) => {
    const n = Number(text);
    if (!(n >= 0 && n <= 1))
      throw new Error(`${flag}: not a share within 0..1: ${JSON.stringify(text)}`);
    return n;
  };
  if (values.peers !== undefined) v.peers = int(values.peers, '--peers');
  if (values['piece-size'] !== undefined)
    v.pieceBytes = parseSize(values['piece-size'], '--piece-size');
  if (values['file-size'] !== undefined)
    v.fileBytes = parseSize(values['file-size'], '--file-size');
  else if (values['piece-size'] !== undefined && base.fileBytes === undefined)
    v.fileBytes = 100 * (v.pieceBytes as number);
  const latencyMs =
    values['latency-ms'] === undefined ? undefined : seconds(values['latency-ms'], '--latency-ms');
  const rate = values.rate === undefined ? undefined : parseRate(values.rate, '--rate');
  const up = values.up === undefined ? rate : parseRate(values.up, '--up');
  const down = values.down === undefined ? rate : parseRate(values.down, '--down');
  const baseClasses = (base.classes as Record<string, unknown>[] | undefined) ?? [
    { ...DEFAULT_SCENARIO.classes[0]! },
  ];
  if (values.mixed) {
    v.classes = [
      { share: 0.2, up: 1000 * MBIT, down: 1000 * MBIT, latencyMs: latencyMs ?? 5 },
      { share: 0.8, up: 100 * MBIT, down: 100 * MBIT, latencyMs: latencyMs ?? 5 },
    ];
  } else if (up !== undefined || down !== undefined || latencyMs !== undefined) {
    v.classes = baseClasses.map((c) => ({
      ...c,
      ...(up === undefined ? {} : { up }),
      ...(down === undefined ? {} : { down }),
      ...(latencyMs === undefined ? {} : { latencyMs }),
    }));
  }
  const ownerBase = (base.owner as Record<string, unknown> | undefined) ?? {
    ...DEFAULT_SCENARIO.owner,
  };
  const ownerUp =
    values['owner-up'] === undefined ? (up ?? rate) : parseRate(values['owner-up'], '--owner-up');
  if (ownerUp !== undefined || rate !== undefined || latencyMs !== undefined)
    v.owner = {
      ...ownerBase,
      ...(ownerUp === undefined ? {} : { up: ownerUp }),
      ...(rate === undefined ? {} : { down: rate }),
      ...(latencyMs === undefined ? {} : { latencyMs }),
    };
  if (values['arrivals-over-s'] !== undefined)
    v.arrivalsOverMs = 1000 * seconds(values['arrivals-over-s'], '--arrivals-over-s');
  if (values.leave) v.leaveWhenDone = true;
  const crash = { ...((base.crash as Record<string, unknown> | undefined) ?? {}) };
  if (values.crash !== undefined) crash.share = share(values.crash, '--crash');
  if (values['crash-at-s'] !== undefined)
    crash.atMs = 1000 * seconds(values['crash-at-s'], '--crash-at-s');
  if (values.return !== undefined) crash.returnShare = share(values.return, '--return');
  if (values['return-after-s'] !== undefined)
    crash.returnAfterMs = 1000 * seconds(values['return-after-s'], '--return-after-s');
  if (Object.keys(crash).length > 0) v.crash = crash;
  if (values.stock !== undefined) v.stockShare = share(values.stock, '--stock');
  if (values['max-peers'] !== undefined) v.maxPeers = int(values['max-peers'], '--max-peers');
  if (values['owner-max-connections'] !== undefined)
    v.ownerMaxConnections = int(values['owner-max-connections'], '--owner-max-connections');
  if (values.seed !== undefined) v.seed = int(values.seed, '--seed');
  if (values['time-limit-s'] !== undefined)
    v.timeLimitMs = 1000 * seconds(values['time-limit-s'], '--time-limit-s');
  return {
    scenario: parseScenario(v),
    ...(values.svg === undefined ? {} : { svg: values.svg }),
    ...(values.json === undefined ? {} : { json: values.json }),
    help: false,
  };
}

async function main(): Promise<void> {
  let parsed: ReturnType<typeof scenarioFromArgs>;
  try {
    parsed = scenarioFromArgs(process.argv.slice(2).filter((a) => a !== '--'));
  } catch (err) {
    process.stderr.write(`sim: ${(err as Error).message}\n`);
    process.exitCode = 2;
    return;
  }
  if (parsed.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const started = performance.now();
  const result = await simulate(parsed.scenario);
  const wall = (performance.now() - started) / 1000;
  process.stdout.write(`${summary(result)}\nwall      ${wall.toFixed(1)} s\n`);
  if (parsed.svg) writeFileSync(parsed.svg, completionSvg(result));
  if (parsed.json) writeFileSync(parsed.json, toJson(result));
  if (result.completed < result.survivors) process.exitCode = 1;
}

if (process.argv[1]?.endsWith('cli.ts')) await main();
