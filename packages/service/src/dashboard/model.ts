import type { Clock } from '@swarmdrop/protocol';
import { escapeUnsafe, formatEndpoint, RateEstimator, SwarmdropError } from '@swarmdrop/protocol';
import type { DomainEvents, EventFields } from '../events.js';

/**
 * The dashboard's state: a subscriber to one service's DomainEvents (and, on
 * the owner, to its peers' reports) that keeps the swarm as a graph of nodes
 * and edges, a chunk map per node, and a ring of recent notable events. It
 * sets no timers: the HTTP side calls `delta()` on its own clock and pushes
 * the result to its browsers (Server-Sent Events).
 *
 * Wire format (JSON): `full()` is the whole state, `delta()` what changed since
 * the last delta. Nodes carry a small integer `i`, so edges and later deltas
 * name them cheaply. A chunk map is a string of one code per chunk (CHUNK_CODES),
 * sent run-length encoded (`"120o30n850."`); a delta sends only the chunks that
 * changed (`"o12n13"`: code then index). Every chunk changes a few times per
 * node at most, so chunk traffic is bounded by chunks × nodes over a whole run,
 * and everything else by nodes and edges per delta.
 */

/** Chunk-map codes: missing, then each ChunkSource, then "held, source unknown". */
export const CHUNK_CODES = {
  missing: '.',
  owner: 'o',
  neighbour: 'n',
  swarm: 's',
  fallback: 'f',
  disk: 'd',
  held: 'h',
} as const;
export type ChunkCode = (typeof CHUNK_CODES)[keyof typeof CHUNK_CODES];
const CODE_SET = new Set<string>(Object.values(CHUNK_CODES));
const MISSING = CHUNK_CODES.missing.charCodeAt(0);
const HELD = CHUNK_CODES.held.charCodeAt(0);

/** Notable events kept for the "recent events" list. */
export const DEFAULT_RECENT_EVENTS = 50;
/** Nodes kept at most (the owner's /status lists 100 peers; leave room for stock clients). */
export const DEFAULT_MAX_NODES = 256;
/**
 * A node unheard of for this long (no event of ours, no report of its own)
 * may make room for a new one in a full table; one heard of more recently
 * never does, so a burst of newcomers cannot push a live peer out. Six of
 * the owner's idle report intervals (5 s).
 */
export const DEFAULT_NODE_STALE_MS = 30_000;
/** Edges kept at most; the quietest are dropped first. */
export const DEFAULT_MAX_EDGES = 2048;
/** Links one report may list. */
export const MAX_REPORT_LINKS = 256;
/** Notable events one report may carry (those since the last report, the newest kept). */
export const MAX_REPORT_EVENTS = 20;
/**
 * The most bytes/s a report may claim on one link, and for all its links
 * together, each way: 100 Gbit/s. Every byte a peer takes in is SHA-1
 * checked on its event loop (1.4 GB/s, measured with createHash over
 * 100 KiB chunks), so even this is far beyond what one peer moves; a
 * larger figure is a fault or a lie.
 */
export const MAX_REPORT_RATE = 12_500_000_000;
/** Connections one report may claim: the peer's --max-connections ceiling (100,000) and its --max-peers' (1,000), rounded up. */
export const MAX_REPORT_CONNECTIONS = 200_000;
/** Characters of one recent event's text, after escaping. */
export const MAX_EVENT_TEXT = 300;
/** A report's body at most, in bytes: a run-length map of 2M chunks that alternate sources would not fit, so such a peer leaves its map out. */
export const MAX_REPORT_BYTES = 512 * 1024;

export type NodeKind = 'owner' | 'swarmdrop' | 'stock';

/** The events the "recent events" list keeps. */
export const NOTABLE_EVENTS = [
  'fallback',
  'chunk-rejected',
  'chunk-corrupt',
  'protocol-error',
] as const;
const NOTABLE: readonly string[] = NOTABLE_EVENTS;

/** The code of a chunk from a `via` (a ChunkSource or a link role). */
export function codeOfVia(via: string): ChunkCode {
  switch (via) {
    case 'owner':
      return 'o';
    case 'neighbour':
    case 'in':
      return 'n';
    case 'swarm':
      return 's';
    case 'fallback':
      return 'f';
    case 'disk':
      return 'd';
    default:
      return 'h';
  }
}

/** Run-length encodes a chunk map: `"120o30n"`. */
export function encodeRuns(map: Uint8Array): string {
  let out = '';
  for (let i = 0; i < map.length; ) {
    let j = i + 1;
    while (j < map.length && map[j] === map[i]) j++;
    out += `${j - i}${String.fromCharCode(map[i]!)}`;
    i = j;
  }
  return out;
}

/** A report or run string that is not what it must be; the request that carried it gets a 400. */
export class ReportError extends SwarmdropError {
  constructor(message: string) {
    super('ERR_DASHBOARD_REPORT', message);
  }
}

/** Decodes `encodeRuns` output for exactly `chunks` chunks, or throws a ReportError. */
export function decodeRuns(runs: string, chunks: number): Uint8Array {
  const map = new Uint8Array(chunks);
  const pattern = /(\d{1,8})(.)/gy;
  let at = 0;
  let match: RegExpExecArray | null;
  pattern.lastIndex = 0;
  while (pattern.lastIndex < runs.length) {
    match = pattern.exec(runs);
    if (!match) throw new ReportError(`map: bad run at character ${pattern.lastIndex || at}`);
    const count = Number(match[1]);
    const code = match[2]!;
    if (count < 1 || !CODE_SET.has(code))
      throw new ReportError(`map: bad run "${match[0].slice(0, 12)}"`);
    if (at + count > chunks) throw new ReportError(`map: more than ${chunks} chunks`);
    map.fill(code.charCodeAt(0), at, at + count);
    at += count;
  }
  if (at !== chunks) throw new ReportError(`map: ${at} chunks, expected ${chunks}`);
  return map;
}

/** One link as a peer reports it: who, and bytes/s and bytes each way. */
export interface ReportLink {
  readonly peer: string;
  readonly kind: NodeKind;
  readonly down: number;
  readonly up: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
}

/** What a peer tells the owner about itself (POST /dashboard/report). */
export interface PeerReport {
  /** The peer's listening port; with the request's source address, its name in the swarm. */
  readonly port: number;
  /** Run-length chunk map (encodeRuns); left out when too long. */
  readonly map?: string | undefined;
  readonly connections: number;
  readonly links: readonly ReportLink[];
  readonly done: boolean;
  /** Its notable events since its last report, so the owner's list shows the peers' fallbacks and rejects. */
  readonly events?: readonly { readonly event: string; readonly text: string }[] | undefined;
}

/** Strictly checks a report body (already parsed as JSON); throws a one-line ReportError. */
export function parseReport(value: unknown): PeerReport {
  if (!isRecord(value)) throw new ReportError('report: expected a JSON object');
  const port = value.port;
  if (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65_535)
    throw new ReportError('report: port must be a whole number in 1-65535');
  const map = value.map;
  if (map !== undefined && (typeof map !== 'string' || map.length > MAX_REPORT_BYTES))
    throw new ReportError('report: map must be a run-length string');
  const connections = count(value.connections, 'connections', MAX_REPORT_CONNECTIONS);
  if (typeof value.done !== 'boolean') throw new ReportError('report: done must be true or false');
  if (!Array.isArray(value.links) || value.links.length > MAX_REPORT_LINKS)
    throw new ReportError(`report: links must be a list of at most ${MAX_REPORT_LINKS}`);
  const links = value.links.map((link: unknown, n: number): ReportLink => {
    if (!isRecord(link)) throw new ReportError(`report: links[${n}] is not an object`);
    const peer = link.peer;
    if (typeof peer !== 'string' || !/^[0-9A-Za-z.:[\]%-]{1,80}$/.test(peer))
      throw new ReportError(`report: links[${n}].peer is not an address`);
    const kind = link.kind;
    if (kind !== 'owner' && kind !== 'swarmdrop' && kind !== 'stock')
      throw new ReportError(`report: links[${n}].kind must be owner, swarmdrop or stock`);
    return {
      peer,
      kind,
      down: count(link.down, `links[${n}].down`, MAX_REPORT_RATE),
      up: count(link.up, `links[${n}].up`, MAX_REPORT_RATE),
      bytesIn: count(link.bytesIn, `links[${n}].bytesIn`),
      bytesOut: count(link.bytesOut, `links[${n}].bytesOut`),
    };
  });
  let down = 0;
  let up = 0;
  for (const link of links) {
    down += link.down;
    up += link.up;
  }
  if (down > MAX_REPORT_RATE || up > MAX_REPORT_RATE)
    throw new ReportError(`report: links add up to more than ${MAX_REPORT_RATE} bytes/s`);
  let events: { event: string; text: string }[] | undefined;
  if (value.events !== undefined) {
    if (!Array.isArray(value.events) || value.events.length > MAX_REPORT_EVENTS)
      throw new ReportError(`report: events must be a list of at most ${MAX_REPORT_EVENTS}`);
    events = value.events.map((e: unknown, n: number) => {
      if (
        !isRecord(e) ||
        typeof e.event !== 'string' ||
        !NOTABLE.includes(e.event) ||
        typeof e.text !== 'string' ||
        e.text.length > MAX_EVENT_TEXT
      )
        throw new ReportError(
          `report: events[${n}] must be {event: ${NOTABLE.join('|')}, text: up to ${MAX_EVENT_TEXT} characters}`,
        );
      // Control and bidi characters are escaped where the text enters the list (noteText).
      return { event: e.event, text: e.text };
    });
  }
  return {
    port: port as number,
    map: map as string | undefined,
    connections,
    links,
    done: value.done,
    ...(events ? { events } : {}),
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A whole number in 0..max (bytes and counts are whole; so are the rates a peer rounds). */
function count(value: unknown, field: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > max)
    throw new ReportError(`report: ${field} must be a whole number in 0-${max}`);
  return value;
}

interface NodeState {
  readonly i: number;
  readonly id: string;
  kind: NodeKind;
  map: Uint8Array;
  held: number;
  /** Open connections: our own count for self, the report's for a reporting peer, else ours to it. */
  connections: number;
  /** Rates a report gave (bytes/s); undefined when we measure them ourselves. */
  reported: { down: number; up: number } | undefined;
  done: boolean;
  /** Chunks changed since the last delta. */
  readonly changed: Set<number>;
  /** The stats sent last (so a delta skips an unchanged node). */
  sent: string;
  isNew: boolean;
  lastSeen: number;
}

interface EdgeState {
  readonly from: NodeState;
  readonly to: NodeState;
  bytes: number;
  /** Measured by this process; else `reportedRate` from the receiving peer's report. */
  readonly rate: RateEstimator | undefined;
  reportedRate: number;
  sent: string;
}

export interface DashboardFile {
  readonly name: string;
  readonly size: number;
  readonly chunks: number;
  readonly chunkSize: number;
}

export interface RecentEvent {
  /** Milliseconds since the model started (the clock's origin is arbitrary). */
  readonly t: number;
  readonly event: string;
  readonly text: string;
}

export interface DashboardModelOptions {
  readonly clock: Clock;
  /** How this process is named in the swarm (its listening address). */
  readonly selfId: string;
  readonly selfKind: 'owner' | 'swarmdrop';
  readonly recentEvents?: number;
  readonly maxNodes?: number;
  readonly maxEdges?: number;
  /** How long a node goes unheard of before it may make room (DEFAULT_NODE_STALE_MS). */
  readonly nodeStaleMs?: number;
  /**
   * The whole swarm in aggregate, bounded in size (the owner's peer table
   * knows more peers than the `maxNodes` shown): sent as `swarm` in every
   * full state and in a delta when it changed.
   */
  readonly swarm?: () => object;
}

/** The JSON pushed to browsers: `full()` or `delta()`. */
export interface DashboardUpdate {
  readonly type: 'full' | 'delta';
  /** ms since the model started. */
  readonly t: number;
  readonly [key: string]: unknown;
}

export class DashboardModel {
  readonly selfId: string;
  file: DashboardFile | undefined;
  private readonly clock: Clock;
  private readonly startedAt: number;
  private readonly nodes = new Map<string, NodeState>();
  private readonly edges = new Map<string, EdgeState>();
  /** Edges dropped since the last delta, as `a>b` of node numbers. */
  private readonly removedEdges: string[] = [];
  private readonly removedNodes: number[] = [];
  private readonly recent: RecentEvent[] = [];
  private recentNew = 0;
  /** Notable events noted in all, and how many of them went out in a report. */
  private notes = 0;
  private notesReported = 0;
  /** `notes` when the last report was built: what reportAccepted() marks as told. */
  private notesInReport = 0;
  private nextIndex = 0;
  private readonly self: NodeState;
  private readonly recentMax: number;
  private readonly maxNodes: number;
  private readonly maxEdges: number;
  private readonly nodeStaleMs: number;
  private readonly down: RateEstimator;
  private readonly up: RateEstimator;
  /** Aliases of this process (the addresses others call it by) to selfId. */
  private readonly aliases = new Set<string>();
  private fileChanged = false;
  private readonly swarm: (() => object) | undefined;
  /** The last `swarm` a delta carried, as JSON. */
  private swarmSent = '';

  constructor(options: DashboardModelOptions) {
    this.clock = options.clock;
    this.startedAt = options.clock.now();
    this.selfId = options.selfId;
    this.recentMax = options.recentEvents ?? DEFAULT_RECENT_EVENTS;
    this.maxNodes = options.maxNodes ?? DEFAULT_MAX_NODES;
    this.maxEdges = options.maxEdges ?? DEFAULT_MAX_EDGES;
    this.nodeStaleMs = options.nodeStaleMs ?? DEFAULT_NODE_STALE_MS;
    this.swarm = options.swarm;
    this.down = new RateEstimator({ clock: options.clock });
    this.up = new RateEstimator({ clock: options.clock });
    this.self = this.node(options.selfId, options.selfKind)!;
  }

  /** The file, once known; `holds(i)` says which chunks this process has (with `code`). */
  setFile(file: DashboardFile, holds: (index: number) => boolean, code: ChunkCode): void {
    this.file = file;
    this.fileChanged = true;
    for (const node of this.nodes.values()) {
      node.map = new Uint8Array(file.chunks).fill(MISSING);
      node.held = 0;
      node.changed.clear();
    }
    const c = code.charCodeAt(0);
    for (let i = 0; i < file.chunks; i++) {
      if (holds(i)) {
        this.self.map[i] = c;
        this.self.held++;
      }
    }
  }

  /** Another name of this process (the owner as a peer dialled it). */
  addAlias(id: string): void {
    if (id !== this.selfId) this.aliases.add(id);
  }

  /** Subscribes to a service's events; returns the unsubscribe. */
  attach(events: DomainEvents): () => void {
    const offs = [
      events.on('connected', (f) => this.connected(f)),
      events.on('disconnected', (f) => this.disconnected(f)),
      events.on('chunk-received', (f) => this.chunkReceived(f)),
      events.on('chunk-sent', (f) => this.chunkSent(f)),
      events.on('have-received', (f) => this.haveReceived(f)),
      events.on('chunk-corrupt', (f) => this.chunkCorrupt(f)),
      ...NOTABLE_EVENTS.map((name) =>
        events.on(name, (f: Record<string, unknown>) => this.note(name, f)),
      ),
    ];
    return () => {
      for (const off of offs) off();
    };
  }

  connected(f: EventFields['connected']): void {
    const kind: NodeKind =
      f.role === 'owner' || f.role === 'fallback'
        ? 'owner'
        : f.client === undefined || f.client === 'swarmdrop'
          ? 'swarmdrop'
          : 'stock';
    const node = this.node(f.peer, kind);
    if (node && !node.reported) node.connections++;
    this.self.connections++;
  }

  disconnected(f: EventFields['disconnected']): void {
    const node = this.nodes.get(this.canonical(f.peer));
    if (node && !node.reported && node.connections > 0) node.connections--;
    if (this.self.connections > 0) this.self.connections--;
  }

  chunkReceived(f: EventFields['chunk-received']): void {
    this.setChunk(this.self, f.chunk, codeOfVia(f.via).charCodeAt(0));
    this.down.record(f.bytes);
    const from = this.node(
      f.from,
      f.via === 'owner' || f.via === 'fallback' ? 'owner' : 'swarmdrop',
    );
    if (from) {
      this.setChunk(from, f.chunk, HELD, true);
      this.edge(from, this.self, true)?.rate?.record(f.bytes);
      const edge = this.edges.get(`${from.id}>${this.self.id}`);
      if (edge) edge.bytes += f.bytes;
    }
  }

  chunkSent(f: EventFields['chunk-sent']): void {
    this.up.record(f.bytes);
    const to = this.node(f.to, 'swarmdrop');
    if (!to) return;
    const edge = this.edge(this.self, to, true);
    if (edge) {
      edge.rate?.record(f.bytes);
      edge.bytes += f.bytes;
    }
    // It will hold it once it verifies; its own report (or have) names the source later.
    this.setChunk(to, f.chunk, HELD, true);
  }

  haveReceived(f: EventFields['have-received']): void {
    const node = this.node(f.from, 'swarmdrop');
    if (node) this.setChunk(node, f.chunk, HELD, true);
  }

  chunkCorrupt(f: EventFields['chunk-corrupt']): void {
    // The store dropped it (the owner restores its own at once, and says so).
    if (f.chunk !== undefined && f.restored !== true && this.self.kind !== 'owner')
      this.setChunk(this.self, f.chunk, MISSING);
  }

  /** Remembers a notable event for the recent list. */
  note(event: string, fields: Record<string, unknown>): void {
    this.noteText(
      event,
      Object.entries(fields)
        .map(([k, v]) => `${k}=${String(v)}`)
        .join(' '),
    );
  }

  /**
   * Every text in the list is escaped as a log line is (escapeUnsafe): a
   * peer's or a remote's words can neither break a line nor reorder what a
   * reader sees (U+202E). Cut after escaping, so the bound holds, without
   * leaving half an escape at the end.
   */
  private noteText(event: string, raw: string): void {
    this.notes++;
    let text = escapeUnsafe(raw);
    if (text.length > MAX_EVENT_TEXT)
      text = text.slice(0, MAX_EVENT_TEXT).replace(/\\u[0-9a-f]{0,3}$/, '');
    this.recent.push({ t: Math.round(this.clock.now() - this.startedAt), event, text });
    if (this.recent.length > this.recentMax) this.recent.shift();
    this.recentNew = Math.min(this.recentNew + 1, this.recentMax);
  }

  /**
   * A peer's report (already checked by parseReport), from `host` (the
   * request's source address): its chunk map, connections, and its links'
   * rates, which become the edges into it. A report speaks for its sender
   * only: its links join nodes already in the table, never make new ones
   * (a list of made-up peers would fill it), and do not keep them fresh.
   */
  applyReport(host: string, report: PeerReport): void {
    const map =
      report.map !== undefined && this.file ? decodeRuns(report.map, this.file.chunks) : undefined;
    const id = formatEndpoint(host, report.port);
    const node = this.node(id, 'swarmdrop');
    if (!node) return;
    node.kind = 'swarmdrop';
    node.connections = report.connections;
    node.done = report.done;
    let down = 0;
    let up = 0;
    for (const link of report.links) {
      down += link.down;
      up += link.up;
    }
    node.reported = { down, up };
    for (const e of report.events ?? []) this.noteText(e.event, `peer=${id} ${e.text}`);
    if (map) {
      for (let i = 0; i < map.length; i++) this.setChunk(node, i, map[i]!);
    }
    for (const link of report.links) {
      const remote = this.nodes.get(this.canonical(link.peer));
      // The owner measures its own links; a report adds the peer-to-peer ones
      // that carried something into this peer (its uploads are the others' downloads).
      if (!remote || remote === this.self || (link.bytesIn === 0 && link.down === 0)) continue;
      const edge = this.edge(remote, node, false);
      if (edge) {
        edge.reportedRate = link.down;
        edge.bytes = Math.max(edge.bytes, link.bytesIn);
      }
    }
  }

  /**
   * This process's own report to its owner: its map, connections, each
   * link's rates and bytes, and the notable events not yet in an accepted
   * report (so a refused one, say before our first announce, loses none).
   */
  report(port: number, done: boolean, maxMapChars = MAX_REPORT_BYTES / 2): PeerReport {
    const map = this.file ? encodeRuns(this.self.map) : undefined;
    const fresh = Math.min(this.notes - this.notesReported, this.recent.length, MAX_REPORT_EVENTS);
    this.notesInReport = this.notes;
    const events = this.recent.slice(this.recent.length - fresh).map(({ event, text }) => ({
      event,
      text,
    }));
    return {
      port,
      ...(map !== undefined && map.length <= maxMapChars ? { map } : {}),
      connections: this.self.connections,
      links: this.links().slice(0, MAX_REPORT_LINKS),
      done,
      ...(events.length > 0 ? { events } : {}),
    };
  }

  /** The owner took the last report(): its events are told. */
  reportAccepted(): void {
    this.notesReported = this.notesInReport;
  }

  /** This process's chunk map as run-length text, and its links (for /status). */
  selfStatus(): {
    map: string | null;
    links: { peer: string; bytesIn: number; bytesOut: number }[];
  } {
    const links = this.links().map(({ peer, bytesIn, bytesOut }) => ({ peer, bytesIn, bytesOut }));
    return { map: this.file ? encodeRuns(this.self.map) : null, links };
  }

  /** This process's links, one per remote, with rates and bytes both ways. */
  private links(): ReportLink[] {
    const links = new Map<string, ReportLink>();
    const add = (peer: NodeState, down: number, up: number, bytesIn: number, bytesOut: number) => {
      const was = links.get(peer.id);
      links.set(peer.id, {
        peer: peer.id,
        kind: peer.kind,
        down: (was?.down ?? 0) + down,
        up: (was?.up ?? 0) + up,
        bytesIn: (was?.bytesIn ?? 0) + bytesIn,
        bytesOut: (was?.bytesOut ?? 0) + bytesOut,
      });
    };
    for (const edge of this.edges.values()) {
      const rate = Math.round(this.rateOf(edge));
      if (edge.to === this.self) add(edge.from, rate, 0, edge.bytes, 0);
      else if (edge.from === this.self) add(edge.to, 0, rate, 0, edge.bytes);
    }
    return [...links.values()];
  }

  /** The whole state, for a browser that just connected. */
  full(): DashboardUpdate {
    return {
      type: 'full',
      t: this.elapsed(),
      self: this.self.i,
      file: this.file ?? null,
      nodes: [...this.nodes.values()].map((n) => ({
        ...this.nodeStats(n),
        id: n.id,
        kind: n.kind,
        map: encodeRuns(n.map),
      })),
      edges: [...this.edges.values()].map((e) => this.edgeStats(e)),
      totals: this.totals(),
      events: this.recent,
      ...(this.swarm ? { swarm: this.swarm() } : {}),
    };
  }

  /** What changed since the last delta, or undefined when nothing did. */
  delta(): DashboardUpdate | undefined {
    const nodes: Record<string, unknown>[] = [];
    for (const n of this.nodes.values()) {
      const stats = this.nodeStats(n);
      const key = JSON.stringify(stats);
      if (!n.isNew && key === n.sent && n.changed.size === 0) continue;
      const out: Record<string, unknown> = { ...stats };
      if (n.isNew || this.fileChanged) {
        out.id = n.id;
        out.kind = n.kind;
        out.map = encodeRuns(n.map);
      } else {
        out.kind = n.kind;
        if (n.changed.size > 0) {
          let set = '';
          for (const i of n.changed) set += `${String.fromCharCode(n.map[i]!)}${i}`;
          out.set = set;
        }
      }
      n.isNew = false;
      n.sent = key;
      n.changed.clear();
      nodes.push(out);
    }
    const edges: Record<string, unknown>[] = [];
    for (const e of this.edges.values()) {
      const stats = this.edgeStats(e);
      const key = JSON.stringify(stats);
      if (key === e.sent) continue;
      e.sent = key;
      edges.push(stats);
    }
    const events = this.recent.slice(this.recent.length - this.recentNew);
    this.recentNew = 0;
    const gone = this.removedEdges.splice(0);
    const goneNodes = this.removedNodes.splice(0);
    const fileChanged = this.fileChanged;
    this.fileChanged = false;
    const swarm = this.swarm?.();
    const swarmKey = swarm ? JSON.stringify(swarm) : '';
    const swarmChanged = swarmKey !== this.swarmSent;
    this.swarmSent = swarmKey;
    if (
      nodes.length + edges.length + events.length + gone.length + goneNodes.length === 0 &&
      !fileChanged &&
      !swarmChanged
    )
      return undefined;
    return {
      type: 'delta',
      t: this.elapsed(),
      ...(fileChanged ? { file: this.file ?? null } : {}),
      nodes,
      edges,
      ...(gone.length > 0 ? { removedEdges: gone } : {}),
      ...(goneNodes.length > 0 ? { removedNodes: goneNodes } : {}),
      totals: this.totals(),
      ...(events.length > 0 ? { events } : {}),
      ...(swarmChanged && swarm ? { swarm } : {}),
    };
  }

  private elapsed(): number {
    return Math.round(this.clock.now() - this.startedAt);
  }

  private canonical(id: string): string {
    return this.aliases.has(id) ? this.selfId : id;
  }

  /** The node named `id`, made if new; undefined when the table is full. */
  private node(rawId: string, kind: NodeKind): NodeState | undefined {
    const id = this.canonical(rawId);
    let node = this.nodes.get(id);
    if (node) {
      node.lastSeen = this.clock.now();
      return node;
    }
    if (this.nodes.size >= this.maxNodes && !this.evictNode()) return undefined;
    node = {
      i: this.nextIndex++,
      id,
      kind,
      map: new Uint8Array(this.file?.chunks ?? 0).fill(MISSING),
      held: 0,
      connections: 0,
      reported: undefined,
      done: false,
      changed: new Set(),
      sent: '',
      isNew: true,
      lastSeen: this.clock.now(),
    };
    this.nodes.set(id, node);
    return node;
  }

  /**
   * Drops the longest-unseen node that has no connections of ours and has been
   * unheard of for nodeStaleMs; false when none has (the newcomer is not
   * shown). Eviction by age, not by arrival: a newcomer never pushes out a
   * node that is still heard from, however many newcomers there are.
   */
  private evictNode(): boolean {
    const staleBefore = this.clock.now() - this.nodeStaleMs;
    let victim: NodeState | undefined;
    for (const n of this.nodes.values()) {
      // A reported count is the peer's claim, not ours: only our own connections hold a node.
      const connected = n.connections > 0 && n.reported === undefined;
      if (n === this.self || connected || n.lastSeen > staleBefore) continue;
      if (!victim || n.lastSeen < victim.lastSeen) victim = n;
    }
    if (!victim) return false;
    this.nodes.delete(victim.id);
    this.removedNodes.push(victim.i);
    for (const [key, e] of this.edges) {
      if (e.from === victim || e.to === victim) {
        this.edges.delete(key);
        this.removedEdges.push(`${e.from.i}>${e.to.i}`);
      }
    }
    return true;
  }

  private edge(from: NodeState, to: NodeState, measured: boolean): EdgeState | undefined {
    const key = `${from.id}>${to.id}`;
    let edge = this.edges.get(key);
    if (edge) return edge;
    if (this.edges.size >= this.maxEdges) {
      let quietest: [string, EdgeState] | undefined;
      for (const entry of this.edges) {
        if (!quietest || this.rateOf(entry[1]) < this.rateOf(quietest[1])) quietest = entry;
      }
      if (!quietest) return undefined;
      this.edges.delete(quietest[0]);
      this.removedEdges.push(`${quietest[1].from.i}>${quietest[1].to.i}`);
    }
    edge = {
      from,
      to,
      bytes: 0,
      rate: measured ? new RateEstimator({ clock: this.clock }) : undefined,
      reportedRate: 0,
      sent: '',
    };
    this.edges.set(key, edge);
    return edge;
  }

  private rateOf(edge: EdgeState): number {
    return edge.rate ? edge.rate.bytesPerSecond() : edge.reportedRate;
  }

  /**
   * Sets one chunk's code. A remote's "held, source unknown" (from a have or
   * a chunk we sent) never overwrites a known source, and never marks a chunk
   * missing again.
   */
  private setChunk(node: NodeState, index: number, code: number, weak = false): void {
    if (!Number.isInteger(index) || index < 0 || index >= node.map.length) return;
    const was = node.map[index]!;
    if (was === code || (weak && was !== MISSING)) return;
    node.map[index] = code;
    if (was === MISSING) node.held++;
    else if (code === MISSING) node.held--;
    node.changed.add(index);
  }

  private nodeStats(n: NodeState) {
    const chunks = this.file?.chunks ?? 0;
    const rates =
      n === this.self
        ? { down: this.down.bytesPerSecond(), up: this.up.bytesPerSecond() }
        : (n.reported ?? this.measuredRates(n));
    const down = Math.round(rates.down);
    const left = chunks === 0 ? 0 : ((chunks - n.held) / chunks) * (this.file?.size ?? 0);
    return {
      i: n.i,
      held: n.held,
      conns: n.connections,
      down,
      up: Math.round(rates.up),
      // Seconds to go at the current rate; null when nothing is coming in.
      eta: n.held >= chunks ? 0 : down > 0 ? Math.ceil(left / down) : null,
      done: n.done || (chunks > 0 && n.held >= chunks),
    };
  }

  /** A node's rates as the edges this process measures see them. */
  private measuredRates(n: NodeState): { down: number; up: number } {
    let down = 0;
    let up = 0;
    for (const e of this.edges.values()) {
      if (e.to === n) down += this.rateOf(e);
      if (e.from === n) up += this.rateOf(e);
    }
    return { down, up };
  }

  private edgeStats(e: EdgeState) {
    return { a: e.from.i, b: e.to.i, rate: Math.round(this.rateOf(e)), bytes: e.bytes };
  }

  private totals() {
    const chunks = this.file?.chunks ?? 0;
    let complete = 0;
    let rate = 0;
    for (const n of this.nodes.values()) if (chunks > 0 && n.held >= chunks) complete++;
    for (const e of this.edges.values()) rate += this.rateOf(e);
    return {
      nodes: this.nodes.size,
      complete,
      rate: Math.round(rate),
      down: Math.round(this.down.bytesPerSecond()),
      up: Math.round(this.up.bytesPerSecond()),
      downTotal: this.down.total,
      upTotal: this.up.total,
    };
  }
}
