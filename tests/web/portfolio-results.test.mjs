// The investor-portfolio result logic (app/web/js/portfolio-results.js): benchmark
// curves and relative metrics from the chart data, flows placed on the chart.
import assert from "node:assert/strict";
import { test } from "node:test";

import { benchmarkNames, portfolioConfigItems } from "../../app/web/js/components/portfolio-cards.js";
import { benchmarkCurves, emptiedOn, flowMarks, flowsOf, relativeMetrics } from "../../app/web/js/portfolio-results.js";

const POINTS = [
  { date: "2020-01-02", equity: 100, benchmark: 10 },
  { date: "2020-01-03", equity: 101, benchmark: 11 },
  { date: "2020-02-03", equity: 103, benchmark: null },
];
const DATES = POINTS.map((p) => p.date);
const CHART = {
  equity_curve: POINTS,
  benchmark_symbol: "SPY",
  benchmarks: [
    { name: "SPY", symbol: "SPY", equity: [10, 11, null], metrics: { alpha: 0.01, beta: 0.9 } },
    { name: "60/40", allocation: { SPY: 0.6, AGG: 0.4 }, rebalancing: "monthly", equity: [7, 8, 9], metrics: { up_capture: 1.1 } },
  ],
};

test("benchmark curves: every listed benchmark by name, else the one-benchmark column, else none", () => {
  assert.deepEqual(benchmarkCurves(CHART), [{ name: "SPY", values: [10, 11, null] }, { name: "60/40", values: [7, 8, 9] }]);
  assert.deepEqual(benchmarkCurves({ ...CHART, benchmarks: [] }), [{ name: "SPY", values: [10, 11, null] }]);
  assert.deepEqual(benchmarkCurves({ equity_curve: POINTS.map(({ date, equity }) => ({ date, equity })), benchmarks: [] }), []);
});

test("relative metrics per benchmark, in the chart's order", () => {
  assert.deepEqual(relativeMetrics(CHART), [["SPY", { alpha: 0.01, beta: 0.9 }], ["60/40", { up_capture: 1.1 }]]);
  assert.deepEqual(relativeMetrics({ equity_curve: POINTS }), []);
});

test("flows: zero and malformed left out, sorted; placed on the first point on or after their date", () => {
  const flows = flowsOf({ flows: [
    { date: "2020-02-01", amount: -50 }, { date: "2020-01-02", amount: 1000 }, { date: "2020-01-03", amount: 0 }, { amount: 5 },
  ] });
  assert.deepEqual(flows, [{ date: "2020-01-02", amount: 1000 }, { date: "2020-02-01", amount: -50 }]);
  assert.deepEqual([...flowMarks(DATES, flows)], [[0, 1000], [2, -50]]);
  // Two flows thinned onto one point add up; one after the last point is dropped.
  const merged = flowMarks(DATES, [{ date: "2020-01-10", amount: 100 }, { date: "2020-01-20", amount: 0.1 }, { date: "2021-01-01", amount: 7 }]);
  assert.deepEqual([...merged], [[2, 100.1]]);
  assert.deepEqual(flowsOf({}), []);
});

test("emptied: the chart's day, else the metric's flag, else not", () => {
  assert.equal(emptiedOn({ portfolio_depleted: true }, { depleted_on: "2015-03-02" }), "2015-03-02");
  assert.equal(emptiedOn({ portfolio_depleted: true }), true);
  assert.equal(emptiedOn({ portfolio_depleted: false }, { depleted_on: null }), null);
  assert.equal(emptiedOn({}), null);
});

test("config summary: allocation, band, flows, dividends; benchmark names", () => {
  const config = {
    allocation: { SPY: 0.6, AGG: 0.4 }, rebalance_band: 0.05, cash_flows: { amount: 1000, frequency: "monthly" },
    reinvest_dividends: true, benchmarks: ["SPY", { name: "60/40, yearly", allocation: {} }],
  };
  const items = Object.fromEntries(portfolioConfigItems(config));
  assert.equal(items.Allocation, "SPY 60%, AGG 40%");
  assert.equal(items.Band, "5.0%");
  assert.match(items["Cash flows"], /^\+\$1,000\.00 monthly$/);
  assert.equal(items.Dividends, "reinvested");
  assert.deepEqual(portfolioConfigItems({}), []);
  assert.deepEqual(benchmarkNames(config), ["SPY", "60/40, yearly"]);
  assert.deepEqual(benchmarkNames({ benchmark: "QQQ" }), ["QQQ"]);
  assert.deepEqual(benchmarkNames({}), []);
});
