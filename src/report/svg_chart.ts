/**
 * Line charts as inline SVG for the HTML report (no script, no external font): one or more series
 * of (x, y) points on linear axes with "nice" ticks (1, 2, 5 x 10^k), tick labels, axis labels,
 * a title and a legend. Non-finite points break a line; a run of one point is drawn as a dot; a
 * chart with no finite point says "no data". All text is escaped.
 */
import { escapeHtml } from "./escape.ts";

export interface Series {
  name: string;
  points: readonly (readonly [number, number])[];
  /** CSS colour; default: the palette's next one. */
  color?: string;
  /** Draw a dot at every point (for short series such as one value per epoch). */
  dots?: boolean;
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  width?: number;
  height?: number;
}

/** Colour-blind-safe (Okabe-Ito). */
export const PALETTE = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9"];

const MARGIN = { left: 70, right: 16, top: 30, bottom: 46 };
const LEGEND_ROW = 18;

/** Ticks covering [lo, hi] (hi > lo) at a step of 1, 2 or 5 x 10^k, about `target` of them. */
export function niceTicks(lo: number, hi: number, target = 5): { ticks: number[]; step: number } {
  const raw = (hi - lo) / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  const k0 = Math.floor(lo / step + 1e-9);
  const k1 = Math.ceil(hi / step - 1e-9);
  const ticks: number[] = [];
  for (let k = k0; k <= k1; k++) ticks.push(k * step);
  return { ticks, step };
}

/** Formats tick values with as many decimals as the step needs (exponents for extremes). */
export function tickFormat(step: number, maxAbs: number): (v: number) => string {
  if (maxAbs >= 1e6 || step < 1e-4) {
    return (v) => v === 0 ? "0" : v.toExponential(2).replace(/\.?0+e/, "e");
  }
  const d = Math.max(0, Math.ceil(-Math.log10(step) - 1e-9));
  return (v) => {
    const s = v.toFixed(d);
    return /^-0(\.0*)?$/.test(s) ? s.slice(1) : s;
  };
}

/** The axis range of finite values: padded when all are equal. */
function extent(values: number[]): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo === hi) {
    const pad = Math.abs(lo) * 0.1 || 1;
    return [lo - pad, hi + pad];
  }
  return [lo, hi];
}

const fmt = (v: number) => String(Math.round(v * 100) / 100);

export function lineChart(series: readonly Series[], opts: ChartOptions): string {
  const W = opts.width ?? 640, H = opts.height ?? 300;
  const x0 = MARGIN.left, x1 = W - MARGIN.right;
  // Legend entries flow left to right above the plot, wrapping at its right edge.
  const legend: { x: number; row: number }[] = [];
  let lx = x0, row = 0;
  for (const s of series) {
    const w = 32 + 7 * s.name.length;
    if (lx > x0 && lx + w > x1) [lx, row] = [x0, row + 1];
    legend.push({ x: lx, row });
    lx += w + 8;
  }
  const top = MARGIN.top + (series.length > 0 ? (row + 1) * LEGEND_ROW : 0);
  const y0 = H - MARGIN.bottom, y1 = top;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="${W}" height="${H}" ` +
    `viewBox="0 0 ${W} ${H}" role="img" font-family="sans-serif" font-size="12">`,
    `<title>${escapeHtml(opts.title)}</title>`,
    `<text x="${x0}" y="18" font-size="14" font-weight="bold">${escapeHtml(opts.title)}</text>`,
  ];
  const colors = series.map((s, i) => s.color ?? PALETTE[i % PALETTE.length]);
  series.forEach((s, i) => {
    const c = escapeHtml(colors[i]);
    const { x } = legend[i], y = MARGIN.top + legend[i].row * LEGEND_ROW + 6;
    out.push(
      `<line x1="${x}" y1="${y}" x2="${x + 18}" y2="${y}" stroke="${c}" stroke-width="2"/>`,
      `<text x="${x + 22}" y="${y + 4}" class="legend">${escapeHtml(s.name)}</text>`,
    );
  });
  const finite = series.flatMap((s) =>
    s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y))
  );
  out.push(
    `<rect x="${x0}" y="${y1}" width="${x1 - x0}" height="${y0 - y1}" fill="none" ` +
      `stroke="#999"/>`,
  );
  if (finite.length === 0) {
    out.push(
      `<text x="${(x0 + x1) / 2}" y="${(y0 + y1) / 2}" text-anchor="middle" fill="#666" ` +
        `class="no-data">no data</text>`,
      "</svg>",
    );
    return out.join("\n");
  }
  const xt = niceTicks(...extent(finite.map((p) => p[0])));
  const yt = niceTicks(...extent(finite.map((p) => p[1])));
  const [xa, xb] = [xt.ticks[0], xt.ticks[xt.ticks.length - 1]];
  const [ya, yb] = [yt.ticks[0], yt.ticks[yt.ticks.length - 1]];
  const sx = (x: number) => x0 + (x - xa) / (xb - xa) * (x1 - x0);
  const sy = (y: number) => y0 - (y - ya) / (yb - ya) * (y0 - y1);
  const fx = tickFormat(xt.step, Math.max(Math.abs(xa), Math.abs(xb)));
  const fy = tickFormat(yt.step, Math.max(Math.abs(ya), Math.abs(yb)));
  for (const t of xt.ticks) {
    const x = fmt(sx(t));
    out.push(
      `<line x1="${x}" y1="${y1}" x2="${x}" y2="${y0 + 4}" stroke="#ddd"/>`,
      `<text x="${x}" y="${y0 + 17}" text-anchor="middle" class="tick">${escapeHtml(fx(t))}</text>`,
    );
  }
  for (const t of yt.ticks) {
    const y = fmt(sy(t));
    out.push(
      `<line x1="${x0 - 4}" y1="${y}" x2="${x1}" y2="${y}" stroke="#ddd"/>`,
      `<text x="${x0 - 7}" y="${y}" text-anchor="end" dominant-baseline="middle" class="tick">` +
        `${escapeHtml(fy(t))}</text>`,
    );
  }
  out.push(
    `<text x="${(x0 + x1) / 2}" y="${H - 8}" text-anchor="middle" class="axis-label">` +
      `${escapeHtml(opts.xLabel)}</text>`,
    `<text transform="translate(14 ${(y0 + y1) / 2}) rotate(-90)" text-anchor="middle" ` +
      `class="axis-label">${escapeHtml(opts.yLabel)}</text>`,
  );
  series.forEach((s, i) => {
    const c = escapeHtml(colors[i]);
    const name = escapeHtml(s.name);
    // Runs of consecutive finite points: a line each, a dot for a run of one.
    const runs: string[][] = [[]];
    for (const [x, y] of s.points) {
      if (Number.isFinite(x) && Number.isFinite(y)) {
        runs[runs.length - 1].push(`${fmt(sx(x))} ${fmt(sy(y))}`);
      } else if (runs[runs.length - 1].length > 0) runs.push([]);
    }
    for (const run of runs) {
      if (run.length >= 2) {
        out.push(
          `<path class="series" data-series="${name}" d="M${run.join("L")}" fill="none" ` +
            `stroke="${c}" stroke-width="1.5" stroke-linejoin="round"/>`,
        );
      }
      if (run.length === 1 || (s.dots && run.length > 0)) {
        for (const p of run) {
          const [cx, cy] = p.split(" ");
          out.push(
            `<circle class="point" data-series="${name}" cx="${cx}" cy="${cy}" r="3" ` +
              `fill="${c}"/>`,
          );
        }
      }
    }
  });
  out.push("</svg>");
  return out.join("\n");
}
