// @ts-check
// The result page's equity chart with every benchmark's curve (up to 3, dashed, one
// colour each) and the cash flows marked on the strategy's curve: a green dot where money
// was added, a red one where it was taken out (the legend shows the amount under the
// cursor). A drop-in for charts.js's equityChart; runs without flows or with one
// benchmark draw as before.

import { BENCH_COLOR, compactMoney, mountChart, toSeconds } from "./charts.js";
import { money } from "./format.js";
import { benchmarkCurves, flowLabel, flowMarks, flowsOf } from "./portfolio-results.js";

const STRATEGY_COLOR = "#1f4fd1";
export const BENCH_COLORS = [BENCH_COLOR, "#e07b00", "#0b8f6a"];
const BENCH_DASHES = [[6, 4], [2, 3], [10, 3, 2, 3]];
const IN_COLOR = "#0b7a3e";
const OUT_COLOR = "#c1272d";

/** @param {unknown} v */
const moneyValue = (v) => (v === null || v === undefined ? "—" : money(v, 0));

/**
 * A points-only series marking flows of one sign at the strategy's equity; its legend
 * shows the flow under the cursor.
 * @param {string} label @param {string} color @param {Map<number, number>} marks
 * @returns {uPlot.Series}
 */
function flowSeries(label, color, marks) {
  return {
    label,
    stroke: color,
    fill: color,
    width: 0,
    paths: () => null,
    points: { show: true, size: 8, stroke: color, fill: color },
    value: (u, v, sidx, idx) => (idx === null || idx === undefined || !marks.has(idx) ? "—" : flowLabel(/** @type {number} */ (marks.get(idx)))),
  };
}

/**
 * The columns and series: strategy, benchmarks, contributions, withdrawals.
 * @param {import("./charts.js").ChartData & Record<string, any>} chartData
 */
export function equitySeries(chartData) {
  const points = chartData.equity_curve || [];
  const equity = points.map((p) => p.equity);
  /** @type {(number | null)[][]} */
  const columns = [points.map((p) => toSeconds(p.date)), equity];
  /** @type {uPlot.Series[]} */
  const series = [{ label: "Strategy", stroke: STRATEGY_COLOR, width: 2, fill: "rgba(31, 79, 209, 0.06)", value: (u, v) => moneyValue(v) }];
  benchmarkCurves(chartData).slice(0, BENCH_COLORS.length).forEach((b, i) => {
    columns.push(b.values);
    series.push({ label: b.name, stroke: BENCH_COLORS[i], width: 1.5, dash: BENCH_DASHES[i], spanGaps: true, value: (u, v) => moneyValue(v) });
  });
  const marks = flowMarks(points.map((p) => p.date), flowsOf(chartData));
  for (const [sign, label, color] of /** @type {[number, string, string][]} */ ([[1, "Contributions", IN_COLOR], [-1, "Withdrawals", OUT_COLOR]])) {
    const mine = new Map([...marks].filter(([, amount]) => Math.sign(amount) === sign));
    if (!mine.size) continue;
    columns.push(equity.map((v, i) => (mine.has(i) ? v : null)));
    series.push(flowSeries(label, color, mine));
  }
  return { columns, series, flowCount: marks.size };
}

/**
 * @param {HTMLElement} el @param {import("./charts.js").ChartData} chartData
 * @param {import("./charts.js").ChartOptions} [options]
 */
export function equityChart(el, chartData, { syncKey, onZoom, log = false } = {}) {
  const { columns, series, flowCount } = equitySeries(chartData);
  el.dataset.flowMarks = String(flowCount);
  el.dataset.benchmarks = String(benchmarkCurves(chartData).length);
  const data = /** @type {uPlot.AlignedData} */ (/** @type {unknown} */ (columns));
  return mountChart(el, { data, series, yTick: compactMoney, syncKey, onZoom, log, height: 340 });
}
