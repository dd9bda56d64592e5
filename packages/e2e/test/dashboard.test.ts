/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { Cleanup, HANG_MS, httpGet, MiB, toolAvailable, toolPath } from '@swarmdrop/testkit';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { ARTIFACTS_DIR, runScenario } from '../src/scenario.js';
import type { Swarm } from '../src/swarm.js';
import { ringTopology } from '../src/topology.js';

/** Where CI finds the screenshot (README, "Dashboard"); packages/e2e/artifacts is gitignored. */
const SCREENSHOT = join(ARTIFACTS_DIR, 'dashboard.png');
const TOKEN = 'dashboard-e2e-token';

// CI installs Debian's chromium (.ci/run) and must run this; elsewhere the title says why not.
const noChromium = !toolAvailable('chromium');

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

interface Seen {
  nodes: string[];
  edges: string[];
  progress: Record<string, string>;
  maps: Record<string, string>;
}

/** What the page shows: graph nodes and edges (`from>to`), progress and chunk map per row. */
function seen(page: Page): Promise<Seen> {
  return page.evaluate(() => {
    const nodes = [...document.querySelectorAll<SVGGElement>('#nodes g.node')].map(
      (g) => g.dataset.id!,
    );
    const edges = [...document.querySelectorAll<SVGLineElement>('#edges line.edge')].map(
      (l) => `${l.dataset.from}>${l.dataset.to}`,
    );
    const progress: Record<string, string> = {};
    const maps: Record<string, string> = {};
    for (const row of document.querySelectorAll<HTMLTableRowElement>('#peers tr[data-id]')) {
      progress[row.dataset.id!] = row.dataset.progress!;
      maps[row.dataset.id!] = row.querySelector('canvas')?.dataset.map ?? '';
    }
    return { nodes: nodes.sort(), edges: edges.sort(), progress, maps };
  });
}

async function status(port: number): Promise<Record<string, unknown>> {
  const res = await httpGet(port, '/status', { headers: { authorization: `Bearer ${TOKEN}` } });
  expect(res.status).toBe(200);
  return JSON.parse(res.body.toString()) as Record<string, unknown>;
}

function expand(runs: string): string {
  return runs.replace(/(\d+)(.)/g, (_, n: string, c: string) => c.repeat(Number(n)));
}

/** What the page must show, from the owner's and each peer's /status. */
async function expected(swarm: Swarm): Promise<Seen> {
  const owner = swarm.address('owner');
  const ownerStatus = await status(swarm.ownerPort);
  const chunks = ownerStatus.chunks as number;
  const nodes = [owner];
  const edges: string[] = [];
  const progress: Record<string, string> = { [owner]: '100' };
  const maps: Record<string, string> = { [owner]: 'o'.repeat(chunks) };
  // Every peer the owner lists is a node; each peer's own /status says what it holds and from whom.
  const listed = (ownerStatus.peers as { address: string }[]).map((p) => p.address).sort();
  expect(listed).toEqual(
    swarm
      .activePeers()
      .map((p) => swarm.address(p.id))
      .sort(),
  );
  for (const run of swarm.activePeers()) {
    const id = swarm.address(run.id);
    const peer = (await status(run.port)) as {
      held: number;
      chunks: number;
      map: string;
      links: { peer: string; bytesIn: number }[];
    };
    expect(peer.held).toBe(chunks);
    nodes.push(id);
    progress[id] = String(Math.floor((100 * peer.held) / peer.chunks));
    maps[id] = expand(peer.map);
    for (const link of peer.links) if (link.bytesIn > 0) edges.push(`${link.peer}>${id}`);
  }
  return { nodes: nodes.sort(), edges: edges.sort(), progress, maps };
}

/** Polls the page until it shows `want` (bounded by HANG_MS), then compares, so a mismatch shows its diff. */
async function pageShows(page: Page, want: Seen): Promise<Seen> {
  const deadline = Date.now() + HANG_MS;
  let got = await seen(page);
  while (!isDeepStrictEqual(got, want) && Date.now() < deadline) {
    await page.waitForTimeout(200);
    got = await seen(page);
  }
  return got;
}

describe('the live dashboard in a browser', () => {
  it.skipIf(noChromium)(
    'shows a five-peer private swarm to 100%, its graph and chunk maps as /status says (needs chromium)',
    async () => {
      let browser: Browser | undefined;
      let page: Page | undefined;
      const errors: string[] = [];
      cleanup.add(() => browser?.close());
      const result = await runScenario(
        {
          name: 'dashboard',
          topology: ringTopology(5),
          size: 12 * MiB + 777,
          env: { SWARMDROP_TOKEN: TOKEN },
          // The page is open from the first peer on, so it follows the whole run live.
          afterStart: async (swarm, id) => {
            if (id !== 'p1') return;
            browser = await chromium.launch({
              executablePath: toolPath('chromium') ?? 'chromium',
              // As root (CI's container) Chromium runs only without its sandbox; a
              // container's small /dev/shm would crash its renderer.
              args: [
                '--disable-dev-shm-usage',
                ...(process.getuid?.() === 0 ? ['--no-sandbox'] : []),
              ],
            });
            page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
            page.on('pageerror', (err) => errors.push(err.message));
            await page.goto(`http://${swarm.address('owner')}/?key=${TOKEN}`);
          },
        },
        async ({ swarm }) => {
          const want = await expected(swarm);
          const got = await pageShows(page!, want);
          expect(got.progress).toEqual(want.progress);
          expect(got.nodes).toEqual(want.nodes);
          expect(got.edges).toEqual(want.edges);
          expect(got.maps).toEqual(want.maps);
          // The ring: each peer got chunks from the owner and from its download neighbour.
          expect(want.edges).toHaveLength(10);
          // The whole swarm in aggregate, from the owner's peer table.
          const swarmLine = await page!.locator('#swarm').textContent();
          expect(swarmLine).toMatch(
            /^whole swarm: \d+ peers, \d+ connected, \d+ complete · by share held: 0–9%: \d+/,
          );
          await mkdir(ARTIFACTS_DIR, { recursive: true });
          await page!.screenshot({ path: SCREENSHOT, fullPage: true });
        },
      );
      expect(result.problems).toEqual([]);
      expect(errors).toEqual([]);
    },
  );
});
