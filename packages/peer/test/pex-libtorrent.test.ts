/**
 * Peer exchange with a stock client: libtorrent 2 (Debian's
 * python3-libtorrent, through /usr/bin/python3), its default PEX plugin on,
 * DHT, LSD, UPnP and NAT-PMP off, and the torrent's tracker taken out, so
 * that it learns peers from nobody but us. Given only a swarmdrop peer's
 * address, it learns the owner's from our PEX and connects to it; and its
 * own PEX reaches us.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CHUNK,
  Cleanup,
  freePorts,
  HANG_MS,
  IN_CI,
  merged,
  startOwner,
  startPeer,
  within,
} from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const PYTHON = '/usr/bin/python3';
// CI installs python3-libtorrent (.ci/run) and must run this; elsewhere it runs where it is installed.
const hasLibtorrent =
  IN_CI || spawnSync(PYTHON, ['-c', 'import libtorrent'], { stdio: 'ignore' }).status === 0;

/**
 * A libtorrent downloader on 127.0.0.1:PORT that dials only DIAL, from a
 * copy of the torrent without its tracker (the info dictionary, and so the
 * info-hash, unchanged). Prints `pex <addr> <libtorrent's log line>` for
 * each PEX message in or out, `dial <addr>` for each connection it opens,
 * and `done` once it holds the whole file.
 */
const SCRIPT = `
import sys, libtorrent as lt
torrent, save, port, dial = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
s = lt.session({'listen_interfaces': '127.0.0.1:%d' % port, 'enable_dht': False,
  'enable_lsd': False, 'enable_upnp': False, 'enable_natpmp': False,
  'allow_multiple_connections_per_ip': True, 'alert_queue_size': 1000000,
  'alert_mask': lt.alert.category_t.peer_log_notification | lt.alert.category_t.status_notification})
e = lt.bdecode(open(torrent, 'rb').read())
e.pop(b'announce', None); e.pop(b'announce-list', None)
p = lt.add_torrent_params(); p.ti = lt.torrent_info(e); p.save_path = save
h = s.add_torrent(p)
h.connect_peer(('127.0.0.1', dial))
done = False
while True:
  s.wait_for_alert(200)
  for a in s.pop_alerts():
    if isinstance(a, lt.peer_log_alert):
      m = a.message()
      addr = '%s:%d' % (a.ip[0], a.ip[1])
      if 'PEX' in m: print('pex', addr, m, flush=True)
      if 'OUTGOING_CONNECTION' in m: print('dial', addr, flush=True)
  if not done and h.status().is_seeding:
    done = True
    print('done', flush=True)
`;

interface Libtorrent {
  readonly child: ChildProcess;
  readonly lines: string[];
  waitFor(test: (line: string) => boolean, what: string): Promise<string>;
}

function startLibtorrent(args: readonly string[]): Libtorrent {
  const child = spawn(PYTHON, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let stderr = '';
  const waiters: Array<() => void> = [];
  let rest = '';
  child.stdout!.setEncoding('utf8').on('data', (text: string) => {
    const parts = (rest + text).split('\n');
    rest = parts.pop()!;
    lines.push(...parts);
    for (const w of waiters) w();
  });
  child.stderr!.setEncoding('utf8').on('data', (text: string) => {
    stderr += text;
  });
  const exited = once(child, 'exit');
  cleanup.add(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
  });
  const waitFor = (test: (line: string) => boolean, what: string) =>
    within(
      new Promise<string>((resolve) => {
        const check = () => {
          const hit = lines.find(test);
          if (hit !== undefined) resolve(hit);
        };
        waiters.push(check);
        check();
      }),
      HANG_MS * 2,
      () => `libtorrent: no ${what}\n${lines.slice(-20).join('\n')}\n${stderr.slice(-2000)}`,
    );
  return { child, lines, waitFor };
}

describe('peer exchange with libtorrent', () => {
  it.skipIf(!hasLibtorrent)(
    'libtorrent given only a swarmdrop peer learns the owner from our PEX, connects, completes; its PEX reaches us (needs python3-libtorrent)',
    async () => {
      // Both upload slowly, so that libtorrent downloads from both for a few seconds: long
      // enough to send us its PEX (it does once it holds two peers), not a timed verdict.
      const slow = { uploadLimitBytesPerSecond: 400_000 };
      const { owner, data } = await startOwner(cleanup, { size: 40 * CHUNK - 999, options: slow });
      const [peerPort, ltPort] = await freePorts(2);
      const p = await startPeer(cleanup, { ownerPort: owner.port, port: peerPort!, options: slow });
      await merged(p.log);
      const dir = await cleanup.tempDir('swarmdrop-lt-pex-');
      const script = join(dir, 'lt-pex.py');
      await writeFile(script, SCRIPT);
      const lt = startLibtorrent([
        script,
        owner.torrentPath,
        join(dir, 'save'),
        String(ltPort),
        String(peerPort),
      ]);
      // Our PEX tells it of the owner, which it then dials: it had no other way to know it.
      await lt.waitFor((l) => l.startsWith(`pex 127.0.0.1:${peerPort} `), 'PEX from our peer');
      await lt.waitFor((l) => l === `dial 127.0.0.1:${owner.port}`, 'dial to the owner');
      await lt.waitFor((l) => l === 'done', 'whole file');
      expect(
        (await readFile(join(dir, 'save', owner.metainfo.name))).equals(data),
        'libtorrent holds the file byte for byte',
      ).toBe(true);
      const sent = p.log.filter('pex-sent');
      expect(sent.length).toBeGreaterThan(0);
      expect(Number(sent[0]!.fields.added)).toBeGreaterThan(0);
      // Holding two peers (us and the owner), libtorrent sends us its own list.
      const heard = await p.log.waitFor('pex-received', {}, { timeoutMs: HANG_MS * 2 });
      expect(Number(heard.fields.added)).toBeGreaterThan(0);
      expect(p.log.filter('protocol-error')).toHaveLength(0);
      // libtorrent's list names us too: the dial that reaches ourselves is closed unlogged.
      expect(p.log.filter('connected', { peer: `127.0.0.1:${peerPort}` })).toHaveLength(0);
    },
    HANG_MS * 5,
  );
});
