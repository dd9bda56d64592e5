import { readFile } from 'node:fs/promises';

/** One peer of a topology: its id, the peers it downloads from, and what runs it. */
export interface TopologyPeer {
  readonly id: string;
  /**
   * Download neighbours, by id; the first is the seed's "download neighbour".
   * Empty for a swarm peer with none (then it is started without one).
   */
  readonly neighbours: readonly string[];
  /** Swarm mode (`--swarm`, or no neighbour): trades with whoever the tracker lists. */
  readonly swarm?: boolean;
  /** `swarmdrop` (default) or `aria2c`, a stock client standing in for this peer. */
  readonly client: 'swarmdrop' | 'aria2c';
  /** A fixed listening port; when absent the harness picks a free one. */
  readonly port?: number;
}

export interface Topology {
  readonly description: string;
  readonly peers: readonly TopologyPeer[];
  /** Start order, by id. */
  readonly start: readonly string[];
}

export class TopologyError extends Error {}

/**
 * Validates a topology read from JSON. Errors (thrown): not an object, a
 * duplicate or malformed id, an unknown neighbour, a start order that is not
 * a permutation of the peers. Returned separately as warnings: peers that
 * some chunks can reach only through the owner's fallback.
 */
export function parseTopology(
  value: unknown,
  source = 'topology',
): { topology: Topology; warnings: string[] } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TopologyError(`${source}: must be a JSON object with "peers" and "start"`);
  }
  const raw = value as Record<string, unknown>;
  if (!Array.isArray(raw.peers) || raw.peers.length === 0) {
    throw new TopologyError(`${source}: "peers" must be a non-empty array`);
  }
  const peers: TopologyPeer[] = [];
  const ids = new Set<string>();
  raw.peers.forEach((entry, i) => {
    if (typeof entry !== 'object' || entry === null)
      throw new TopologyError(`${source}: peers[${i}] is not an object`);
    const p = entry as Record<string, unknown>;
    if (typeof p.id !== 'string' || !/^[A-Za-z0-9_-]{1,32}$/.test(p.id)) {
      throw new TopologyError(
        `${source}: peers[${i}].id must be a short name of letters, digits, _ or -`,
      );
    }
    if (ids.has(p.id)) throw new TopologyError(`${source}: duplicate peer id "${p.id}"`);
    ids.add(p.id);
    if (p.swarm !== undefined && typeof p.swarm !== 'boolean')
      throw new TopologyError(`${source}: peers[${i}].swarm must be true or false`);
    const swarm = p.swarm === true;
    const neighbours =
      p.neighbours ?? (p.neighbour === undefined ? (swarm ? [] : undefined) : [p.neighbour]);
    if (
      !Array.isArray(neighbours) ||
      (neighbours.length === 0 && !swarm) ||
      !neighbours.every((n) => typeof n === 'string')
    ) {
      throw new TopologyError(
        `${source}: peers[${i}] ("${p.id}") needs "neighbours": a non-empty list of peer ids (or "swarm": true)`,
      );
    }
    const client = p.client ?? 'swarmdrop';
    if (swarm && client !== 'swarmdrop')
      throw new TopologyError(`${source}: peers[${i}]: "swarm" is for swarmdrop peers`);
    if (client !== 'swarmdrop' && client !== 'aria2c') {
      throw new TopologyError(`${source}: peers[${i}].client must be "swarmdrop" or "aria2c"`);
    }
    if (
      p.port !== undefined &&
      (!Number.isInteger(p.port) || (p.port as number) < 1 || (p.port as number) > 65_535)
    ) {
      throw new TopologyError(`${source}: peers[${i}].port must be a port number (1-65535)`);
    }
    if (p.port !== undefined && peers.some((q) => q.port === p.port)) {
      throw new TopologyError(
        `${source}: duplicate port ${p.port} (peers "${peers.find((q) => q.port === p.port)!.id}" and "${p.id}")`,
      );
    }
    peers.push({
      id: p.id,
      neighbours: neighbours as string[],
      swarm,
      client,
      ...(p.port === undefined ? {} : { port: p.port as number }),
    });
  });
  for (const peer of peers) {
    for (const n of peer.neighbours) {
      if (!ids.has(n))
        throw new TopologyError(`${source}: peer "${peer.id}" has unknown neighbour "${n}"`);
      if (n === peer.id)
        throw new TopologyError(`${source}: peer "${peer.id}" cannot be its own neighbour`);
    }
    if (new Set(peer.neighbours).size !== peer.neighbours.length) {
      throw new TopologyError(`${source}: peer "${peer.id}" lists a neighbour twice`);
    }
  }
  const start = raw.start ?? peers.map((p) => p.id);
  if (
    !Array.isArray(start) ||
    start.length !== peers.length ||
    new Set(start).size !== peers.length ||
    !start.every((s) => ids.has(s))
  ) {
    throw new TopologyError(`${source}: "start" must list every peer id exactly once`);
  }
  const topology: Topology = {
    description: typeof raw.description === 'string' ? raw.description : '',
    peers,
    start: start as string[],
  };
  return { topology, warnings: reachabilityWarnings(topology) };
}

export async function loadTopology(
  path: string,
): Promise<{ topology: Topology; warnings: string[] }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new TopologyError(`${path}: cannot read (${(err as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new TopologyError(`${path}: not valid JSON (${(err as Error).message})`);
  }
  return parseTopology(json, path);
}

/**
 * Chunks flow from a neighbour to the peer that downloads from it. Every peer
 * starts with a batch, so a peer gets every batch through neighbours only if
 * every other peer reaches it along those flows. A swarm peer (or an aria2c)
 * trades with everyone the tracker lists, so whatever reaches one reaches all.
 */
export function reachabilityWarnings(topology: Topology): string[] {
  const warnings: string[] = [];
  const byId = new Map(topology.peers.map((p) => [p.id, p]));
  for (const peer of topology.peers) {
    const sources = new Set<string>([peer.id]);
    const queue = [peer.id];
    while (queue.length > 0) {
      const current = byId.get(queue.shift()!)!;
      const from =
        current.swarm || current.client === 'aria2c'
          ? topology.peers.map((p) => p.id)
          : current.neighbours;
      for (const n of from) {
        if (!sources.has(n)) {
          sources.add(n);
          queue.push(n);
        }
      }
    }
    const unreachable = topology.peers.map((p) => p.id).filter((id) => !sources.has(id));
    if (unreachable.length > 0) {
      warnings.push(
        `peer "${peer.id}" cannot get the batches of ${unreachable.map((u) => `"${u}"`).join(', ')} through neighbours; it will need the owner fallback`,
      );
    }
  }
  return warnings;
}

/** The ring of the seed: peer i downloads from peer i+1, started in order. */
export function ringTopology(count: number): Topology {
  const ids = Array.from({ length: count }, (_, i) => `p${i + 1}`);
  return {
    description: `ring of ${count}`,
    peers: ids.map((id, i) => ({
      id,
      neighbours: [ids[(i + 1) % count]!],
      swarm: false,
      client: 'swarmdrop' as const,
    })),
    start: ids,
  };
}

/** `count` swarm peers (no neighbours), started one at a time. */
export function swarmTopology(count: number): Topology {
  const ids = Array.from({ length: count }, (_, i) => `s${i + 1}`);
  return {
    description: `swarm of ${count}`,
    peers: ids.map((id) => ({ id, neighbours: [], swarm: true, client: 'swarmdrop' as const })),
    start: ids,
  };
}
