// A run's report for people: a Markdown table and an SVG chart of acknowledged
// writes per second with the fault, the recovery and the return to health marked.
import type { ChaosRun } from './run.ts';

export function markdown(runs: readonly ChaosRun[]): string {
  const rows = runs.map((r) => {
    const v = r.verdict;
    const nodes = v.intervals.map((i) => `${i.node} (${i.rows})`).join(' → ');
    return `| ${r.scenario} | ${r.fault} | ${v.outageMs === null ? 'writes never resumed' : `${(v.outageMs / 1000).toFixed(2)} s`} | ${v.acknowledged} | ${v.verified ? v.lost.length : 'unverified'} | ${r.writer.errors.length} | ${(r.writer.longestStatementMs / 1000).toFixed(2)} s | ${v.overlaps.length ? v.overlaps.map((o) => o.join('+')).join(', ') : 'none'} | ${nodes} | ${v.ok ? 'pass' : `**FAIL**${v.failure ? `: ${v.failure}` : ''}`} |`;
  });
  return [
    '| scenario | fault | write outage | acknowledged | lost | failed statements | longest statement | two primaries | writes by node | verdict |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function svg(run: ChaosRun, binMs = 250): string {
  const W = 800;
  const H = 260;
  const pad = { l: 50, r: 20, t: 30, b: 40 };
  const end = Math.max(run.endAt, 1);
  const bins = new Array<number>(Math.ceil(end / binMs)).fill(0);
  for (const a of run.writer.acks) bins[Math.min(bins.length - 1, Math.floor(a.at / binMs))]!++;
  const rate = bins.map((n) => (n * 1000) / binMs);
  const max = Math.max(1, ...rate);
  const x = (t: number) => pad.l + ((W - pad.l - pad.r) * t) / end;
  const y = (v: number) => H - pad.b - ((H - pad.t - pad.b) * v) / max;
  const path = rate
    .map((v, i) => `${i === 0 ? 'M' : 'L'}${x(i * binMs).toFixed(1)},${y(v).toFixed(1)} L${x((i + 1) * binMs).toFixed(1)},${y(v).toFixed(1)}`)
    .join(' ');
  const marker = (t: number, color: string, label: string) =>
    `<line x1="${x(t)}" x2="${x(t)}" y1="${pad.t}" y2="${H - pad.b}" stroke="${color}" stroke-dasharray="4 3"/><text x="${x(t) + 4}" y="${pad.t + 12}" fill="${color}" font-size="11">${esc(label)}</text>`;
  const ticks = Array.from({ length: Math.floor(end / 5000) + 1 }, (_, i) => i * 5000)
    .map((t) => `<text x="${x(t)}" y="${H - pad.b + 16}" font-size="10" text-anchor="middle">${t / 1000}s</text>`)
    .join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="${pad.l}" y="18" font-size="13">${esc(`${run.scenario}: ${run.fault}`)} — outage ${run.verdict.outageMs === null ? 'unbounded' : `${(run.verdict.outageMs / 1000).toFixed(2)} s`}, ${run.verdict.verified ? `lost ${run.verdict.lost.length}` : 'writes unverified'}</text>
<line x1="${pad.l}" x2="${W - pad.r}" y1="${H - pad.b}" y2="${H - pad.b}" stroke="#888"/>
<line x1="${pad.l}" x2="${pad.l}" y1="${pad.t}" y2="${H - pad.b}" stroke="#888"/>
<text x="${pad.l - 6}" y="${y(max) + 4}" font-size="10" text-anchor="end">${Math.round(max)}</text>
<text x="${pad.l - 6}" y="${H - pad.b}" font-size="10" text-anchor="end">0</text>
<text x="12" y="${(H - pad.b + pad.t) / 2}" font-size="10" transform="rotate(-90 12 ${(H - pad.b + pad.t) / 2})" text-anchor="middle">acknowledged writes/s</text>
${ticks}
<path d="${path}" fill="none" stroke="#2a7" stroke-width="1.5"/>
${marker(run.injectAt, '#c22', 'fault')}
${marker(run.recoverAt, '#27c', 'recovery')}
${marker(run.healthyAt, '#2a2', 'healthy')}
</svg>
`;
}
