// @ts-check
// Charts of a completed backtest's stored analysis and exposure: rolling 252-session
// Sharpe, volatility and beta (GET /v1/backtest/{id}/analysis, `rolling`), and sector
// weights over time as a stacked area (GET /v1/backtest/{id}/exposure).

import { mountChart, PALETTE, toSeconds } from "../charts.js";
import { h } from "../dom.js";
import { num, pct } from "../format.js";

/** @typedef {import("../charts.js").ChartController} ChartController */
/** @typedef {{element: HTMLElement, mount: () => void, destroy: () => void}} ChartCard */

const SECTOR_COLORS = [...PALETTE, "#d4a017", "#6a3d9a", "#1b9e77", "#e7298a", "#66a61e", "#a6761d", "#7570b3", "#999999"];

/** @param {unknown} v */
const maybe = (v) => (typeof v === "number" && Number.isFinite(v) ? v : null);

/**
 * Pure: sectors ordered by mean weight (largest at the bottom of the stack) and the
 * running sums drawn as the stack's upper edges (first = the largest sector alone,
 * last = all sectors = invested fraction).
 * @param {Record<string, number[]>} weights
 * @returns {{names: string[], tops: number[][]}}
 */
export function stackSectors(weights) {
  const mean = (/** @type {number[]} */ w) => w.reduce((a, b) => a + b, 0) / (w.length || 1);
  const names = Object.keys(weights).sort((a, b) => mean(weights[b]) - mean(weights[a]) || a.localeCompare(b));
  /** @type {number[][]} */
  const tops = [];
  names.forEach((name, i) => {
    tops.push(weights[name].map((w, j) => (i ? tops[i - 1][j] : 0) + w));
  });
  return { names, tops };
}

/**
 * Sector weights as a stacked area: each band is one sector's weight of equity at
 * the close; the top edge is the invested fraction. uPlot fills each series down to
 * 0, so the tallest edge is drawn first and each lower one over it.
 * @param {{dates: string[], sector_weights: Record<string, number[]>}} exposure
 * @returns {ChartCard}
 */
export function sectorExposureChart(exposure) {
  const el = h("div", { class: "chart", id: "exposure-chart", role: "img", "aria-label": "Sector weights over time, stacked" });
  /** @type {ChartController | null} */
  let chart = null;
  const element = h("div", {}, h("h3", {}, "Sector exposure"), el,
    h("p", { class: "legend-note" }, "Each band is a sector's weight of equity at the close; the top edge is the invested fraction, the rest is cash."));
  const mount = () => {
    const { names, tops } = stackSectors(exposure.sector_weights || {});
    const order = names.map((_, i) => i).reverse();
    const raw = exposure.sector_weights || {};
    /** @type {import("../charts.js").ChartSpec["series"]} */
    const series = order.map((i) => ({
      label: names[i],
      stroke: SECTOR_COLORS[i % SECTOR_COLORS.length],
      fill: `${SECTOR_COLORS[i % SECTOR_COLORS.length]}cc`,
      width: 1,
      value: (u, v, s, idx) => (idx === null || idx === undefined ? "—" : pct(raw[names[i]][idx])),
    }));
    const data = /** @type {import("../charts.js").ChartSpec["data"]} */ (/** @type {unknown} */ ([exposure.dates.map(toSeconds), ...order.map((i) => tops[i])]));
    chart = mountChart(el, { data, series, yTick: (v) => pct(v, { digits: 0 }), height: 280 });
    el.dataset.sectors = String(names.length);
  };
  return { element, mount, destroy: () => chart?.destroy() };
}

/**
 * Rolling 252-session Sharpe, volatility and beta (to `rolling.beta_benchmark`, the
 * first benchmark), one small chart each, zoomed together.
 * @param {{dates?: string[], sharpe?: (number | null)[], volatility?: (number | null)[], beta?: (number | null)[] | null, beta_benchmark?: string | null}} rolling
 * @returns {ChartCard}
 */
export function rollingCharts(rolling) {
  const dates = rolling.dates || [];
  /** @type {Array<[string, string, (number | null)[] | null | undefined, (v: number) => string]>} */
  const specs = [
    ["sharpe", "Sharpe ratio", rolling.sharpe, (v) => num(v, 1)],
    ["volatility", "Volatility", rolling.volatility, (v) => pct(v, { digits: 0 })],
    ["beta", `Beta${rolling.beta_benchmark ? ` to ${rolling.beta_benchmark}` : ""}`, rolling.beta, (v) => num(v, 2)],
  ];
  const shown = specs.filter(([, , values]) => values && values.length);
  /** @type {ChartController[]} */
  const charts = [];
  const slots = shown.map(([key, label]) => h("div", { class: "chart", id: `rolling-${key}`, role: "img", "aria-label": `Rolling ${label}` }));
  const element = h("div", { id: "analysis-rolling" }, h("h3", {}, "Rolling 252-session statistics"),
    dates.length
      ? shown.map(([, label], i) => h("div", {}, h("p", { class: "small muted" }, label), slots[i]))
      : h("p", { class: "muted small" }, "Fewer than 252 sessions: no rolling window."));
  const mount = () => {
    const xs = dates.map(toSeconds);
    shown.forEach(([, label, values, tick], i) => {
      const ys = (values || []).map(maybe);
      const data = /** @type {import("../charts.js").ChartSpec["data"]} */ (/** @type {unknown} */ ([xs, ys]));
      charts.push(mountChart(slots[i], {
        data,
        series: [{ label, stroke: PALETTE[i], width: 1.5, value: (u, v) => (v === null || v === undefined ? "—" : tick(v)) }],
        yTick: tick,
        yAxisSize: 56,
        height: 160,
        syncKey: "rolling",
      }));
    });
  };
  return { element, mount, destroy: () => charts.forEach((c) => c.destroy()) };
}
