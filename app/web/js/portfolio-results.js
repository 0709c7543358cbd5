// @ts-check
// The investor-portfolio parts of a result, pure (tests/web/portfolio-results.test.mjs):
// every benchmark's curve and relative metrics, the cash flows to mark on the equity
// chart, the portfolio metrics and their formats. Reads the chart data of
// GET /v1/backtest/{id}/chart (`benchmarks`, `flows`, `depleted_on`) and the run's
// metrics; a run without them (older runs, one `benchmark`) reads as before.

import { int, money, num, pct, signedMoney } from "./format.js";

/** @typedef {{name: string, values: (number | null)[]}} BenchmarkCurve */
/** @typedef {{date: string, amount: number}} Flow */

/** Relative metrics shown per benchmark: [key, label, format]. */
export const RELATIVE = /** @type {[string, string, (v: unknown) => string][]} */ ([
  ["total_return", "Return", (v) => pct(v, { signed: true })],
  ["cagr", "CAGR", (v) => pct(v, { signed: true })],
  ["alpha", "Alpha", (v) => pct(v, { signed: true })],
  ["beta", "Beta", (v) => num(v, 2)],
  ["information_ratio", "Information ratio", (v) => num(v, 2)],
  ["tracking_error", "Tracking error", (v) => pct(v)],
  ["up_capture", "Up capture", (v) => pct(v, { digits: 1 })],
  ["down_capture", "Down capture", (v) => pct(v, { digits: 1 })],
  ["correlation", "Correlation", (v) => num(v, 2)],
]);

/** The portfolio metrics: [key, label, format, help]. */
export const PORTFOLIO = /** @type {[string, string, (v: unknown) => string, string][]} */ ([
  ["final_value", "Final value", (v) => money(v, 0), "Portfolio value on the last day, flows included."],
  ["money_weighted_return", "Money-weighted return", (v) => pct(v, { signed: true }), "Annualised internal rate of return of the dated flows, the initial capital and the final value (XIRR, actual/365)."],
  ["total_contributions", "Contributions", (v) => money(v, 0), "Money added over the run (the initial capital not included)."],
  ["total_withdrawals", "Withdrawals", (v) => money(v, 0), "Money taken out over the run."],
  ["rebalance_count", "Rebalances", (v) => int(v), "Sessions on which the holdings were traded back to their targets."],
]);

/** @param {unknown} v @returns {v is Record<string, any>} */
const isObject = (v) => typeof v === "object" && v !== null && !Array.isArray(v);

/** @param {Record<string, any>} chart @returns {Record<string, any>[]} */
const listed = (chart) => (Array.isArray(chart.benchmarks) ? chart.benchmarks.filter(isObject) : []);

/**
 * Pure: each benchmark's curve, one value per `equity_curve` point (chart `benchmarks`:
 * [{name, equity, metrics, ...}]); a run stored before there were several reads its one
 * `equity_curve[].benchmark` column.
 * @param {Record<string, any>} chart @returns {BenchmarkCurve[]}
 */
export function benchmarkCurves(chart) {
  const points = Array.isArray(chart.equity_curve) ? chart.equity_curve : [];
  const many = listed(chart);
  if (many.length) {
    return many.map((b, i) => ({ name: String(b.name ?? b.symbol ?? `Benchmark ${i + 1}`),
      values: (Array.isArray(b.equity) ? b.equity : []).map((v) => (typeof v === "number" ? v : null)) }));
  }
  if (points.some((p) => typeof p.benchmark === "number")) {
    return [{ name: String(chart.benchmark_symbol || "Benchmark"), values: points.map((p) => p.benchmark ?? null) }];
  }
  return [];
}

/**
 * Pure: the run's statistics relative to each benchmark, as [name, {key: value}]
 * (chart `benchmarks[].metrics`).
 * @param {Record<string, any>} chart @returns {[string, Record<string, unknown>][]}
 */
export function relativeMetrics(chart) {
  return listed(chart).map((b, i) => [String(b.name ?? b.symbol ?? `Benchmark ${i + 1}`), isObject(b.metrics) ? b.metrics : {}]);
}

/**
 * Pure: the dated cash flows of a run (chart `flows`: [{date, amount}], the amount
 * actually moved), zero amounts left out, in date order.
 * @param {Record<string, any>} chart @returns {Flow[]}
 */
export function flowsOf(chart) {
  const raw = chart.flows ?? [];
  if (!Array.isArray(raw)) return [];
  return raw.filter((f) => isObject(f) && typeof f.amount === "number" && f.amount !== 0 && typeof f.date === "string")
    .map((f) => ({ date: String(f.date).slice(0, 10), amount: f.amount }))
    .sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : 0));
}

/**
 * Pure: the flows placed on the chart's points: each on the first point on or after its
 * date (the curve may be thinned); flows sharing a point are added up. Returns
 * {index → amount}; flows after the last point are left out.
 * @param {string[]} dates ascending ISO dates @param {Flow[]} flows @returns {Map<number, number>}
 */
export function flowMarks(dates, flows) {
  /** @type {Map<number, number>} */
  const marks = new Map();
  let i = 0;
  for (const flow of flows) {
    while (i < dates.length && dates[i] < flow.date) i++;
    if (i >= dates.length) break;
    marks.set(i, Number(((marks.get(i) ?? 0) + flow.amount).toPrecision(12)));
  }
  return marks;
}

/**
 * Pure: was the portfolio emptied by withdrawals (metric `portfolio_depleted`), and on
 * which day (chart `depleted_on`, once loaded). null: it was not.
 * @param {Record<string, any>} m @param {Record<string, any>} [chart] @returns {string | true | null}
 */
export function emptiedOn(m, chart = {}) {
  if (typeof chart.depleted_on === "string") return chart.depleted_on;
  return m.portfolio_depleted === true ? true : null;
}

/** A flow amount for the chart legend: "+$1,000" or "−$500". @param {number} v */
export const flowLabel = (v) => signedMoney(v);
