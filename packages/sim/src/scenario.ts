/**
 * A simulated scenario: who takes part, their links, when they come and go.
 * Every field is checked where it enters (a flag or a JSON file), with a
 * one-line error naming the field.
 */

/** One class of peers' links: a share of the peers, their capacities (bytes/s) and latency. */
export interface LinkClass {
  readonly share: number;
  readonly up: number;
  readonly down: number;
  readonly latencyMs: number;
}

export interface Scenario {
  readonly name: string;
  readonly peers: number;
  readonly fileBytes: number;
  readonly pieceBytes: number;
  readonly owner: { readonly up: number; readonly down: number; readonly latencyMs: number };
  readonly classes: readonly LinkClass[];
  /** 0: a flash crowd (everyone at t = 0); else arrivals spread evenly over this many ms. */
  readonly arrivalsOverMs: number;
  /** Peers leave as soon as they complete (else they stay and seed). */
  readonly leaveWhenDone: boolean;
  /** A share of the peers is killed at `atMs`; `returnShare` of those come back `returnAfterMs` later with what they had. */
  readonly crash: {
    readonly share: number;
    readonly atMs: number;
    readonly returnShare: number;
    readonly returnAfterMs: number;
  };
  /** Share of peers that look like stock clients to the owner (full bitfield, 16 KiB requests, no initial seeding). */
  readonly stockShare: number;
  /** Connections per peer (the peer's --max-peers). */
  readonly maxPeers: number;
  /** Connections the owner holds at once. */
  readonly ownerMaxConnections: number;
  readonly seed: number;
  /** Simulated time after which the run stops, complete or not. */
  readonly timeLimitMs: number;
}

export const MBIT = 1_000_000 / 8;

export const DEFAULT_SCENARIO: Scenario = {
  name: 'flash crowd',
  peers: 200,
  fileBytes: 100 * 102_400,
  pieceBytes: 102_400,
  owner: { up: 100 * MBIT, down: 100 * MBIT, latencyMs: 5 },
  classes: [{ share: 1, up: 100 * MBIT, down: 100 * MBIT, latencyMs: 5 }],
  arrivalsOverMs: 0,
  leaveWhenDone: false,
  crash: { share: 0, atMs: 0, returnShare: 0, returnAfterMs: 0 },
  stockShare: 0,
  maxPeers: 30,
  ownerMaxConnections: 256,
  seed: 1,
  timeLimitMs: 24 * 3600_000,
};

function fail(field: string, why: string): never {
  throw new Error(`scenario: ${field} ${why}`);
}

function number(value: unknown, field: string, min: number, max: number, integer = false): number {
  if (typeof value !== 'number' || !Number.isFinite(value))
    fail(field, `must be a number, got ${JSON.stringify(value)}`);
  if (value < min || value > max) fail(field, `must be within ${min}..${max}, got ${value}`);
  if (integer && !Number.isInteger(value)) fail(field, `must be a whole number, got ${value}`);
  return value;
}

function linkOf(value: unknown, field: string): { up: number; down: number; latencyMs: number } {
  if (typeof value !== 'object' || value === null) fail(field, 'must be an object');
  const v = value as Record<string, unknown>;
  for (const key of Object.keys(v))
    if (!['up', 'down', 'latencyMs', 'share'].includes(key)) fail(`${field}.${key}`, 'is unknown');
  return {
    up: number(v.up, `${field}.up`, 1, 1e12),
    down: number(v.down, `${field}.down`, 1, 1e12),
    latencyMs: number(v.latencyMs ?? 5, `${field}.latencyMs`, 0, 10_000),
  };
}

/** Checks a scenario given as JSON (or built from flags) over the defaults. */
export function parseScenario(input: unknown): Scenario {
  if (typeof input !== 'object' || input === null || Array.isArray(input))
    fail('', 'must be a JSON object');
  const v = input as Record<string, unknown>;
  const known = Object.keys(DEFAULT_SCENARIO);
  for (const key of Object.keys(v)) if (!known.includes(key)) fail(key, 'is unknown');
  const d = DEFAULT_SCENARIO;
  const classes =
    v.classes === undefined
      ? d.classes
      : Array.isArray(v.classes) && v.classes.length > 0
        ? v.classes.map((c, i) => ({
            ...linkOf(c, `classes[${i}]`),
            share: number((c as Record<string, unknown>).share, `classes[${i}].share`, 0, 1),
          }))
        : fail('classes', 'must be a non-empty array');
  const total = classes.reduce((s, c) => s + c.share, 0);
  if (Math.abs(total - 1) > 1e-9) fail('classes', `shares must add up to 1, got ${total}`);
  const crashIn = (v.crash ?? d.crash) as Record<string, unknown>;
  if (typeof crashIn !== 'object' || crashIn === null) fail('crash', 'must be an object');
  const fileBytes = number(v.fileBytes ?? d.fileBytes, 'fileBytes', 1, 2 ** 40, true);
  const pieceBytes = number(v.pieceBytes ?? d.pieceBytes, 'pieceBytes', 16_384, 2 ** 26, true);
  if (fileBytes / pieceBytes > 2_000_000) fail('pieceBytes', 'gives more than 2,000,000 pieces');
  const name = v.name ?? d.name;
  if (typeof name !== 'string') fail('name', 'must be a string');
  return {
    name,
    peers: number(v.peers ?? d.peers, 'peers', 1, 100_000, true),
    fileBytes,
    pieceBytes,
    owner: v.owner === undefined ? d.owner : linkOf(v.owner, 'owner'),
    classes,
    arrivalsOverMs: number(v.arrivalsOverMs ?? d.arrivalsOverMs, 'arrivalsOverMs', 0, 1e9),
    leaveWhenDone: boolOf(v.leaveWhenDone ?? d.leaveWhenDone, 'leaveWhenDone'),
    crash: {
      share: number(crashIn.share ?? 0, 'crash.share', 0, 1),
      atMs: number(crashIn.atMs ?? 0, 'crash.atMs', 0, 1e9),
      returnShare: number(crashIn.returnShare ?? 0, 'crash.returnShare', 0, 1),
      returnAfterMs: number(crashIn.returnAfterMs ?? 0, 'crash.returnAfterMs', 0, 1e9),
    },
    stockShare: number(v.stockShare ?? d.stockShare, 'stockShare', 0, 1),
    maxPeers: number(v.maxPeers ?? d.maxPeers, 'maxPeers', 1, 10_000, true),
    ownerMaxConnections: number(
      v.ownerMaxConnections ?? d.ownerMaxConnections,
      'ownerMaxConnections',
      1,
      1_000_000,
      true,
    ),
    seed: number(v.seed ?? d.seed, 'seed', 0, 2 ** 32 - 1, true),
    timeLimitMs: number(v.timeLimitMs ?? d.timeLimitMs, 'timeLimitMs', 1, 1e10),
  };
}

function boolOf(value: unknown, field: string): boolean {
  if (typeof value !== 'boolean')
    fail(field, `must be true or false, got ${JSON.stringify(value)}`);
  return value;
}

/**
 * Kumar & Ross's lower bound for a flash crowd, in seconds: the owner must
 * send the file once, the slowest downloader must receive it, and the whole
 * swarm's upload must carry N copies:
 * max(F/u_s, F/d_min, N·F/(u_s + Σu_i)).
 */
export function minimumTime(
  fileBytes: number,
  ownerUp: number,
  peers: readonly { readonly up: number; readonly down: number }[],
): number {
  const F = fileBytes;
  const sumUp = peers.reduce((sum, p) => sum + p.up, 0);
  const dMin = Math.min(...peers.map((p) => p.down));
  return Math.max(F / ownerUp, F / dMin, (peers.length * F) / (ownerUp + sumUp));
}

/**
 * The link class of peer `i`: each class takes its share of the peers,
 * interleaved (a golden-ratio stride) so that arrivals over time mix them.
 */
export function classOf(s: Scenario, i: number): LinkClass {
  const at = (i * 0.618_033_988_75) % 1;
  let cumulative = 0;
  for (const c of s.classes) {
    cumulative += c.share;
    if (at < cumulative) return c;
  }
  return s.classes[s.classes.length - 1]!;
}
