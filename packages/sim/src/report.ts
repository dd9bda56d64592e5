import type { SimResult } from './sim.js';

const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : 'incomplete');

/** The one-screen summary of a run. */
export function summary(r: SimResult): string {
  const s = r.scenario;
  const mib = (b: number) => `${(b / 1_048_576).toFixed(b < 100 * 1_048_576 ? 2 : 0)} MiB`;
  return [
    `scenario  ${s.name}: ${s.peers} peers, ${mib(s.fileBytes)} in ${s.pieceBytes / 1024} KiB pieces, seed ${s.seed}`,
    `bound     D_min ${r.minimumSeconds.toFixed(2)} s (max(F/u_s, F/d_min, N·F/(u_s+Σu_i)))`,
    `complete  ${r.completed} of ${r.survivors} survivors`,
    `ratio     p50 ${f2(r.ratio.p50)}  p90 ${f2(r.ratio.p90)}  p99 ${f2(r.ratio.p99)}  max ${f2(r.ratio.max)}  (completion / D_min)`,
    `owner     ${r.ownerCopies.toFixed(3)} copies uploaded`,
    `out       every piece outside the owner at ${r.allPiecesOutAt === undefined ? 'never' : `${r.allPiecesOutAt.toFixed(2)} s`}`,
    `run       ${r.simulatedSeconds.toFixed(2)} s simulated, ${r.messages} messages`,
  ].join('\n');
}

/** The numbers of a run as JSON (per-peer outcomes included). */
export function toJson(r: SimResult): string {
  return `${JSON.stringify(
    r,
    (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v),
    2,
  )}\n`;
}

/** Peers complete over time, as an SVG: the share of survivors holding the file against seconds, D_min marked. */
export function completionSvg(r: SimResult): string {
  const w = 640;
  const h = 360;
  const m = { l: 56, r: 16, t: 28, b: 44 };
  const times = r.peers
    .filter((p) => p.completedAt !== undefined)
    .map((p) => p.completedAt!)
    .sort((a, b) => a - b);
  const xMax = Math.max(r.minimumSeconds * 1.1, ...times, 1e-9) * 1.02;
  const x = (t: number) => m.l + (t / xMax) * (w - m.l - m.r);
  const y = (share: number) => h - m.b - share * (h - m.t - m.b);
  const n = Math.max(1, r.survivors);
  let path = `M${x(0).toFixed(1)},${y(0).toFixed(1)}`;
  times.forEach((t, i) => {
    path += ` L${x(t).toFixed(1)},${y(i / n).toFixed(1)} L${x(t).toFixed(1)},${y((i + 1) / n).toFixed(1)}`;
  });
  const ticks = Array.from({ length: 6 }, (_, i) => (xMax * i) / 5);
  const s = r.scenario;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="sans-serif" font-size="12">
<rect width="${w}" height="${h}" fill="white"/>
<text x="${m.l}" y="18">${escapeXml(s.name)}: ${s.peers} peers, completion over time (D_min ${r.minimumSeconds.toFixed(1)} s)</text>
<line x1="${m.l}" y1="${y(0)}" x2="${w - m.r}" y2="${y(0)}" stroke="black"/>
<line x1="${m.l}" y1="${y(0)}" x2="${m.l}" y2="${y(1)}" stroke="black"/>
${ticks.map((t) => `<text x="${x(t).toFixed(1)}" y="${h - m.b + 16}" text-anchor="middle">${t.toFixed(t < 10 ? 1 : 0)}</text>`).join('\n')}
<text x="${(w + m.l) / 2}" y="${h - 8}" text-anchor="middle">seconds</text>
${[0, 0.5, 1].map((v) => `<text x="${m.l - 6}" y="${y(v) + 4}" text-anchor="end">${v * 100}%</text>`).join('\n')}
<line x1="${x(r.minimumSeconds).toFixed(1)}" y1="${y(0)}" x2="${x(r.minimumSeconds).toFixed(1)}" y2="${y(1)}" stroke="gray" stroke-dasharray="4 3"/>
<text x="${(x(r.minimumSeconds) + 4).toFixed(1)}" y="${y(1) + 12}" fill="gray">D_min</text>
<path d="${path}" fill="none" stroke="#1f6feb" stroke-width="2"/>
</svg>
`;
}

function escapeXml(text: string): string {
  return text.replace(
    /[<>&"]/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!,
  );
}
