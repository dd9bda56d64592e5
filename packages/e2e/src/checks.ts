import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseTextLine } from '@swarmdrop/service';
import type { ManagedProcess } from './processes.js';
import { type Swarm, sha256File } from './swarm.js';

/** The six activities of the seed's step 8, as log events. */
export const REQUIRED_EVENTS = [
  'chunk-received',
  'chunk-sent',
  'idlist-received',
  'idlist-sent',
  'request-sent',
  'request-received',
] as const;

function swarmdropPeers(swarm: Swarm) {
  return swarm.activePeers().filter((p) => p.client === 'swarmdrop');
}

/** Every peer's merged file has the original's SHA-256. */
export async function checkMergedFiles(swarm: Swarm, expectedSha256: string): Promise<string[]> {
  const problems: string[] = [];
  for (const run of swarm.activePeers()) {
    const path = swarm.mergedPath(run.id);
    const actual = await sha256File(path).catch((err: Error) => `unreadable (${err.message})`);
    if (actual !== expectedSha256)
      problems.push(`${run.id}: ${path} has SHA-256 ${actual}, expected ${expectedSha256}`);
  }
  return problems;
}

/**
 * Each swarmdrop peer logged receiving chunks, receiving a chunk ID list,
 * sending one and requesting chunks; a peer that another swarmdrop peer
 * received chunks from also logged receiving requests and sending chunks.
 * Whether anyone gets chunks from a peer depends on the schedule (a neighbour
 * may have finished through the owner before it came up), so that part is
 * judged from the receivers' own logs, never from the topology alone. (A
 * request alone proves nothing: in swarm mode it may cross a choke or be
 * cancelled in endgame, and go unserved.)
 */
export function checkRequiredLogs(swarm: Swarm): string[] {
  const problems: string[] = [];
  const peers = swarmdropPeers(swarm);
  const requestedFrom = new Set<number>();
  for (const run of peers)
    for (const e of swarm.events(run.id))
      if (e.event === 'chunk-received') requestedFrom.add(portOf(e.fields.from));
  for (const run of peers) {
    const seen = new Set(swarm.events(run.id).map((e) => e.event));
    for (const event of REQUIRED_EVENTS) {
      const needed =
        event === 'chunk-sent' || event === 'request-received' ? requestedFrom.has(run.port) : true;
      if (needed && !seen.has(event)) problems.push(`${run.id}: no "${event}" line`);
    }
  }
  return problems;
}

/**
 * The logs agree: a chunk a swarmdrop peer logged as received from X was
 * logged by X (the owner or a swarmdrop peer) as sent to it.
 *
 * One excuse, for a process the harness SIGKILLed (Swarm.kill) only: a
 * SIGKILL loses the lines it had logged but not yet written. Its log is
 * written in order, so every line logged before its last written one is
 * there; a missing `chunk-sent` is excused only if X could have logged it
 * after that line, by the lines' own stamps: the receipt is stamped at or
 * after X's last line, or (a chunk X reports sent when the receiver
 * announces it) the receiver's `have-sent` of it to X is; and before X's
 * next run, if it was restarted, began. Nothing of a process that was not
 * killed is excused. Run it on logs read to the end (every process
 * stopped): a survivor may still be writing its last lines.
 */
export function checkLogsAgree(swarm: Swarm): string[] {
  const problems: string[] = [];
  const byPort = new Map<number, string>([[swarm.ownerPort, 'owner']]);
  for (const run of swarm.peers.values())
    if (run.client === 'swarmdrop') byPort.set(run.port, run.id);
  const sent = new Map<string, Set<string>>();
  for (const name of byPort.values()) {
    const set = new Set<string>();
    for (const e of swarm.events(name)) {
      if (e.event === 'chunk-sent') set.add(`${e.fields.chunk}>${portOf(e.fields.to)}`);
    }
    sent.set(name, set);
  }
  for (const run of swarmdropPeers(swarm)) {
    const lines = stampedEvents(runsOf(swarm, run.id));
    for (const e of lines) {
      if (e.event !== 'chunk-received') continue;
      const sender = byPort.get(portOf(e.fields.from));
      if (sender === undefined) continue; // a stock client: its log is not ours to read
      if (sent.get(sender)!.has(`${e.fields.chunk}>${run.port}`)) continue;
      const senderPort = portOf(e.fields.from);
      const haveAt = lines.find(
        (h) =>
          h.event === 'have-sent' &&
          h.fields.chunk === e.fields.chunk &&
          portOf(h.fields.to) === senderPort &&
          h.at >= e.at,
      )?.at;
      const lostInKill = killWindows(swarm, sender).some(
        (w) =>
          (e.at >= w.from - STAMP_SLACK_MS ||
            (haveAt !== undefined && haveAt >= w.from - STAMP_SLACK_MS)) &&
          e.at < w.until,
      );
      if (lostInKill) continue;
      problems.push(
        `${run.id} received chunk ${e.fields.chunk} from ${sender}, but ${sender} logged no chunk-sent of it to ${run.id}`,
      );
    }
  }
  return problems;
}

/** Every run of process `name`, oldest first (a restart retires the one before). */
function runsOf(swarm: Swarm, name: string): ManagedProcess[] {
  return [...swarm.retired.filter((p) => p.name === name), swarm.processes.get(name)].filter(
    (p): p is ManagedProcess => p !== undefined,
  );
}

type StampedEvent = NonNullable<ReturnType<typeof parseTextLine>> & {
  /** Epoch ms of the line's own stamp. */
  readonly at: number;
};

/** The log events of `runs`, each with the epoch ms of its own `HH:MM:SS.mmm` (UTC) stamp. */
function stampedEvents(runs: readonly ManagedProcess[]): StampedEvent[] {
  return runs.flatMap((p) =>
    p.lines.flatMap((line, i) => {
      const e = parseTextLine(line);
      const at = lineStamp(line, p.lineTimes[i]!);
      return e && at !== undefined ? [{ ...e, at }] : [];
    }),
  );
}

const DAY_MS = 86_400_000;

/**
 * How far two processes' stamps of one moment may differ: a peer stamps
 * with the wall clock, the owner with its monotonic clock anchored to the
 * wall clock at start, and both truncate to the millisecond.
 */
const STAMP_SLACK_MS = 5;

/**
 * A line's stamp as epoch ms: its time of day, on the day (of the three
 * around `arrivedAt`, when the harness read it) that puts it nearest, so a
 * run over midnight UTC reads right.
 */
export function lineStamp(line: string, arrivedAt: number): number | undefined {
  const m = /^(\d\d):(\d\d):(\d\d)\.(\d{3}) /.exec(line);
  if (!m) return undefined;
  const ofDay = ((Number(m[1]) * 60 + Number(m[2])) * 60 + Number(m[3])) * 1000 + Number(m[4]);
  const day = arrivedAt - (arrivedAt % DAY_MS);
  return [day - DAY_MS, day, day + DAY_MS]
    .map((d) => d + ofDay)
    .reduce((a, b) => (Math.abs(b - arrivedAt) < Math.abs(a - arrivedAt) ? b : a));
}

/**
 * For each SIGKILLed run of `name`: from its last written line's stamp (the
 * lines it may have lost were logged at or after it) until the first line of
 * its next run (Infinity if none).
 */
function killWindows(swarm: Swarm, name: string): Array<{ from: number; until: number }> {
  const runs = runsOf(swarm, name);
  return runs.flatMap((run, i) => {
    if (!swarm.killed.has(run)) return [];
    const own = stampedEvents([run]);
    const next = runs[i + 1] ? stampedEvents([runs[i + 1]!])[0]?.at : undefined;
    return [{ from: own.at(-1)?.at ?? 0, until: next ?? Number.POSITIVE_INFINITY }];
  });
}

function portOf(address: string | undefined): number {
  return Number((address ?? '').slice((address ?? '').lastIndexOf(':') + 1));
}

/** Chunk files, summary and .torrent are where docs/storage.md says, for the owner and every swarmdrop peer. */
export async function checkStorageLayout(swarm: Swarm, chunkCount: number): Promise<string[]> {
  const problems: string[] = [];
  const dirs = [
    { name: 'owner', dir: join(swarm.options.workDir, 'owner') },
    ...swarmdropPeers(swarm).map((p) => ({ name: p.id, dir: p.dir })),
  ];
  const all = Array.from({ length: chunkCount }, (_, i) => i);
  for (const { name, dir } of dirs) {
    const files = new Set(await readdir(join(dir, 'chunks')).catch(() => [] as string[]));
    const missing = all.filter((i) => !files.has(`${i}.chunk`));
    if (missing.length > 0)
      problems.push(
        `${name}: ${missing.length} chunk files missing in ${dir}/chunks (first ${missing[0]})`,
      );
    const summary = await readFile(join(dir, 'summary.txt'), 'utf8').catch(() => undefined);
    if (summary === undefined) {
      problems.push(`${name}: no ${dir}/summary.txt`);
    } else {
      const ids = new Set(summary.split('\n').filter(Boolean).map(Number));
      if (ids.size !== chunkCount || all.some((i) => !ids.has(i))) {
        problems.push(`${name}: summary.txt lists ${ids.size} IDs, expected all ${chunkCount}`);
      }
    }
    if (!(await stat(join(dir, `${swarm.name}.torrent`)).catch(() => undefined))) {
      problems.push(`${name}: no ${swarm.name}.torrent in ${dir}`);
    }
  }
  return problems;
}

export interface PeerSummary {
  readonly id: string;
  readonly port: number;
  readonly client: string;
  readonly fromOwner: number;
  readonly fromNeighbours: number;
  readonly fromFallback: number;
  /** Swarm mode: chunks from other peers of the swarm. */
  readonly fromSwarm: number;
  /** Milliseconds from the peer's start to its merge. */
  readonly completeMs: number | undefined;
  readonly sha256Match: boolean;
}

/** Per peer: chunks by source, time to complete, and whether the merged file matches. */
export async function summarize(swarm: Swarm, expectedSha256: string): Promise<PeerSummary[]> {
  const out: PeerSummary[] = [];
  for (const run of swarm.activePeers()) {
    const events = swarm.events(run.id);
    const count = (via: string) =>
      events.filter((e) => e.event === 'chunk-received' && e.fields.via === via).length;
    const proc = swarm.processes.get(run.id);
    const mergedAt = proc?.lines.findIndex((l) => l.includes(' merged '));
    const sha = await sha256File(swarm.mergedPath(run.id)).catch(() => '');
    out.push({
      id: run.id,
      port: run.port,
      client: run.client,
      fromOwner: count('owner'),
      fromNeighbours: count('neighbour'),
      fromFallback: count('fallback'),
      fromSwarm: count('swarm'),
      completeMs:
        proc && mergedAt !== undefined && mergedAt >= 0
          ? proc.completedAt - proc.startedAt
          : undefined,
      sha256Match: sha === expectedSha256,
    });
  }
  return out;
}
