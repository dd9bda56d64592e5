/**
 * Benchmark job: the owner's memory under µTP's reorder attack. From
 * 127.0.0.2, 127.0.0.3, ... one connection each opens a µTP connection to a
 * real owner process (not blind: it reads the owner's STATE and echoes its
 * sequence number), sends a BitTorrent handshake, then DATA packets of
 * `payloadBytes` each, 2 to `packetsAhead` + 1 past the next one the owner
 * expects, so every one of them waits for a hole that is never filled. It
 * keeps at it (the same packets again, a round a second) until
 * `durationMs` has passed.
 *
 * Reports the owner's resident memory before and after and its peak, and the
 * bytes held out of order twice: by the owner's own accounting (its
 * `swarmdrop_utp_reorder_bytes` gauge) and as the attacker sees them (the
 * packets the owner's selective ACKs say it holds). Before the byte bounds,
 * 255 packets of 60 KB on 32 connections took the owner from 218 to 585 MB.
 *
 * `run(options)` is what `pnpm bench` calls; `tsx src/hostile/utp-reorder.ts`
 * runs it alone and prints the result as JSON.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import {
  encodeMessage,
  makePeerId,
  parseMetainfo,
  sackedSeqs,
  seqAdd,
  type UtpPacket,
} from '@swarmdrop/protocol';
import { parseTextLine } from '@swarmdrop/service';
import {
  Cleanup,
  freePorts,
  metricValue,
  RawUtpRemote,
  randomFile,
  scrapeMetrics,
} from '@swarmdrop/testkit';
import { binPath, ManagedProcess } from '../processes.js';

export const DEFAULT_REORDER_CONNECTIONS = 32;
export const DEFAULT_REORDER_PACKETS_AHEAD = 255;
export const DEFAULT_REORDER_PAYLOAD_BYTES = 60_000;
export const DEFAULT_REORDER_DURATION_MS = 20_000;
/** Packets sent on one connection before waiting for the owner to acknowledge one (or a short while). */
const BURST = 8;
const BURST_WAIT_MS = 50;
const READY_TIMEOUT_MS = 60_000;

export interface UtpReorderOptions {
  /** The owner to start, up to its arguments (default: this Node and the workspace's owner bin). */
  readonly ownerCommand?: readonly string[];
  /** Attacking connections, one per source address 127.0.0.2 upwards (default 32). */
  readonly connections?: number;
  /** Packets held out of order per connection, asked for (default 255). */
  readonly packetsAhead?: number;
  /** Payload of each (default 60,000 bytes; a datagram carries at most 65,507). */
  readonly payloadBytes?: number;
  /** How long the attack runs (default 20 s). */
  readonly durationMs?: number;
  /** Where the owner's file, folder and log go (default a fresh temporary folder, removed after). */
  readonly workDir?: string;
}

/** VmRSS and VmHWM of `pid`, bytes. */
async function memory(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
  return { rss: kb('VmRSS') * 1024, peak: kb('VmHWM') * 1024 };
}

const MiB = 1024 * 1024;
const mib = (bytes: number) => Math.round((bytes / MiB) * 10) / 10;

export async function run(
  options: UtpReorderOptions = {},
): Promise<Record<string, number | string>> {
  const connections = options.connections ?? DEFAULT_REORDER_CONNECTIONS;
  const packetsAhead = options.packetsAhead ?? DEFAULT_REORDER_PACKETS_AHEAD;
  const payloadBytes = options.payloadBytes ?? DEFAULT_REORDER_PAYLOAD_BYTES;
  const durationMs = options.durationMs ?? DEFAULT_REORDER_DURATION_MS;
  if (connections < 1 || connections > 250) throw new RangeError('connections: 1 to 250');
  const cleanup = new Cleanup();
  const work = options.workDir ?? (await cleanup.tempDir('swarmdrop-utp-reorder-'));
  let owner: ManagedProcess | undefined;
  try {
    const file = join(work, 'reorder.bin');
    await randomFile(file, 4 * MiB);
    const [port] = await freePorts(1);
    const [command, ...args] = options.ownerCommand ?? [process.execPath, binPath('owner')];
    owner = new ManagedProcess(
      'owner',
      command!,
      [...args, `127.0.0.1:${port}`, file, '--dir', join(work, 'owner')],
      { cwd: work, logPath: join(work, 'owner.log') },
    );
    await owner.waitFor((l) => parseTextLine(l)?.event === 'ready', 'ready', READY_TIMEOUT_MS);
    const pid = owner.pid!;
    const metainfo = parseMetainfo(await readFile(join(work, 'owner', 'reorder.bin.torrent')));
    const before = await memory(pid);

    const handshake = encodeMessage({
      type: 'handshake',
      reserved: new Uint8Array(8),
      infoHash: metainfo.infoHash,
      peerId: makePeerId(0xbad),
    });
    const payload = Buffer.alloc(payloadBytes, 0xa5);
    let packetsSent = 0;
    let opened = 0;
    const lastSack = new Map<number, UtpPacket>();
    const deadline = performance.now() + durationMs;
    const attack = async (index: number) => {
      const remote = await RawUtpRemote.open(cleanup, `127.0.0.${2 + index}`, { port: port! });
      const id = 1000 + 2 * index;
      const answered = remote.next((p) => p.type === 'state' && p.connectionId === id, 5_000);
      remote.send({ type: 'syn', connectionId: id, seq: 1 });
      const ack = seqAdd((await answered).seq, -1);
      const on = { connectionId: id + 1, ack };
      remote.send({ ...on, type: 'data', seq: 2, payload: handshake });
      opened++;
      // Seq 3 is the hole; 4 onwards wait for it.
      while (performance.now() < deadline) {
        for (let ahead = 0; ahead < packetsAhead && performance.now() < deadline; ahead++) {
          remote.send({ ...on, type: 'data', seq: seqAdd(4, ahead), payload });
          packetsSent++;
          if (ahead % BURST === BURST - 1) {
            const state = await remote
              .next((p) => p.type === 'state' && p.sack !== undefined, BURST_WAIT_MS)
              .catch(() => undefined);
            if (state) lastSack.set(index, state);
          }
        }
        // A round a second: the held packets stay held, the connection stays alive.
        await sleep(Math.max(0, Math.min(1_000, deadline - performance.now())));
      }
    };
    await Promise.all(Array.from({ length: connections }, (_, i) => attack(i)));
    const reorderBytes = metricValue(await scrapeMetrics(port!), 'swarmdrop_utp_reorder_bytes');
    const after = await memory(pid);
    let sacked = 0;
    for (const state of lastSack.values()) sacked += sackedSeqs(state.ack, state.sack!).length;
    return {
      job: 'utp-reorder',
      connections,
      connectionsOpened: opened,
      packetsAhead,
      payloadBytes,
      durationSeconds: durationMs / 1000,
      packetsSent,
      ownerRssBeforeMiB: mib(before.rss),
      ownerRssAfterMiB: mib(after.rss),
      ownerPeakRssMiB: mib(after.peak),
      reorderBytesHeld: reorderBytes,
      reorderBytesSacked: sacked * payloadBytes,
    };
  } finally {
    await owner?.stop();
    await cleanup.run();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  run()
    .then((result) => process.stdout.write(`${JSON.stringify(result, null, 2)}\n`))
    .catch((err: unknown) => {
      process.stderr.write(`utp-reorder: ${(err as Error).stack ?? err}\n`);
      process.exit(1);
    });
}
