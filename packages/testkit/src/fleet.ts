/**
 * A fleet against one owner, from one process: many distinct peers
 * announcing at a fixed rate, and many BitTorrent connections downloading at
 * once. Used by the owner's small load test and by `pnpm bench:fleet`.
 *
 * Peers differ by source address, not only by port: the owner's tracker and
 * connection caps count per address, as they would for a real fleet of
 * machines, so each peer speaks from its own loopback address (127.x.y.z,
 * all of 127.0.0.0/8 is loopback on Linux).
 */
import { Agent, request } from 'node:http';
import { type Metainfo, sourceKey } from '@swarmdrop/protocol';
import { HANG_MS } from './env.js';
import { announcePath } from './http.js';
import { stockPeerId, TestPeer } from './test-peer.js';

/** The loopback address of fleet member `n`: 127.<base>.x.y, never 127.0.0.1 (the real peers' own). */
export function fleetAddress(n: number, base = 10): string {
  if (!Number.isInteger(n) || n < 0 || n >= 65_536) throw new RangeError(`fleet member ${n}`);
  return `127.${base}.${n >> 8}.${n & 255}`;
}

export interface AnnounceLoadOptions {
  readonly port: number;
  readonly infoHash: Uint8Array;
  /** Distinct peers; announce k comes from peer k % peers, peers n·peers/addresses on sharing address n. */
  readonly peers: number;
  /** Source addresses they share (default: one each, up to 65,536). */
  readonly addresses?: number;
  /** Announces per second, started on schedule whatever the answers take (open loop). */
  readonly perSecond: number;
  /** Announces in all. */
  readonly count: number;
  /** `numwant` asked for (default 50, the tracker's default). */
  readonly numwant?: number;
  /** Second octet of the source addresses (default 10: 127.10.x.y). */
  readonly addressBase?: number;
  /**
   * Announces in flight at most (default 48, under the owner's 64 HTTP
   * connections): past it, due announces wait here and their wait counts in
   * their latency, instead of the owner refusing connections over its
   * budget and this process running out of file descriptors.
   */
  readonly maxInFlight?: number;
  /** Stops early. */
  readonly signal?: AbortSignal;
}

export interface AnnounceLoadResult {
  readonly sent: number;
  /** Answered 200 with a bencoded body that is no failure. */
  readonly answered: number;
  readonly failed: number;
  /** The first failure's reason, if any. */
  readonly firstFailure: string | undefined;
  /** Of every answered announce, from its scheduled start (so a late start counts): sorted, ms. */
  readonly latenciesMs: number[];
  readonly seconds: number;
}

/**
 * Announces from `peers` distinct peers at a fixed rate, each a fresh TCP
 * connection as most tracker clients make (no keep-alive: a fleet's
 * machines do not share connections), from the peer's own address. Latency
 * is measured from when the announce was due, not when it was sent, so a
 * generator that falls behind shows as latency instead of hiding it.
 */
export async function announceLoad(options: AnnounceLoadOptions): Promise<AnnounceLoadResult> {
  const { port, infoHash, peers, perSecond, count } = options;
  const addresses = Math.min(options.addresses ?? peers, peers, 65_536);
  const numwant = options.numwant ?? 50;
  const maxInFlight = options.maxInFlight ?? 48;
  const agent = new Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });
  const latencies: number[] = [];
  let sent = 0;
  let answered = 0;
  let failed = 0;
  let firstFailure: string | undefined;
  const started = performance.now();
  const peerIds = new Map<number, Buffer>();
  const inFlight = new Set<Promise<void>>();

  const one = (k: number, dueAt: number): Promise<void> => {
    const peer = k % peers;
    let peerId = peerIds.get(peer);
    if (!peerId) {
      peerId = stockPeerId();
      peerIds.set(peer, peerId);
    }
    // Peers sharing an address differ by port, as processes on one machine do;
    // neighbours in number share an address, so the newest announces crowd a few.
    const address = Math.floor((peer * addresses) / peers);
    const path = `${announcePath({
      infoHash,
      peerId,
      port: 10_000 + peer - Math.ceil((address * peers) / addresses),
      left: peer % 10 === 0 ? 0 : 1_000,
      event: k < peers ? 'started' : undefined,
    })}&numwant=${numwant}`;
    return new Promise((resolve) => {
      const fail = (reason: string) => {
        failed++;
        firstFailure ??= reason;
        resolve();
      };
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path,
          agent,
          localAddress: fleetAddress(address, options.addressBase),
          timeout: HANG_MS,
        },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (b: Buffer) => parts.push(b));
          res.on('end', () => {
            const body = Buffer.concat(parts).toString('latin1');
            if (res.statusCode !== 200 || body.includes('failure reason'))
              return fail(`HTTP ${res.statusCode}: ${body.slice(0, 120)}`);
            answered++;
            latencies.push(performance.now() - dueAt);
            resolve();
          });
          res.on('error', (err) => fail(err.message));
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${HANG_MS} ms`)));
      req.on('error', (err) => fail(err.message));
      req.end();
    });
  };

  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      const due = Math.min(count, Math.floor(((now - started) / 1000) * perSecond) + 1);
      while (sent < due && inFlight.size < maxInFlight && !options.signal?.aborted) {
        const dueAt = started + (sent / perSecond) * 1000;
        const p = one(sent++, dueAt).finally(() => inFlight.delete(p));
        inFlight.add(p);
      }
      if (sent >= count || options.signal?.aborted) {
        clearInterval(timer);
        resolve();
      }
    };
    const timer = setInterval(tick, 2);
    tick();
  });
  await Promise.all(inFlight);
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return {
    sent,
    answered,
    failed,
    firstFailure,
    latenciesMs: latencies,
    seconds: (performance.now() - started) / 1000,
  };
}

export interface FleetConnectionsOptions {
  readonly port: number;
  readonly metainfo: Metainfo;
  readonly connections: number;
  /** Source addresses they come from, round robin (keep connections / addresses within the owner's per-address cap). */
  readonly addresses: number;
  /** Block requests each connection keeps outstanding (default 4). */
  readonly pipeline?: number;
  /** Connections opened at once while ramping up, so the owner's handshake budgets are not the test (default 32). */
  readonly openAtOnce?: number;
  /** Second octet of the source addresses (default 20: 127.20.x.y). */
  readonly addressBase?: number;
}

/** One connection of the fleet: what it got. */
export interface FleetMember {
  readonly label: string;
  bytes: number;
  blocks: number;
  /** Why it ended before `close()`, if it did. */
  ended: string | undefined;
}

/**
 * Many stock-client connections to one owner: each handshakes, says
 * interested, and once unchoked and started keeps `pipeline` block requests out,
 * walking the file from its own offset and wrapping around, reading every
 * byte as it comes (far above the owner's minimum upload rate, so none is
 * cut for reading too little). Blocks are counted, not kept or checked:
 * the load is the owner's, and a real peer beside the fleet checks bytes.
 */
export class FleetConnections {
  readonly members: FleetMember[] = [];
  private readonly peers: TestPeer[] = [];
  private readonly starters: (() => void)[] = [];
  private closing = false;

  private constructor(private readonly options: FleetConnectionsOptions) {}

  /** Opens every connection, `openAtOnce` at a time, and resolves once each is unchoked (or failed); `start()` sets them downloading. */
  static async open(options: FleetConnectionsOptions): Promise<FleetConnections> {
    const fleet = new FleetConnections(options);
    const atOnce = options.openAtOnce ?? 32;
    for (let first = 0; first < options.connections; first += atOnce) {
      const wave: Promise<void>[] = [];
      for (let i = first; i < Math.min(options.connections, first + atOnce); i++)
        wave.push(fleet.openOne(i));
      await Promise.all(wave);
    }
    return fleet;
  }

  /** Connections open and unchoked now. */
  get held(): number {
    return this.members.filter((m) => m.ended === undefined).length;
  }

  /** Bytes received per member (0 for one that ended early), in opening order. */
  bytesPerMember(): number[] {
    return this.members.map((m) => m.bytes);
  }

  /** Distinct source addresses used, as the owner counts them. */
  sources(): number {
    return new Set(this.peers.map((p) => sourceKey(p.socket.localAddress ?? ''))).size;
  }

  close(): void {
    this.closing = true;
    for (const peer of this.peers) peer.destroy();
  }

  private async openOne(i: number): Promise<void> {
    const { metainfo, port } = this.options;
    const geometry = metainfo.geometry;
    const member: FleetMember = { label: '', bytes: 0, blocks: 0, ended: undefined };
    this.members.push(member);
    let peer: TestPeer;
    try {
      peer = await TestPeer.connect(port, {
        metainfo,
        localAddress: fleetAddress(i % this.options.addresses, this.options.addressBase ?? 20),
      });
    } catch (err) {
      member.ended = `connect: ${(err as Error).message}`;
      return;
    }
    peer.record = false;
    this.peers.push(peer);
    (member as { label: string }).label = peer.label;
    void peer.closedPromise.then(() => {
      if (!this.closing) member.ended ??= peer.decodeError?.message ?? 'closed by the owner';
    });
    // Every block of the file in order, from a start of its own, round and round.
    const blocks = [...Array(geometry.pieceCount).keys()].flatMap((index) =>
      [...geometry.blocks(index)].map((b) => ({ index, ...b })),
    );
    let next = Math.floor((i * blocks.length) / Math.max(1, this.options.connections));
    const ask = () => {
      const b = blocks[next++ % blocks.length]!;
      peer.send({ type: 'request', index: b.index, begin: b.begin, length: b.length });
    };
    peer.onMessage = (m) => {
      if (m.type !== 'piece') return;
      member.bytes += m.block.length;
      member.blocks++;
      ask();
    };
    try {
      await peer.ready();
      await peer.interested();
    } catch (err) {
      member.ended ??= (err as Error).message;
      peer.destroy();
      return;
    }
    this.starters.push(() => {
      for (let k = 0; k < (this.options.pipeline ?? 4); k++) ask();
    });
  }

  /**
   * Starts every open connection's requests at once: opening them all first
   * keeps the ramp-up quick (the owner accepts faster while it serves
   * nothing) and starts the measured span with all of them in it.
   */
  start(): void {
    for (const go of this.starters.splice(0)) go();
  }
}

/**
 * Jain's fairness index of `xs`: (Σx)² / (n·Σx²), 1 when all are equal,
 * 1/n when one has everything.
 */
export function jainIndex(xs: readonly number[]): number {
  const sum = xs.reduce((a, x) => a + x, 0);
  const squares = xs.reduce((a, x) => a + x * x, 0);
  return squares === 0 ? 1 : (sum * sum) / (xs.length * squares);
}
