// Charts on uPlot (vendored, MIT): equity vs benchmark, drawdown, overlaid equity curves.

import uPlot from "../vendor/uplot/uPlot.esm.js";
import { money, pct } from "./format.js";

export const PALETTE = ["#1f4fd1", "#e07b00", "#0b8f6a", "#b0279f", "#5b6b7f"];
export const BENCH_COLOR = "#8893a3";
export const LOSS_COLOR = "#c1272d";

/** "2024-08-26" → seconds since the epoch at UTC midnight (uPlot's time unit). */
export function toSeconds(isoDate) {
  return Date.parse(`${String(isoDate).slice(0, 10)}T00:00:00Z`) / 1000;
}

const utc = (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC");

function compactMoney(v) {
  if (v === null || v === undefined) return "";
  const abs = Math.abs(v);
  if (abs >= 1e9) return `$${+(v / 1e9).toFixed(2)}B`;
  if (abs >= 1e6) return `$${+(v / 1e6).toFixed(2)}M`;
  if (abs >= 1e3) return `$${+(v / 1e3).toFixed(1)}k`;
  return `$${+v.toFixed(2)}`;
}

function dateLabel(ts) {
  return ts === null || ts === undefined ? "—" : new Date(ts * 1000).toISOString().slice(0, 10);
}

/**
 * mountChart(el, {data, series, yAxis, log, height, syncKey, onZoom}) → controller.
 * `data` is uPlot's aligned [xs, ys1, ys2, ...]; `series` its series options (without
 * the x series). Resizes with its container. Drag to zoom, double-click to reset.
 */
export function mountChart(el, opts) {
  let plot = null;
  let log = Boolean(opts.log);
  const height = opts.height ?? 320;

  function build(range) {
    const width = Math.max(240, el.clientWidth || 600);
    const options = {
      width,
      height,
      tzDate: utc,
      cursor: {
        drag: { x: true, y: false, setScale: true },
        sync: opts.syncKey ? { key: opts.syncKey, setSeries: false, scales: ["x", null] } : undefined,
      },
      legend: { live: true },
      scales: {
        x: { time: true },
        y: log ? { distr: 3 } : { auto: true },
      },
      axes: [
        { stroke: "#4f5d6e", grid: { stroke: "#eef1f5" }, ticks: { stroke: "#dfe4ea" } },
        {
          stroke: "#4f5d6e",
          grid: { stroke: "#eef1f5" },
          ticks: { stroke: "#dfe4ea" },
          size: opts.yAxisSize ?? 70,
          values: (u, vals) => vals.map((v) => opts.yTick(v)),
        },
      ],
      series: [{ label: "Date", value: (u, ts) => dateLabel(ts) }, ...opts.series],
      hooks: {
        setScale: [
          (u, key) => {
            if (key === "x" && opts.onZoom) opts.onZoom(u.scales.x.min, u.scales.x.max);
          },
        ],
      },
    };
    if (plot) plot.destroy();
    plot = new uPlot(options, opts.data, el);
    if (range) plot.setScale("x", range);
    el.dataset.seriesCount = String(opts.series.length);
    el.dataset.points = String(opts.data[0].length);
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
      const range = plot ? { min: plot.scales.x.min, max: plot.scales.x.max } : undefined;
      build(range);
    },
    setRange(min, max) {
      if (plot && (plot.scales.x.min !== min || plot.scales.x.max !== max)) plot.setScale("x", { min, max });
    },
    resetZoom() {
      const xs = opts.data[0];
      if (plot && xs.length) plot.setScale("x", { min: xs[0], max: xs[xs.length - 1] });
    },
    destroy() {
      observer.disconnect();
      if (plot) plot.destroy();
      plot = null;
    },
  };
}

export function equityChart(el, chartData, { syncKey, onZoom, log = false } = {}) {
  const points = chartData.equity_curve || [];
  const xs = points.map((p) => toSeconds(p.date));
  const hasBench = points.some((p) => p.benchmark !== null && p.benchmark !== undefined);
  const data = [xs, points.map((p) => p.equity)];
  const series = [{
    label: "Strategy",
    stroke: PALETTE[0],
    width: 2,
    fill: "rgba(31, 79, 209, 0.06)",
    value: (u, v) => (v === null || v === undefined ? "—" : money(v, 0)),
  }];
  if (hasBench) {
    data.push(points.map((p) => p.benchmark ?? null));
    series.push({
      label: `Benchmark${chartData.benchmark_symbol ? ` (${chartData.benchmark_symbol})` : ""}`,
      stroke: BENCH_COLOR,
      width: 1.5,
      dash: [6, 4],
      spanGaps: true,
      value: (u, v) => (v === null || v === undefined ? "—" : money(v, 0)),
    });
  }
  return mountChart(el, { data, series, yTick: compactMoney, syncKey, onZoom, log, height: 340 });
}

export function drawdownChart(el, chartData, { syncKey, onZoom } = {}) {
  const points = chartData.drawdown_series || [];
  const data = [points.map((p) => toSeconds(p.date)), points.map((p) => p.drawdown)];
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
export function compareChart(el, runs, { log = false } = {}) {
  const tables = runs.map((run) => {
    const pts = run.chart.equity_curve || [];
    const base = pts[0]?.equity || 1;
    return [pts.map((p) => toSeconds(p.date)), pts.map((p) => p.equity / base)];
  });
  const data = uPlot.join(tables);
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
