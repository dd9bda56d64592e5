/**
 * The dashboard over real HTTP on 127.0.0.1 (a DualServer on port 0): the
 * page, the event stream's full state then deltas on the injected clock, the
 * token, a stream outliving the server's request deadline, viewers past the
 * cap, and peers' reports checked at the edge (only from an address and port
 * that announced: here 127.0.0.1:7001).
 */

import { ManualClock } from '@swarmdrop/protocol';
import { Cleanup, httpGet, openEventStream, rawExchange } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DASHBOARD_REPORT_HEADER,
  DASHBOARD_REPORT_IDLE_MS,
  DASHBOARD_REPORT_PATH,
  DASHBOARD_REPORT_WATCHED_MS,
  DashboardHttp,
  DashboardModel,
  DomainEvents,
  DualServer,
  dashboardAssets,
  httpRouter,
  sendText,
} from '../src/index.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const FILE = { name: 'f.bin', size: 10 * 1024, chunks: 10, chunkSize: 1024 };

async function serve(
  options: { token?: string; requestTimeoutMs?: number; maxClients?: number } = {},
) {
  const clock = new ManualClock();
  const events = new DomainEvents();
  const model = new DashboardModel({ clock, selfId: '127.0.0.1:7000', selfKind: 'owner' });
  model.setFile(FILE, () => true, 'o');
  model.attach(events);
  let dashboard: DashboardHttp | undefined;
  const router = httpRouter(
    (path, req, res) => {
      if (!dashboard?.handle(path, req, res)) sendText(res, 404, 'no\n');
    },
    () => {},
    new Set([DASHBOARD_REPORT_PATH]),
  );
  const server = new DualServer({
    port: 0,
    host: '127.0.0.1',
    requestTimeoutMs: options.requestTimeoutMs ?? 5_000,
    onWire: (socket) => socket.destroy(),
    onHttp: router,
  });
  dashboard = new DashboardHttp({
    model,
    clock,
    token: options.token,
    title: 'owner <of> f.bin',
    holdOpen: (res) => server.holdOpen(res),
    announced: (host, port) => host === '127.0.0.1' && port === 7001,
    intervalMs: 250,
    ...(options.maxClients ? { maxClients: options.maxClients } : {}),
  });
  const { port } = await server.listen();
  cleanup.add(() => server.close());
  cleanup.add(() => dashboard.close());
  return { clock, events, model, dashboard, port };
}

const report = {
  port: 7001,
  map: '5s5.',
  connections: 1,
  done: false,
  links: [{ peer: '127.0.0.1:7000', kind: 'owner', down: 10, up: 0, bytesIn: 5, bytesOut: 0 }],
};

describe('DashboardHttp', () => {
  it('serves the page with its title escaped, and the script and style it loads', async () => {
    const { port } = await serve();
    const page = await httpGet(port, '/');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toContain('text/html');
    expect(page.body.toString()).toContain('owner &lt;of&gt; f.bin');
    expect(page.body.toString()).toContain('src="dashboard.js"');
    const js = await httpGet(port, '/dashboard.js');
    expect(js.body.toString()).toBe(dashboardAssets().js);
    expect((await httpGet(port, '/dashboard.css')).headers['content-type']).toContain('text/css');
  });

  it('streams the full state, then one delta per interval on the clock, only when something changed', async () => {
    const { clock, events, port, dashboard } = await serve();
    const stream = await openEventStream(port, '/dashboard/events');
    cleanup.add(() => stream.close());
    expect(stream.status).toBe(200);
    const full = JSON.parse(await stream.message(0));
    expect(full).toMatchObject({ type: 'full', file: FILE });
    expect(dashboard.clientCount).toBe(1);
    for (let i = 0; i < 5; i++)
      events.publish('chunk-sent', { chunk: i, to: '127.0.0.1:7001', bytes: 1024 });
    clock.advance(250);
    const delta = JSON.parse(await stream.message(1));
    expect(delta.type).toBe('delta');
    const peer = delta.nodes.find((n: { id?: string }) => n.id === '127.0.0.1:7001');
    expect(peer).toMatchObject({ held: 5, map: '5h5.' });
    // Rates fall to zero over the estimator's window (each fall is a delta); once they
    // have, a quiet interval sends nothing: the next change is the very next message.
    clock.advance(11_000);
    events.publish('have-received', { chunk: 8, from: '127.0.0.1:7001' });
    clock.advance(250);
    let sent = 2;
    while (!(await stream.message(sent)).includes('"set":"h8"')) sent++;
    sent++;
    clock.advance(250);
    clock.advance(250);
    events.publish('have-received', { chunk: 9, from: '127.0.0.1:7001' });
    clock.advance(250);
    const next = JSON.parse(await stream.message(sent));
    expect(next.nodes).toEqual([expect.objectContaining({ held: 7, set: 'h9' })]);
  });

  it('keeps a stream open past the request deadline', async () => {
    const { clock, events, port } = await serve({ requestTimeoutMs: 200 });
    const stream = await openEventStream(port, '/dashboard/events');
    cleanup.add(() => stream.close());
    await stream.message(0);
    // A connection opened after the stream, with a request that never completes, is
    // closed by its deadline: the stream's (armed earlier) would have fired by then.
    await rawExchange(port, 'GET / HTTP/1.1\r\n');
    events.publish('have-received', { chunk: 1, from: '127.0.0.1:7009' });
    clock.advance(250);
    expect(JSON.parse(await stream.message(1)).type).toBe('delta');
  });

  it('with a token, the page, state and stream need it', async () => {
    const { port } = await serve({ token: 'sekrit' });
    expect((await httpGet(port, '/')).status).toBe(401);
    expect((await httpGet(port, '/dashboard/state')).status).toBe(401);
    expect((await httpGet(port, '/dashboard/events')).status).toBe(401);
    expect((await httpGet(port, '/?key=wrong')).status).toBe(401);
    expect((await httpGet(port, '/?key=sekrit')).status).toBe(200);
    const state = await httpGet(port, '/dashboard/state', {
      headers: { authorization: 'Bearer sekrit' },
    });
    expect(JSON.parse(state.body.toString()).type).toBe('full');
    const stream = await openEventStream(port, '/dashboard/events?key=sekrit');
    cleanup.add(() => stream.close());
    expect(stream.status).toBe(200);
    const post = (key: string) =>
      httpGet(port, `${DASHBOARD_REPORT_PATH}${key}`, {
        method: 'POST',
        body: JSON.stringify(report),
      });
    expect((await post('')).status).toBe(401);
    expect((await post('?key=sekrit')).status).toBe(204);
  });

  it('takes a peer report into the model, and refuses a bad one with a one-line 400', async () => {
    const { port, model } = await serve();
    const post = (body: string) => httpGet(port, DASHBOARD_REPORT_PATH, { method: 'POST', body });
    expect((await post(JSON.stringify(report))).status).toBe(204);
    const nodes = model.full().nodes as { id: string; map: string }[];
    expect(nodes.find((n) => n.id === '127.0.0.1:7001')).toMatchObject({ map: '5s5.' });
    for (const [body, message] of [
      ['{', 'report: body is not JSON'],
      [JSON.stringify({ ...report, map: '5s4.' }), 'map: 9 chunks, expected 10'],
      [JSON.stringify({ ...report, port: 0 }), 'port must be'],
    ] as const) {
      const res = await post(body);
      expect(res.status).toBe(400);
      expect(res.body.toString()).toContain(message);
      expect(res.body.toString().trim()).not.toContain('\n');
    }
    const huge = await post(JSON.stringify({ ...report, map: 'x'.repeat(600 * 1024) }));
    expect(huge.status).toBe(413);
    expect((await httpGet(port, DASHBOARD_REPORT_PATH)).status).toBe(405);
    expect((await httpGet(port, '/', { method: 'POST', body: '{}' })).status).toBe(405);
  });

  // A report from another address, or for a port its address never announced,
  // named a node as it liked: it could speak for a real peer, or make up new ones.
  it('refuses with a one-line 403 a report for a port not announced from its address', async () => {
    const { port, model } = await serve();
    const post = (body: object, localAddress?: string) =>
      httpGet(port, DASHBOARD_REPORT_PATH, {
        method: 'POST',
        body: JSON.stringify(body),
        ...(localAddress ? { localAddress } : {}),
      });
    const ids = () => (model.full().nodes as { id: string }[]).map((n) => n.id);
    const before = ids();
    const elsewhere = await post(report, '127.0.0.2');
    expect(elsewhere.status).toBe(403);
    expect(elsewhere.body.toString()).toBe(
      'report for 127.0.0.2:7001: no announce from that address and port\n',
    );
    expect((await post({ ...report, port: 7002 })).status).toBe(403);
    expect(ids()).toEqual(before);
    expect((await post(report)).status).toBe(204);
    expect(ids()).toContain('127.0.0.1:7001');
  });

  // 16 idle viewers held every slot for as long as the swarm was quiet; a 17th got a 503.
  it('at the cap, a new viewer ends the longest-connected stream of the address with the most', async () => {
    const { port, dashboard } = await serve({ maxClients: 3 });
    const open = async (localAddress: string) => {
      const stream = await openEventStream(port, '/dashboard/events', {}, { localAddress });
      cleanup.add(() => stream.close());
      expect(stream.status).toBe(200);
      await stream.message(0);
      return stream;
    };
    const tab = await open('127.0.0.1');
    const idle1 = await open('127.0.0.2');
    const idle2 = await open('127.0.0.2');
    expect(dashboard.clientCount).toBe(3);
    // The idle address holds two of the three: its oldest goes first, not the tab.
    const newcomer = await open('127.0.0.3');
    await idle1.ended;
    expect(dashboard.clientCount).toBe(3);
    // Now every address holds one: the longest-connected goes.
    await open('127.0.0.4');
    await tab.ended;
    expect(dashboard.clientCount).toBe(3);
    expect(idle2.messages).toHaveLength(1);
    expect(newcomer.messages).toHaveLength(1);
  });

  it('tells a reporting peer to come back every second while a browser watches, less often otherwise', async () => {
    const { port } = await serve();
    const next = async () => {
      const res = await httpGet(port, DASHBOARD_REPORT_PATH, {
        method: 'POST',
        body: JSON.stringify(report),
      });
      expect(res.status).toBe(204);
      return Number(res.headers[DASHBOARD_REPORT_HEADER]);
    };
    expect(await next()).toBe(DASHBOARD_REPORT_IDLE_MS);
    const stream = await openEventStream(port, '/dashboard/events');
    expect(await next()).toBe(DASHBOARD_REPORT_WATCHED_MS);
    stream.close();
    // The stream's end reaches the server asynchronously: ask until it has.
    let hint = DASHBOARD_REPORT_WATCHED_MS;
    while (hint === DASHBOARD_REPORT_WATCHED_MS) hint = await next();
    expect(hint).toBe(DASHBOARD_REPORT_IDLE_MS);
  });
});
