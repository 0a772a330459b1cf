/**
 * A small hand-built SVG chart for `npm run bench`: line panels on log–log axes (x: message
 * size, y: msg/s), one line per series, and a bar panel. Text only, no dependency.
 */

export interface Series {
  readonly name: string;
  /** [x, y] points, x ascending. */
  readonly points: readonly (readonly [number, number])[];
}

export interface Panel {
  readonly title: string;
  readonly series: readonly Series[];
  /** Label of an x value. */
  readonly x: (v: number) => string;
}

export interface Bars {
  readonly title: string;
  readonly groups: readonly { name: string; values: Record<string, number> }[];
}

const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728'];
const W = 420;
const H = 260;
const M = { left: 64, right: 16, top: 32, bottom: 44 };

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const fmt = (v: number) =>
  v >= 1e6
    ? `${+(v / 1e6).toPrecision(2)}M`
    : v >= 1e3
      ? `${+(v / 1e3).toPrecision(2)}k`
      : `${+v.toPrecision(2)}`;

function text(x: number, y: number, s: string, extra = ''): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${extra}>${esc(s)}</text>`;
}

function linePanel(p: Panel, ox: number, oy: number): string {
  const xs = [...new Set(p.series.flatMap((s) => s.points.map(([x]) => x)))].sort((a, b) => a - b);
  const ys = p.series.flatMap((s) => s.points.map(([, y]) => y)).filter((y) => y > 0);
  const lo = 10 ** Math.floor(Math.log10(Math.min(...ys)));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...ys)));
  const iw = W - M.left - M.right;
  const ih = H - M.top - M.bottom;
  const px = (x: number) =>
    ox + M.left + (xs.length === 1 ? iw / 2 : (xs.indexOf(x) / (xs.length - 1)) * iw);
  const py = (y: number) =>
    oy + M.top + ih - ((Math.log10(Math.max(y, lo)) - Math.log10(lo)) / Math.log10(hi / lo)) * ih;
  const out: string[] = [
    text(ox + W / 2, oy + 18, p.title, 'text-anchor="middle" font-weight="bold"'),
  ];
  for (let d = lo; d <= hi; d *= 10) {
    const y = py(d);
    out.push(
      `<line x1="${ox + M.left}" x2="${ox + W - M.right}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="#ddd"/>`,
      text(ox + M.left - 6, y + 4, fmt(d), 'text-anchor="end"'),
    );
  }
  for (const x of xs) out.push(text(px(x), oy + H - M.bottom + 16, p.x(x), 'text-anchor="middle"'));
  out.push(text(ox + W / 2, oy + H - 8, 'message size', 'text-anchor="middle" fill="#555"'));
  p.series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    const d = s.points.map(
      ([x, y], j) => `${j ? 'L' : 'M'}${px(x).toFixed(1)},${py(y).toFixed(1)}`,
    );
    out.push(`<path d="${d.join(' ')}" fill="none" stroke="${c}" stroke-width="2"/>`);
    for (const [x, y] of s.points)
      out.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" fill="${c}"/>`);
    const ly = oy + M.top + 4 + i * 14;
    out.push(
      `<rect x="${ox + W - M.right - 110}" y="${ly - 8}" width="10" height="10" fill="${c}"/>`,
      text(ox + W - M.right - 96, ly + 1, s.name),
    );
  });
  return out.join('\n');
}

function barPanel(b: Bars, ox: number, oy: number): string {
  const keys = [...new Set(b.groups.flatMap((g) => Object.keys(g.values)))];
  const all = b.groups.flatMap((g) => Object.values(g.values));
  const max = Math.max(1, ...all);
  const min = Math.min(0, ...all);
  const iw = W - M.left - M.right;
  const ih = H - M.top - M.bottom;
  const py = (v: number) => oy + M.top + ((max - v) / (max - min)) * ih;
  const out: string[] = [
    text(ox + W / 2, oy + 18, b.title, 'text-anchor="middle" font-weight="bold"'),
  ];
  out.push(
    `<line x1="${ox + M.left}" x2="${ox + W - M.right}" y1="${py(0).toFixed(1)}" y2="${py(0).toFixed(1)}" stroke="#999"/>`,
  );
  const gw = iw / b.groups.length;
  const bw = (gw * 0.6) / keys.length;
  b.groups.forEach((g, gi) => {
    const gx = ox + M.left + gi * gw + gw * 0.2;
    keys.forEach((k, ki) => {
      const v = g.values[k] ?? 0;
      const y0 = py(Math.max(0, v));
      const h = Math.abs(py(v) - py(0));
      const x = gx + ki * bw;
      out.push(
        `<rect x="${x.toFixed(1)}" y="${y0.toFixed(1)}" width="${(bw - 4).toFixed(1)}" height="${h.toFixed(1)}" fill="${COLORS[ki % COLORS.length]}"/>`,
        text(x + bw / 2 - 2, y0 - 4, `${v.toFixed(1)}`, 'text-anchor="middle"'),
      );
    });
    out.push(text(gx + gw * 0.3, oy + H - M.bottom + 16, g.name, 'text-anchor="middle"'));
  });
  keys.forEach((k, ki) => {
    const ly = oy + M.top + 4 + ki * 14;
    out.push(
      `<rect x="${ox + W - M.right - 80}" y="${ly - 8}" width="10" height="10" fill="${COLORS[ki % COLORS.length]}"/>`,
      text(ox + W - M.right - 66, ly + 1, k),
    );
  });
  return out.join('\n');
}

/** The chart: line panels two per row, then the bar panel. */
export function svgChart(c: { title: string; panels: readonly Panel[]; bars?: Bars }): string {
  const cells = c.panels.length + (c.bars ? 1 : 0);
  const rows = Math.ceil(cells / 2);
  const width = 2 * W;
  const height = 30 + rows * H;
  const parts = c.panels.map((p, i) => linePanel(p, (i % 2) * W, 30 + Math.floor(i / 2) * H));
  if (c.bars) {
    const i = c.panels.length;
    parts.push(barPanel(c.bars, (i % 2) * W, 30 + Math.floor(i / 2) * H));
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11" role="img">
<title>${esc(c.title)}</title>
<rect width="100%" height="100%" fill="#fff"/>
${text(width / 2, 20, c.title, 'text-anchor="middle" font-size="14" font-weight="bold"')}
${parts.join('\n')}
</svg>
`;
}
