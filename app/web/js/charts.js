// @ts-check
// Charts on uPlot (vendored, MIT): equity vs benchmark, drawdown, overlaid equity curves.

import uPlot from "../vendor/uplot/uPlot.esm.js";
import { money, pct } from "./format.js";

export const PALETTE = ["#1f4fd1", "#e07b00", "#0b8f6a", "#b0279f", "#5b6b7f"];
export const BENCH_COLOR = "#8893a3";
export const LOSS_COLOR = "#c1272d";

/** "2024-08-26" → seconds since the epoch at UTC midnight (uPlot's time unit). */
/** @param {string} isoDate */
export function toSeconds(isoDate) {
  return Date.parse(`${String(isoDate).slice(0, 10)}T00:00:00Z`) / 1000;
}

/** @param {number} ts */
const utc = (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC");

/** @param {number | null | undefined} v */
export function compactMoney(v) {
  if (v === null || v === undefined) return "";
  const abs = Math.abs(v);
  if (abs >= 1e9) return `$${+(v / 1e9).toFixed(2)}B`;
  if (abs >= 1e6) return `$${+(v / 1e6).toFixed(2)}M`;
  if (abs >= 1e3) return `$${+(v / 1e3).toFixed(1)}k`;
  return `$${+v.toFixed(2)}`;
}

/** @param {number | null | undefined} ts */
function dateLabel(ts) {
  return ts === null || ts === undefined ? "—" : new Date(ts * 1000).toISOString().slice(0, 10);
}

/**
 * @typedef {{
 *   data: uPlot.AlignedData,
 *   series: uPlot.Series[],
 *   yTick: (v: number) => string,
 *   yAxisSize?: number,
 *   log?: boolean,
 *   height?: number,
 *   syncKey?: string,
 *   onZoom?: (min: number, max: number) => void,
 * }} ChartSpec
 * @typedef {{
 *   readonly plot: uPlot | null,
 *   setLog(on: boolean): void,
 *   setRange(min: number, max: number): void,
 *   resetZoom(): void,
 *   destroy(): void,
 * }} ChartController
 * @typedef {{syncKey?: string, onZoom?: (min: number, max: number) => void, log?: boolean}} ChartOptions
 */

/** The last non-null value of a column (null when there is none). @param {ArrayLike<number | null | undefined>} column */
export function lastValue(column) {
  for (let i = column.length - 1; i >= 0; i--) {
    const v = column[i];
    if (v !== null && v !== undefined) return v;
  }
  return null;
}

/**
 * A series whose legend shows the last value while the cursor is off the chart (uPlot
 * asks with no index then), instead of "—".
 * @param {uPlot.Series} series @returns {uPlot.Series}
 */
function lastWhenIdle(series) {
  const format = series.value;
  if (typeof format !== "function") return series;
  return {
    ...series,
    value: (u, v, sidx, idx) =>
      format(u, idx === null || idx === undefined ? /** @type {number} */ (lastValue(u.data[sidx])) : v, sidx, idx),
  };
}

const AXIS = { stroke: "#4f5d6e", grid: { stroke: "#eef1f5" }, ticks: { stroke: "#dfe4ea" } };

/**
 * uPlot options of a chart `width` pixels wide (log: logarithmic y scale).
 * @param {ChartSpec} spec @param {boolean} log @param {number} width
 * @returns {uPlot.Options}
 */
export function chartOptions(spec, log, width) {
  return {
    width,
    height: spec.height ?? 320,
    tzDate: utc,
    cursor: {
      drag: { x: true, y: false, setScale: true },
      sync: spec.syncKey ? { key: spec.syncKey, setSeries: false, scales: ["x", null] } : undefined,
    },
    legend: { live: true },
    scales: { x: { time: true }, y: log ? { distr: 3 } : { auto: true } },
    axes: [
      AXIS,
      { ...AXIS, size: spec.yAxisSize ?? 70, values: (u, vals) => vals.map((v) => spec.yTick(v)) },
    ],
    series: [/** @type {uPlot.Series} */ ({ label: "Date", value: (u, ts) => dateLabel(ts) }), ...spec.series].map(lastWhenIdle),
    hooks: {
      setScale: [
        (u, key) => {
          const { min, max } = u.scales.x;
          if (key === "x" && spec.onZoom && min !== undefined && max !== undefined) spec.onZoom(min, max);
        },
      ],
    },
  };
}

/**
 * mountChart(el, spec) → controller. `spec.data` is uPlot's aligned [xs, ys1, ys2, ...];
 * `spec.series` its series options (without the x series). Resizes with its container.
 * Drag to zoom, double-click to reset.
 * @param {HTMLElement} el @param {ChartSpec} spec
 * @returns {ChartController}
 */
export function mountChart(el, spec) {
  /** @type {uPlot | null} */
  let plot = null;
  let log = Boolean(spec.log);
  const height = spec.height ?? 320;

  /** @param {{min: number, max: number}} [range] */
  function build(range) {
    if (plot) plot.destroy();
    plot = new uPlot(chartOptions(spec, log, Math.max(240, el.clientWidth || 600)), spec.data, el);
    if (range) plot.setScale("x", range);
    el.dataset.seriesCount = String(spec.series.length);
    el.dataset.points = String(spec.data[0].length);
    el.dataset.scale = log ? "log" : "linear";
  }

  build();
  const observer = new ResizeObserver(() => {
    if (plot && el.clientWidth && Math.abs(plot.width - el.clientWidth) > 2) {
      plot.setSize({ width: el.clientWidth, height });
    }
  });
  observer.observe(el);

  return {
    get plot() {
      return plot;
    },
    setLog(on) {
      if (on === log) return;
      log = on;
      const { min, max } = plot?.scales.x ?? {};
      build(min !== undefined && max !== undefined ? { min, max } : undefined);
    },
    setRange(min, max) {
      if (plot && (plot.scales.x.min !== min || plot.scales.x.max !== max)) plot.setScale("x", { min, max });
    },
    resetZoom() {
      const xs = spec.data[0];
      if (plot && xs.length) plot.setScale("x", { min: xs[0], max: xs[xs.length - 1] });
    },
    destroy() {
      observer.disconnect();
      if (plot) plot.destroy();
      plot = null;
    },
  };
}

/**
 * @typedef {{date: string, equity: number, benchmark?: number | null}} EquityPoint
 * @typedef {{equity_curve?: EquityPoint[], drawdown_series?: {date: string, drawdown: number}[],
 *   benchmark_symbol?: string | null, monthly_returns?: Record<string, number | null>}} ChartData
 */

/** @param {unknown} v */
const moneyValue = (v) => (v === null || v === undefined ? "—" : money(v, 0));

/** @param {HTMLElement} el @param {ChartData} chartData @param {ChartOptions} [options] */
export function equityChart(el, chartData, { syncKey, onZoom, log = false } = {}) {
  const points = chartData.equity_curve || [];
  const xs = points.map((p) => toSeconds(p.date));
  const hasBench = points.some((p) => p.benchmark !== null && p.benchmark !== undefined);
  /** @type {(number | null)[][]} */
  const data = [xs, points.map((p) => p.equity)];
  /** @type {uPlot.Series[]} */
  const series = [{
    label: "Strategy",
    stroke: PALETTE[0],
    width: 2,
    fill: "rgba(31, 79, 209, 0.06)",
    value: (u, v) => moneyValue(v),
  }];
  if (hasBench) {
    data.push(points.map((p) => p.benchmark ?? null));
    series.push({
      label: `Benchmark${chartData.benchmark_symbol ? ` (${chartData.benchmark_symbol})` : ""}`,
      stroke: BENCH_COLOR,
      width: 1.5,
      dash: [6, 4],
      spanGaps: true,
      value: (u, v) => moneyValue(v),
    });
  }
  const aligned = /** @type {uPlot.AlignedData} */ (/** @type {unknown} */ (data));
  return mountChart(el, { data: aligned, series, yTick: compactMoney, syncKey, onZoom, log, height: 340 });
}

/** @param {HTMLElement} el @param {ChartData} chartData @param {ChartOptions} [options] */
export function drawdownChart(el, chartData, { syncKey, onZoom } = {}) {
  const points = chartData.drawdown_series || [];
  /** @type {uPlot.AlignedData} */
  const data = [points.map((p) => toSeconds(p.date)), points.map((p) => p.drawdown)];
  /** @type {uPlot.Series[]} */
  const series = [{
    label: "Drawdown",
    stroke: LOSS_COLOR,
    width: 1.5,
    fill: "rgba(193, 39, 45, 0.16)",
    value: (u, v) => (v === null || v === undefined ? "—" : pct(v)),
  }];
  return mountChart(el, { data, series, yTick: (v) => pct(v, { digits: 0 }), syncKey, onZoom, height: 200 });
}

/** Overlay several runs as cumulative return from each run's start (capital may differ). */
/**
 * @param {HTMLElement} el
 * @param {{label: string, chart: ChartData}[]} runs
 * @param {{log?: boolean}} [options]
 */
export function compareChart(el, runs, { log = false } = {}) {
  const tables = runs.map((run) => {
    const pts = run.chart.equity_curve || [];
    const base = pts[0]?.equity || 1;
    return /** @type {uPlot.AlignedData} */ ([pts.map((p) => toSeconds(p.date)), pts.map((p) => p.equity / base)]);
  });
  const data = uPlot.join(tables);
  /** @type {uPlot.Series[]} */
  const series = runs.map((run, i) => ({
    label: run.label,
    stroke: PALETTE[i % PALETTE.length],
    width: 2,
    spanGaps: true,
    value: (u, v) => (v === null || v === undefined ? "—" : pct(v - 1, { signed: true })),
  }));
  return mountChart(el, {
    data,
    series,
    yTick: (v) => pct(v - 1, { digits: 0, signed: true }),
    log,
    height: 380,
  });
}
