/** The topology files the e2e suites run. */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadTopology, type Topology } from '../src/topology.js';

export const TOPOLOGIES = join(fileURLToPath(import.meta.url), '..', '..', 'topologies');

export async function topology(name: string): Promise<Topology> {
  return (await loadTopology(join(TOPOLOGIES, `${name}.json`))).topology;
}
