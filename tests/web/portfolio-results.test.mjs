// The investor-portfolio result logic (app/web/js/portfolio-results.js): benchmark
// curves and relative metrics in the shapes a run may carry, flows placed on the chart.
import assert from "node:assert/strict";
import { test } from "node:test";

import { portfolioConfigItems } from "../../app/web/js/components/portfolio-cards.js";
import { benchmarkCurves, emptiedOn, flowMarks, flowsOf, relativeMetrics } from "../../app/web/js/portfolio-results.js";

const POINTS = [
  { date: "2020-01-02", equity: 100, benchmark: 10 },
  { date: "2020-01-03", equity: 101, benchmark: 11 },
  { date: "2020-02-03", equity: 103, benchmark: null },
];
const DATES = POINTS.map((p) => p.date);

test("benchmark curves: a list of named curves, aligned by date when given as points", () => {
  const curves = benchmarkCurves({ equity_curve: POINTS, benchmarks: [
    { name: "SPY", values: [1, 2, 3] },
    { name: "60/40", equity: [{ date: "2020-02-03", equity: 9 }, { date: "2020-01-02", equity: 7 }] },
  ] });
  assert.deepEqual(curves, [{ name: "SPY", values: [1, 2, 3] }, { name: "60/40", values: [7, null, 9] }]);
});

test("benchmark curves: an object of curves, per-point values, the one-benchmark column, none", () => {
  assert.deepEqual(benchmarkCurves({ equity_curve: POINTS, benchmarks: { QQQ: [4, 5, 6] } }), [{ name: "QQQ", values: [4, 5, 6] }]);
  const perPoint = POINTS.map((p, i) => ({ ...p, benchmarks: { SPY: i, AGG: i * 2 } }));
  assert.deepEqual(benchmarkCurves({ equity_curve: perPoint }).map((c) => [c.name, c.values]), [["SPY", [0, 1, 2]], ["AGG", [0, 2, 4]]]);
  assert.deepEqual(benchmarkCurves({ equity_curve: POINTS, benchmark_symbol: "SPY" }), [{ name: "SPY", values: [10, 11, null] }]);
  assert.deepEqual(benchmarkCurves({ equity_curve: POINTS.map(({ date, equity }) => ({ date, equity })) }), []);
});

test("relative metrics per benchmark, from a list, an object, or the flat one-benchmark keys", () => {
  assert.deepEqual(relativeMetrics({ benchmarks: [{ name: "SPY", alpha: 0.01 }, { name: "AGG", beta: 0.2 }] }, null).map(([n]) => n), ["SPY", "AGG"]);
  assert.deepEqual(relativeMetrics({ benchmarks: { SPY: { alpha: 0.02 } } }, null), [["SPY", { alpha: 0.02 }]]);
  const flat = relativeMetrics({ alpha: 0.03, beta: 0.9, benchmark_total_return: 0.5 }, "SPY");
  assert.equal(flat[0][0], "SPY");
  assert.equal(flat[0][1].alpha, 0.03);
  assert.equal(flat[0][1].total_return, 0.5);
  assert.deepEqual(relativeMetrics({ alpha: 0.03 }, null), []);
});

test("flows: zero and malformed left out, sorted; placed on the first point on or after their date", () => {
  const flows = flowsOf({ cash_flows: [
    { date: "2020-02-01", amount: -50 }, { date: "2020-01-02", amount: 1000 }, { date: "2020-01-03", amount: 0 }, { amount: 5 },
  ] });
  assert.deepEqual(flows, [{ date: "2020-01-02", amount: 1000 }, { date: "2020-02-01", amount: -50 }]);
  assert.deepEqual([...flowMarks(DATES, flows)], [[0, 1000], [2, -50]]);
  // Two flows thinned onto one point add up; one after the last point is dropped.
  const merged = flowMarks(DATES, [{ date: "2020-01-10", amount: 100 }, { date: "2020-01-20", amount: 0.1 }, { date: "2021-01-01", amount: 7 }]);
  assert.deepEqual([...merged], [[2, 100.1]]);
  assert.deepEqual(flowsOf({}), []);
});

test("emptied flag: a date, a boolean, or nothing", () => {
  assert.equal(emptiedOn({ portfolio_emptied: "2015-03-02" }), "2015-03-02");
  assert.equal(emptiedOn({ portfolio_emptied: true }), true);
  assert.equal(emptiedOn({ portfolio_emptied: false }), null);
  assert.equal(emptiedOn({}), null);
});

test("config summary: allocation, band, flows, dividends, benchmarks", () => {
  const items = Object.fromEntries(portfolioConfigItems({
    allocation: { SPY: 0.6, AGG: 0.4 }, rebalance_band: 0.05, cash_flows: { amount: 1000, frequency: "monthly" },
    reinvest_dividends: true, benchmarks: ["SPY", { name: "60/40", allocation: {} }],
  }));
  assert.equal(items.Allocation, "SPY 60%, AGG 40%");
  assert.equal(items.Band, "5.0%");
  assert.match(items["Cash flows"], /^\+\$1,000\.00 monthly$/);
  assert.equal(items.Dividends, "reinvested");
  assert.equal(items.Benchmarks, "SPY, 60/40");
  assert.deepEqual(portfolioConfigItems({}), []);
});
