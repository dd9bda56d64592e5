// swarmdrop's live dashboard: one EventSource, a full state then deltas
// (packages/service/src/dashboard/model.ts describes the format), drawn as
// an SVG graph, a table with a chunk map per node, and the recent events.

(() => {
  const COLORS = {
    '.': '#e9ecef',
    o: '#e09f1f',
    n: '#2a9d8f',
    s: '#3d7ab8',
    f: '#d7263d',
    d: '#8d99ae',
    h: '#b5d6d8',
  };
  const SVG = 'http://www.w3.org/2000/svg';
  const key = new URLSearchParams(location.search).get('key');
  const query = key ? `?key=${encodeURIComponent(key)}` : '';

  const state = {
    self: -1,
    file: null,
    nodes: new Map(),
    edges: new Map(),
    totals: {},
    events: [],
  };
  let frame = 0;

  /** "120o30n" to a string of one code per chunk. */
  function decodeRuns(runs) {
    let out = '';
    for (const [, count, code] of runs.matchAll(/(\d+)(.)/g)) out += code.repeat(Number(count));
    return out;
  }

  function applyNode(n) {
    const node = state.nodes.get(n.i) ?? { map: '', mapChanged: true };
    const { map, set, ...stats } = n;
    Object.assign(node, stats);
    if (map !== undefined) node.map = decodeRuns(map);
    if (set !== undefined) {
      const codes = node.map.split('');
      for (const [, code, index] of set.matchAll(/(\D)(\d+)/g)) codes[Number(index)] = code;
      node.map = codes.join('');
    }
    if (map !== undefined || set !== undefined) node.mapChanged = true;
    state.nodes.set(n.i, node);
  }

  function apply(update) {
    if (update.type === 'full') {
      state.self = update.self;
      state.nodes.clear();
      state.edges.clear();
      state.events = [];
      document.querySelector('#peers tbody').replaceChildren();
    }
    if ('file' in update) state.file = update.file;
    for (const n of update.nodes ?? []) applyNode(n);
    for (const i of update.removedNodes ?? []) {
      state.nodes.get(i)?.row?.remove();
      state.nodes.delete(i);
    }
    for (const e of update.edges ?? []) state.edges.set(`${e.a}>${e.b}`, e);
    for (const k of update.removedEdges ?? []) state.edges.delete(k);
    state.totals = update.totals ?? state.totals;
    if (update.swarm) state.swarm = update.swarm;
    state.events = state.events.concat(update.events ?? []).slice(-50);
    if (!frame) frame = requestAnimationFrame(render);
  }

  function bytes(n) {
    const units = ['B', 'KiB', 'MiB', 'GiB'];
    let u = 0;
    while (n >= 1024 && u < units.length - 1) {
      n /= 1024;
      u++;
    }
    return `${n.toFixed(u === 0 ? 0 : 1)} ${units[u]}`;
  }
  const rate = (n) => `${bytes(n)}/s`;
  const eta = (s) =>
    s === null ? '–' : s === 0 ? 'done' : s < 120 ? `${s} s` : `${Math.round(s / 60)} min`;
  const percent = (node) => {
    const chunks = state.file?.chunks ?? 0;
    return chunks === 0 ? 0 : Math.floor((100 * node.held) / chunks);
  };

  function el(tag, attrs = {}, ns) {
    const e = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    return e;
  }

  /**
   * The owner in the middle (or this peer, on a peer's page), everyone else on
   * a circle in the order their links run, so that a ring is drawn as one.
   */
  function layout() {
    const nodes = [...state.nodes.values()];
    const centre = nodes.find((n) => n.kind === 'owner') ?? state.nodes.get(state.self);
    const byId = (a, b) => a.id.localeCompare(b.id, 'en', { numeric: true });
    const left = new Set(nodes.filter((n) => n !== centre).sort(byId));
    const linked = (a, b) => state.edges.has(`${a.i}>${b.i}`) || state.edges.has(`${b.i}>${a.i}`);
    const ring = [];
    while (left.size > 0) {
      const last = ring[ring.length - 1];
      const next = (last && [...left].find((n) => linked(last, n))) ?? [...left][0];
      ring.push(next);
      left.delete(next);
    }
    const at = new Map();
    if (centre) at.set(centre.i, { x: 0, y: 0 });
    ring.forEach((n, k) => {
      const angle = (2 * Math.PI * k) / ring.length - Math.PI / 2;
      at.set(n.i, { x: 230 * Math.cos(angle), y: 230 * Math.sin(angle) });
    });
    return at;
  }

  function renderGraph() {
    const at = layout();
    const maxRate = Math.max(1, ...[...state.edges.values()].map((e) => e.rate));
    const maxBytes = Math.max(1, ...[...state.edges.values()].map((e) => e.bytes));
    const edges = [];
    for (const e of state.edges.values()) {
      const a = at.get(e.a);
      const b = at.get(e.b);
      if (!a || !b) continue;
      // Stop short of the target's circle so the arrow shows, and shift each
      // direction a little to its left so that A→B and B→A are both visible.
      const dx = b.x - a.x;
      const dy = b.y - a.y;
      const len = Math.hypot(dx, dy) || 1;
      const ox = (dy / len) * 5;
      const oy = (-dx / len) * 5;
      const from = state.nodes.get(e.a);
      const line = el(
        'line',
        {
          class: `edge${e.rate > 0 ? ' active' : ''}${from?.kind === 'owner' ? ' from-owner' : ''}`,
          x1: a.x + (dx * 18) / len + ox,
          y1: a.y + (dy * 18) / len + oy,
          x2: b.x - (dx * 20) / len + ox,
          y2: b.y - (dy * 20) / len + oy,
          'stroke-width': (e.rate > 0
            ? 1.5 + 5 * Math.sqrt(e.rate / maxRate)
            : 1 + 3 * Math.sqrt(e.bytes / maxBytes)
          ).toFixed(1),
          'data-from': from?.id ?? '',
          'data-to': state.nodes.get(e.b)?.id ?? '',
          'data-rate': e.rate,
        },
        SVG,
      );
      const title = el('title', {}, SVG);
      title.textContent = `${from?.id} → ${state.nodes.get(e.b)?.id}: ${rate(e.rate)}, ${bytes(e.bytes)} in all`;
      line.append(title);
      edges.push(line);
    }
    document.getElementById('edges').replaceChildren(...edges);
    const nodes = [];
    for (const n of state.nodes.values()) {
      const p = at.get(n.i);
      const g = el(
        'g',
        {
          class: `node ${n.kind}${n.done ? ' done' : ''}`,
          transform: `translate(${p.x.toFixed(1)} ${p.y.toFixed(1)})`,
          'data-id': n.id,
          'data-kind': n.kind,
          'data-progress': percent(n),
        },
        SVG,
      );
      g.append(el('circle', { r: n.kind === 'owner' ? 18 : 14 }, SVG));
      // The label sits outside the circle, away from the centre, clear of the edges.
      const r = Math.hypot(p.x, p.y);
      const label = el(
        'text',
        r > 0 ? { x: (p.x / r) * 48, y: (p.y / r) * 36 + 6 } : { y: 40 },
        SVG,
      );
      label.textContent = `${n.id.replace(/^.*:/, ':')}${n.i === state.self ? ' (this)' : ''} ${percent(n)}%`;
      const title = el('title', {}, SVG);
      title.textContent = `${n.id} (${n.kind}): ${percent(n)}%, ${n.conns} connections`;
      g.append(label, title);
      nodes.push(g);
    }
    document.getElementById('nodes').replaceChildren(...nodes);
  }

  function drawMap(canvas, map) {
    const chunks = map.length;
    const cols = Math.min(Math.max(chunks, 1), 250);
    const rows = Math.max(1, Math.ceil(chunks / cols));
    canvas.width = cols;
    canvas.height = rows;
    canvas.style.height = `${Math.min(48, Math.max(12, rows * 6))}px`;
    const ctx = canvas.getContext('2d');
    for (let i = 0; i < chunks; i++) {
      ctx.fillStyle = COLORS[map[i]] ?? COLORS.h;
      ctx.fillRect(i % cols, Math.floor(i / cols), 1, 1);
    }
    canvas.dataset.map = map;
  }

  function renderTable() {
    const body = document.querySelector('#peers tbody');
    const sorted = [...state.nodes.values()].sort(
      (a, b) =>
        (a.kind === 'owner' ? -1 : 0) - (b.kind === 'owner' ? -1 : 0) ||
        a.id.localeCompare(b.id, 'en', { numeric: true }),
    );
    for (const n of sorted) {
      if (!n.row) {
        n.row = el('tr', { 'data-id': n.id });
        n.row.innerHTML =
          '<td class="id"></td><td class="progress"><span class="bar"><b></b></span><span class="pct"></span></td>' +
          '<td class="num down"></td><td class="num up"></td><td class="num eta"></td><td class="num conns"></td>' +
          '<td class="map-cell"><canvas class="map"></canvas></td>';
      }
      body.append(n.row); // keeps the order
      const cell = (c) => n.row.querySelector(c);
      cell('.id').textContent = `${n.id}${n.i === state.self ? ' (this)' : ''}`;
      cell('.id').className = `id kind-${n.kind}`;
      cell('.id').title = n.kind;
      cell('.bar b').style.width = `${percent(n)}%`;
      cell('.pct').textContent = `${percent(n)}% (${n.held}/${state.file?.chunks ?? '?'})`;
      n.row.dataset.progress = percent(n);
      n.row.dataset.held = n.held;
      cell('.down').textContent = rate(n.down);
      cell('.up').textContent = rate(n.up);
      cell('.eta').textContent = eta(n.eta);
      cell('.conns').textContent = n.conns;
      if (n.mapChanged) {
        drawMap(cell('canvas'), n.map);
        n.mapChanged = false;
      }
    }
  }

  function renderEvents() {
    const list = document.getElementById('events');
    list.replaceChildren(
      ...state.events
        .slice()
        .reverse()
        .map((e) => {
          const li = el('li', { class: `ev-${e.event}` });
          li.textContent = `+${(e.t / 1000).toFixed(1)} s  ${e.event}  ${e.text}`;
          return li;
        }),
    );
    if (state.events.length === 0) list.innerHTML = '<li>none so far</li>';
  }

  // The owner's whole swarm in aggregate: at thousands of peers the graph and
  // table show a sample, this line all of them.
  function renderSwarm() {
    const s = state.swarm;
    const line = document.getElementById('swarm');
    if (!s) return;
    line.hidden = false;
    const buckets = (s.progress ?? [])
      .slice(0, 10)
      .map((count, i) => `${i * 10}–${i * 10 + 9}%: ${count}`)
      .join(' · ');
    const slowest = (s.slowest ?? [])
      .slice(0, 3)
      .map((p) => `${p.address} (${p.holds})`)
      .join(', ');
    const top = (s.topServed ?? [])
      .slice(0, 3)
      .map((p) => `${p.address} (${bytes(p.bytesServed)})`)
      .join(', ');
    line.textContent =
      `whole swarm: ${s.peers} peers, ${s.connected} connected, ${s.complete} complete · ` +
      `by share held: ${buckets}` +
      (slowest ? ` · slowest: ${slowest}` : '') +
      (top ? ` · served most: ${top}` : '');
  }

  function render() {
    frame = 0;
    const f = state.file;
    document.getElementById('file').textContent = f
      ? `${f.name}: ${bytes(f.size)} in ${f.chunks} chunks of ${bytes(f.chunkSize)}`
      : 'waiting for the metainfo';
    const t = state.totals;
    const peers = [...state.nodes.values()].filter((n) => n.kind !== 'owner');
    const done = peers.filter((n) => f && n.held >= f.chunks).length;
    document.getElementById('totals').textContent =
      `${peers.length} peers, ${done} complete · swarm moving ${rate(t.rate ?? 0)} · ` +
      `this process: ${rate(t.down ?? 0)} down, ${rate(t.up ?? 0)} up, ${bytes(t.upTotal ?? 0)} sent in all`;
    renderSwarm();
    renderGraph();
    renderTable();
    renderEvents();
    document.getElementById('status').textContent =
      `live · updated ${new Date().toLocaleTimeString()}`;
  }

  const source = new EventSource(`dashboard/events${query}`);
  source.onmessage = (message) => apply(JSON.parse(message.data));
  source.onerror = () => {
    document.getElementById('status').textContent = 'disconnected; retrying…';
  };
})();
