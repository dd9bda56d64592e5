/**
 * A real peer process whose stdout nobody reads for ten seconds (a pipe
 * into a reader that stopped: `| grep` behind, an ssh session, a container
 * runtime's log driver under load). The log must never hold up the data
 * path: the transfer completes while the pipe is unread, and once it is
 * read again the peer says how many lines it dropped.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { parseTextLine } from '@swarmdrop/service';
import { Cleanup, freePorts, HANG_MS, KiB, MiB, PEER_BIN, startOwner } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** How long the peer's stdout goes unread: the scenario, not a wait for anything. */
const UNREAD_MS = 10_000;

describe('a peer whose stdout is not read', () => {
  it('completes its transfer while nobody reads its stdout, and prints log-dropped once it is read again', async () => {
    // Small chunks, so the peer logs a few thousand lines: more than the 64 KiB queue
    // and the kernel's socket buffer hold, so lines must be dropped.
    const {
      port: ownerPort,
      log: ownerLog,
      data,
    } = await startOwner(cleanup, {
      size: 24 * MiB,
      options: { chunkSize: 16 * KiB, expectedPeers: 1 },
    });
    const [port] = await freePorts(1);
    const dir = await cleanup.tempDir('swarmdrop-stalled-stdout-');
    const unread = delay(UNREAD_MS);
    const child = spawn(
      process.execPath,
      [PEER_BIN, String(ownerPort), String(port), '--dir', dir],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, SWARMDROP_DEBUG: '', SWARMDROP_LOG_BUFFER_BYTES: String(64 * KiB) },
      },
    );
    const exited = new Promise<number | string>((resolve) =>
      child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)),
    );
    cleanup.add(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (t: string) => {
      stderr += t;
    });

    // The owner hears the peer's `completed` announce: it merged, its stdout still unread.
    await ownerLog.waitFor('announce', { event: 'completed' }, { timeoutMs: HANG_MS * 2 });
    const merged = await readFile(join(dir, 'payload.bin'));
    expect(createHash('sha256').update(merged).digest('hex')).toBe(
      createHash('sha256').update(data).digest('hex'),
    );

    // Ten seconds on, the pipe is read again, as a terminal reads.
    await unread;
    const lines: string[] = [];
    let partial = '';
    const dropped = new Promise<string>((resolve) => {
      child.stdout.setEncoding('utf8').on('data', (t: string) => {
        const parts = (partial + t).split('\n');
        partial = parts.pop() ?? '';
        lines.push(...parts);
        const found = parts.find((l) => parseTextLine(l)?.event === 'log-dropped');
        if (found) resolve(found);
      });
    });
    const line = await Promise.race([
      dropped,
      exited.then((code) => {
        throw new Error(`the peer exited (${code}) before log-dropped: ${stderr}`);
      }),
    ]);
    expect(Number(parseTextLine(line)!.fields.count)).toBeGreaterThan(0);
    // What was kept is whole lines, from the first on.
    expect(parseTextLine(lines[0]!)?.event).toBe('listening');
    for (const l of lines) expect(parseTextLine(l), l).toBeDefined();

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 120_000);
});
