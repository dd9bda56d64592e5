/**
 * The cross-log check on made-up logs: what a SIGKILL may excuse (lines the
 * killed sender logged after its last written line) and what it may not
 * (anything before that line, anything of a process that was not killed).
 */
import { describe, expect, it } from 'vitest';
import { checkLogsAgree, lineStamp } from '../src/checks.js';
import type { ManagedProcess } from '../src/processes.js';
import type { PeerRun, Swarm } from '../src/swarm.js';

const OWNER = 7000;
const P1 = 7001;
const P2 = 7002;
/** 12:00:00.000 UTC on some day: stamps below are offsets from it in ms. */
const NOON = Date.UTC(2026, 11, 7, 12, 0, 0);

function stamp(ms: number): string {
  return new Date(NOON + ms).toISOString().slice(11, 23);
}

/** A process that printed `lines`: [ms after noon, text after the stamp and `peer:port`]. */
function proc(name: string, port: number, lines: Array<[number, string]>): ManagedProcess {
  const role = name === 'owner' ? 'owner' : 'peer';
  return {
    name,
    lines: lines.map(([ms, rest]) => `${stamp(ms)} ${role}:${port} ${rest}`),
    lineTimes: lines.map(([ms]) => NOON + ms + 3),
  } as unknown as ManagedProcess;
}

/**
 * p1 received chunk 5 from p2 at `receivedAt`; p2's log (last line at 1000)
 * has no chunk-sent of it. `p2` says how p2 ended.
 */
function swarmWith(options: {
  receivedAt: number;
  p2: 'killed' | 'stopped';
  haveSentAt?: number;
  restartAt?: number;
}): Swarm {
  const p1 = proc('p1', P1, [
    [0, `listening addr=127.0.0.1:${P1}`],
    [options.receivedAt, `chunk-received chunk=5 from=127.0.0.1:${P2} bytes=100 via=neighbour`],
    ...(options.haveSentAt !== undefined
      ? ([[options.haveSentAt, `have-sent chunk=5 to=127.0.0.1:${P2}`]] as Array<[number, string]>)
      : []),
    [9000, 'merged path=/x'],
  ]);
  const p2 = proc('p2', P2, [
    [0, `listening addr=127.0.0.1:${P2}`],
    [400, `chunk-sent chunk=4 to=127.0.0.1:${P1} bytes=100`],
    [1000, `request-received chunk=5 from=127.0.0.1:${P1}`],
  ]);
  const restarted =
    options.restartAt !== undefined
      ? proc('p2', P2, [[options.restartAt, `listening addr=127.0.0.1:${P2}`]])
      : undefined;
  const owner = proc('owner', OWNER, [[0, 'ready torrent=x']]);
  const peers = new Map<string, PeerRun>([
    ['p1', { id: 'p1', port: P1, client: 'swarmdrop', dir: '/p1' }],
    ['p2', { id: 'p2', port: P2, client: 'swarmdrop', dir: '/p2' }],
  ]);
  const processes = new Map<string, ManagedProcess>([
    ['owner', owner],
    ['p1', p1],
    ['p2', restarted ?? p2],
  ]);
  const retired = restarted ? [p2] : [];
  const swarm = {
    ownerPort: OWNER,
    peers,
    processes,
    retired,
    killed: new Set(options.p2 === 'killed' ? [p2] : []),
    activePeers: () => [...peers.values()],
    events: (name: string) =>
      [...retired.filter((p) => p.name === name), processes.get(name)!].flatMap((p) =>
        p.lines.map((l) => {
          const [, who, event, ...fields] = l.split(' ');
          return {
            role: who!.split(':')[0]!,
            port: Number(who!.split(':')[1]),
            event: event!,
            fields: Object.fromEntries(fields.map((f) => f.split('=') as [string, string])),
          };
        }),
      ),
  };
  return swarm as unknown as Swarm;
}

const PROBLEM = [`p1 received chunk 5 from p2, but p2 logged no chunk-sent of it to p1`];

describe('checkLogsAgree', () => {
  it('excuses a receipt from a SIGKILLed sender stamped at or after its last written line', () => {
    expect(checkLogsAgree(swarmWith({ receivedAt: 1000, p2: 'killed' }))).toEqual([]);
    expect(checkLogsAgree(swarmWith({ receivedAt: 1500, p2: 'killed' }))).toEqual([]);
  });

  it('does not excuse one stamped before the killed sender went on to write more', () => {
    expect(checkLogsAgree(swarmWith({ receivedAt: 900, p2: 'killed' }))).toEqual(PROBLEM);
  });

  it('excuses one the sender reports on the have, when the have was sent after its last line', () => {
    expect(checkLogsAgree(swarmWith({ receivedAt: 900, haveSentAt: 1200, p2: 'killed' }))).toEqual(
      [],
    );
    expect(checkLogsAgree(swarmWith({ receivedAt: 800, haveSentAt: 900, p2: 'killed' }))).toEqual(
      PROBLEM,
    );
  });

  it('excuses nothing of a sender that was not killed (stopped, its log flushed)', () => {
    expect(checkLogsAgree(swarmWith({ receivedAt: 1500, p2: 'stopped' }))).toEqual(PROBLEM);
  });

  it("does not excuse a receipt from the sender's next run, after a restart", () => {
    expect(checkLogsAgree(swarmWith({ receivedAt: 1500, p2: 'killed', restartAt: 2000 }))).toEqual(
      [],
    );
    expect(checkLogsAgree(swarmWith({ receivedAt: 2500, p2: 'killed', restartAt: 2000 }))).toEqual(
      PROBLEM,
    );
  });
});

describe('lineStamp', () => {
  it('reads a line’s own UTC stamp on the day nearest to when it arrived, midnight included', () => {
    const midnight = Date.UTC(2026, 11, 8);
    expect(lineStamp('23:59:59.990 peer:1 x', midnight + 20)).toBe(midnight - 10);
    expect(lineStamp('00:00:00.010 peer:1 x', midnight - 20)).toBe(midnight + 10);
    expect(lineStamp('12:00:00.000 peer:1 x', NOON + 5)).toBe(NOON);
    expect(lineStamp('no stamp', NOON)).toBeUndefined();
  });
});
