import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  checkLogsAgree,
  checkMergedFiles,
  checkRequiredLogs,
  checkStorageLayout,
  type PeerSummary,
  summarize,
} from './checks.js';
import { Swarm, type SwarmOptions, sha256File } from './swarm.js';
import type { Topology } from './topology.js';

/** Where failed runs leave their logs and files: packages/e2e/artifacts/<name>. */
export const ARTIFACTS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'artifacts');

export const CHUNK_SIZE = 102_400;

/** Writes `size` random bytes to `path`, 1 MiB at a time. */
export async function makeRandomFile(path: string, size: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const out = createWriteStream(path);
  for (let left = size; left > 0; ) {
    const n = Math.min(left, 1024 * 1024);
    if (!out.write(randomBytes(n))) await once(out, 'drain');
    left -= n;
  }
  out.end();
  await once(out, 'close');
}

export interface ScenarioOptions {
  /** Names the artefact directory. */
  readonly name: string;
  readonly topology: Topology;
  /** How processes start and where they listen (default: workspace bins on 127.0.0.1). */
  readonly launcher?: SwarmOptions['launcher'];
  /** Use this file, or make a random one of `size` bytes. */
  readonly file?: string;
  readonly size?: number;
  readonly fallbackAfterMs?: number;
  readonly extraPeerArgs?: readonly string[];
  readonly extraOwnerArgs?: readonly string[];
  readonly env?: SwarmOptions['env'];
  /** Bounds the wait for every peer to complete. */
  readonly timeoutMs?: number;
  readonly onLine?: SwarmOptions['onLine'];
  readonly afterStart?: SwarmOptions['afterStart'];
  /** Runs once every peer has started, before waiting for completion (fault injection). */
  readonly during?: (swarm: Swarm) => Promise<void>;
  /** Keep the work directory even when every check passed. */
  readonly keep?: boolean;
  /** Where to run (default: a new directory under ARTIFACTS_DIR). */
  readonly workDir?: string;
}

export interface ScenarioResult {
  readonly swarm: Swarm;
  readonly sha256: string;
  readonly chunkCount: number;
  /** Everything a check found wrong; empty when the run is good. */
  readonly problems: string[];
  readonly summary: PeerSummary[];
  readonly workDir: string;
}

/**
 * Runs a topology end to end and checks it. Every process is stopped, by PID,
 * whatever happens; the work directory (logs included) is kept when anything
 * failed, and removed otherwise.
 */
export async function runScenario(
  options: ScenarioOptions,
  inspect?: (result: ScenarioResult) => Promise<void> | void,
): Promise<ScenarioResult> {
  const workDir = options.workDir ?? join(ARTIFACTS_DIR, `${options.name}-${Date.now()}`);
  await mkdir(workDir, { recursive: true });
  let file = options.file;
  if (!file) {
    file = join(workDir, 'source', 'sample.bin');
    await makeRandomFile(file, options.size ?? 5 * CHUNK_SIZE);
  }
  const sha256 = await sha256File(file);
  let swarm: Swarm | undefined;
  let ok = false;
  try {
    swarm = await Swarm.start({
      topology: options.topology,
      file,
      workDir,
      ...(options.launcher ? { launcher: options.launcher } : {}),
      ...(options.fallbackAfterMs !== undefined
        ? { fallbackAfterMs: options.fallbackAfterMs }
        : {}),
      ...(options.extraPeerArgs ? { extraPeerArgs: options.extraPeerArgs } : {}),
      ...(options.extraOwnerArgs ? { extraOwnerArgs: options.extraOwnerArgs } : {}),
      ...(options.env ? { env: options.env } : {}),
      ...(options.onLine ? { onLine: options.onLine } : {}),
      ...(options.afterStart ? { afterStart: options.afterStart } : {}),
    });
    await options.during?.(swarm);
    await swarm.waitAllComplete(sha256, options.timeoutMs ?? 120_000);
    const { size } = await stat(file);
    const chunkCount = Math.ceil(size / CHUNK_SIZE);
    const problems = [
      ...(await checkMergedFiles(swarm, sha256)),
      ...(await checkStorageLayout(swarm, chunkCount)),
    ];
    const result: ScenarioResult = {
      swarm,
      sha256,
      chunkCount,
      problems,
      summary: await summarize(swarm, sha256),
      workDir,
    };
    await inspect?.(result);
    // The logs are checked once complete: a process writes its log asynchronously, so a
    // survivor may still have its last lines queued; stopping it (SIGTERM) flushes them, and
    // stopAll returns once every log is read to the end.
    await swarm.stopAll();
    problems.push(...checkRequiredLogs(swarm), ...checkLogsAgree(swarm));
    ok = problems.length === 0;
    return result;
  } finally {
    await swarm?.stopAll();
    if (ok && !options.keep && process.env.SWARMDROP_KEEP_ARTIFACTS !== '1') {
      await rm(workDir, { recursive: true, force: true });
    }
  }
}
