// Small inline-SVG charts, drawn with DOM calls (no library, nothing fetched).

import { h, s } from './dom.js';

const W = 960;
const H = 200;
const PAD = { l: 52, r: 10, t: 10, b: 24 };
export const OUTCOME_COLOURS = { delivered: '#2e7d32', failed: '#b26a00', error: '#c62828' };
export const SERIES_COLOURS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#9467bd', '#8c564b', '#e377c2'];

function niceMax(v) {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((m) => m * p).find((n) => n >= v);
}

function frame(svg, yMax, fmt, t0, minutes) {
  const x0 = PAD.l; const x1 = W - PAD.r; const y0 = H - PAD.b; const y1 = PAD.t;
  for (const f of [0, 0.5, 1]) {
    const y = y0 - (y0 - y1) * f;
    svg.append(s('line', { class: 'axis', x1: x0, x2: x1, y1: y, y2: y }));
    svg.append(s('text', { x: x0 - 4, y: y + 3, 'text-anchor': 'end' }, fmt(yMax * f)));
  }
  for (let m = 0; m <= minutes; m += 15) {
    const x = x0 + ((x1 - x0) * m) / minutes;
    const label = new Date(t0 + m * 60000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    svg.append(s('text', { x, y: H - 6, 'text-anchor': m === 0 ? 'start' : (m === minutes ? 'end' : 'middle') }, label));
  }
  return { x0, x1, y0, y1 };
}

function svgRoot(label) {
  return s('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label });
}

/**
 * Stacked bars per minute. `points`: [{ t: ms, values: {delivered: n, ...} }], `keys` in
 * stacking order, window [t0, t0 + minutes).
 */
export function stackedBars({ points, keys, t0, minutes, label }) {
  const svg = svgRoot(label);
  const totals = points.map((p) => keys.reduce((a, k) => a + (p.values[k] || 0), 0));
  const yMax = niceMax(Math.max(0, ...totals));
  const { x0, x1, y0, y1 } = frame(svg, yMax, (v) => (Number.isInteger(v) ? String(v) : v.toFixed(1)), t0, minutes);
  const bw = (x1 - x0) / minutes;
  for (const p of points) {
    const i = Math.floor((p.t - t0) / 60000);
    if (i < 0 || i >= minutes) continue;
    let y = y0;
    for (const k of keys) {
      const v = p.values[k] || 0;
      if (!v) continue;
      const hgt = ((y0 - y1) * v) / yMax;
      y -= hgt;
      svg.append(s('rect', { x: x0 + i * bw + 1, y, width: Math.max(1, bw - 2), height: hgt, fill: OUTCOME_COLOURS[k] || '#888' },
        s('title', {}, `${new Date(p.t).toLocaleTimeString()} ${k}: ${v}`)));
    }
  }
  return svg;
}

/** Lines per series: `series`: [{ name, points: [{t, v}] }], values in microseconds. */
export function lines({ series, t0, minutes, label }) {
  const svg = svgRoot(label);
  const yMax = niceMax(Math.max(0, ...series.flatMap((se) => se.points.map((p) => p.v))));
  const { x0, x1, y0, y1 } = frame(svg, yMax, formatMicros, t0, minutes);
  const x = (t) => x0 + ((x1 - x0) * ((t - t0) / 60000 + 0.5)) / minutes;
  const y = (v) => y0 - ((y0 - y1) * v) / yMax;
  series.forEach((se, i) => {
    const colour = SERIES_COLOURS[i % SERIES_COLOURS.length];
    const pts = se.points.filter((p) => p.t >= t0);
    if (pts.length > 1) {
      svg.append(s('polyline', { points: pts.map((p) => `${x(p.t)},${y(p.v)}`).join(' '), fill: 'none', stroke: colour, 'stroke-width': 1.8 }));
    }
    for (const p of pts) {
      svg.append(s('circle', { cx: x(p.t), cy: y(p.v), r: 2.6, fill: colour },
        s('title', {}, `${se.name} ${new Date(p.t).toLocaleTimeString()}: ${formatMicros(p.v)}`)));
    }
  });
  return svg;
}

export function legend(entries) {
  return h('div', { class: 'legend' }, entries.map(([cls, text]) => h('span', {}, h('i', { class: cls }), text)));
}

export function formatMicros(us) {
  if (us >= 1e6) return `${(us / 1e6).toFixed(us >= 1e7 ? 0 : 1)} s`;
  if (us >= 1e3) return `${(us / 1e3).toFixed(us >= 1e4 ? 0 : 1)} ms`;
  return `${Math.round(us)} µs`;
}
